rule plan:
    """Which blocks a method removes at a budget, from the stored similarity (no forward pass)."""
    input:
        unpack(plan_inputs),
    wildcard_constraints:
        method=plan_methods(runs_model=False),  # model_plan: the methods that run the model; auto: rule auto_plan
    output:
        plan="results/{model}/plans/{calib}/{method}-{budget}.json",
        provenance="results/{model}/plans/{calib}/{method}-{budget}.provenance.json",
    params:
        method_params=lambda wildcards: lc.method_params(config, wildcards.method),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/plans/{calib}/{method}-{budget}.log",
    localrule: True
    threads: 1
    script:
        "../scripts/plan.py"


rule model_plan:
    """Which blocks a method that runs the model (its registration declares the model input: SLEB) removes
    at a budget, from the prepared model and the calibration tokens."""
    input:
        unpack(plan_inputs),
    wildcard_constraints:
        method=plan_methods(runs_model=True),
    output:
        plan="results/{model}/plans/{calib}/{method}-{budget}.json",
        provenance="results/{model}/plans/{calib}/{method}-{budget}.provenance.json",
    params:
        method_params=lambda wildcards: lc.method_params(config, wildcards.method),
        compute=compute,
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/plans/{calib}/{method}-{budget}.log",
    threads: 2
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/model_plan.py"


rule auto_plan:
    """methods.auto: of every other method's plan under every compared statistic, the one of lowest perplexity
    on held-out calibration windows; the plan lists every candidate and its score."""
    input:
        unpack(auto_inputs),
    output:
        plan="results/{model}/plans/{calib}/{method}-{budget}.json",
        provenance="results/{model}/plans/{calib}/{method}-{budget}.provenance.json",
    params:
        candidates=lambda wildcards: [[c["method"], c["statistic"]] for c in lc.auto_candidates(config, wildcards.calib)],
        compute=compute,
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
        model=rules.prepare_model.output.model,
        plan=rules.plan.output.plan,
    output:
        checkpoint=directory("results/{model}/checkpoints/{calib}/{method}-{budget}"),
        provenance="results/{model}/checkpoints/{calib}/{method}-{budget}.provenance.json",
    params:
        compute=compute,
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/checkpoints/{calib}/{method}-{budget}.log",
    threads: 1
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/checkpoint.py"
