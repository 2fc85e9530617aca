rule plan:
    """Which blocks a method removes at a budget, from the stored similarity (no forward pass)."""
    input:
        unpack(plan_inputs),
    output:
        **outputs("plan"),
    params:
        **params("plan"),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/plans/{calib}/{method}-{budget}.log",
    localrule: True
    threads: 1
    script:
        "../scripts/plan.py"


rule prune_checkpoint:
    """Export (checkpoints.export): the pruned model as a Hugging Face directory (safetensors, tokenizer,
    config, plan.json), the model the evaluations measure."""
    input:
        model=paths.MODEL_DIR,
        plan=paths.PLAN,
    output:
        **outputs("prune_checkpoint"),
    params:
        **params("prune_checkpoint"),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/checkpoints/{calib}/{method}-{budget}.log",
    threads: 1
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/checkpoint.py"
