rule plan:
    """Which blocks a method removes at a budget, from the stored similarity (no forward pass)."""
    input:
        unpack(plan_inputs),
    wildcard_constraints:
        method="|".join(re.escape(m) for m in lc.selection_methods(config) + ABLATION),  # auto: rule auto_plan
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


rule auto_plan:
    """methods.auto: of every other method's plan under every compared statistic, the one of lowest perplexity
    on held-out calibration windows; the plan lists every candidate and its score."""
    input:
        unpack(lambda wildcards: paths.auto_inputs(config, wildcards)),
    output:
        **outputs("auto_plan"),
    params:
        **params("auto_plan"),
    wildcard_constraints:
        method="auto",
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/plans/{calib}/{method}-{budget}.log",
    threads: 1
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/auto_plan.py"


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
