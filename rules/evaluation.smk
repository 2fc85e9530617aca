# Each evaluation once for the dense model (<rule>_dense) and once per plan (<rule>_pruned): the
# pruned rule reuses the dense rule's body with the checkpoint and its plan as inputs, a depth plan's
# or a sparse plan's (method <metric>-<allocation>, budget = target in %).


rule evaluate_dense:
    """Perplexity on every evaluation dataset (of the unpruned model, or with _pruned of a checkpoint)."""
    input:
        model=paths.MODEL_DIR,
    output:
        **outputs("evaluate_dense"),
    params:
        **params("evaluate_dense"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/dense.log",
    threads: 2
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/evaluate.py"


use rule evaluate_dense as evaluate_pruned with:
    input:
        unpack(evaluated_model),
    output:
        **outputs("evaluate_pruned"),
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}.log",


rule efficiency_dense:
    """Size, peak memory, prefill throughput and decode latency (every core: nothing shares the machine)."""
    input:
        model=paths.MODEL_DIR,
    output:
        **outputs("efficiency_dense"),
    params:
        **params("efficiency_dense"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/dense-efficiency.log",
    threads: all_cores
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/efficiency.py"


use rule efficiency_dense as efficiency_pruned with:
    input:
        unpack(evaluated_model),
    output:
        **outputs("efficiency_pruned"),
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}-efficiency.log",


rule evaluate_tasks_dense:
    """Zero-shot accuracy with lm-evaluation-harness."""
    input:
        model=paths.MODEL_DIR,
        data=zeroshot_data,
    output:
        **outputs("evaluate_tasks_dense"),
    params:
        **params("evaluate_tasks_dense"),
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/dense-tasks.log",
    threads: 2
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/zeroshot.py"


use rule evaluate_tasks_dense as evaluate_tasks_pruned with:
    input:
        unpack(evaluated_model),
        data=zeroshot_data,
    output:
        **outputs("evaluate_tasks_pruned"),
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}-tasks.log",
