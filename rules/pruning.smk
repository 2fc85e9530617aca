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
    """The pruned model as a Hugging Face directory (safetensors, tokenizer, config, plan)."""
    input:
        model=paths.MODEL_DIR,
        plan=paths.PLAN,
    output:
        # checkpoints.temporary: deleted once every evaluation of it is done
        **outputs("prune_checkpoint", checkpoint=temp if config["checkpoints"]["temporary"] else lambda p: p),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/checkpoints/{calib}/{method}-{budget}.log",
    threads: 1
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/checkpoint.py"
