rule plan:
    """Which blocks a method removes at a budget, from the stored similarity (no forward pass)."""
    input:
        unpack(plan_inputs),
    output:
        plan="results/{model}/plans/{calib}/{method}-{budget}.json",
        provenance="results/{model}/plans/{calib}/{method}-{budget}.provenance.json",
    params:
        method_params=method_params,
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/plans/{calib}/{method}-{budget}.log",
    threads: 1
    script:
        "../scripts/plan.py"


rule prune_checkpoint:
    """The pruned model as a Hugging Face directory (safetensors, tokenizer, config, plan)."""
    input:
        model="results/{model}/model",
        plan="results/{model}/plans/{calib}/{method}-{budget}.json",
    output:
        checkpoint=maybe_temp(
            directory("results/{model}/checkpoints/{calib}/{method}-{budget}")
        ),
        provenance="results/{model}/checkpoints/{calib}/{method}-{budget}.provenance.json",
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/checkpoints/{calib}/{method}-{budget}.log",
    threads: 1
    resources:
        gpu=gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    script:
        "../scripts/checkpoint.py"
