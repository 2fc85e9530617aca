# The sparse family (MRP): input norms -> outlier ratios -> sparsity plans (uniform, OWL, MRP, N:M) -> the
# pruned models (norms and measurement; checkpoints on request), evaluated by the rules of evaluation.smk as method <metric>-<allocation> at budget <target>.
# Redundancy after pruning, the MRP sweep, the sparsity table and its figures close the family.


rule input_norms:
    """Input norms of every linear layer of every block (Wanda's ||X_j||_2), one forward pass."""
    input:
        model=rules.prepare_model.output.model,
        tokens=rules.calibration_tokens.output.tokens,
    output:
        norms=directory("results/{model}/sparsity/{calib}/norms"),
        provenance="results/{model}/sparsity/{calib}/norms.provenance.json",
    params:
        compute=compute,
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/sparsity/{calib}/norms.log",
    threads: 2
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/input_norms.py"


rule obs_norms:
    """SparseGPT's own saliency per input of every linear layer (sparsity.sparsegpt.scores: obs): 1 / U_jj of
    the damped inverse Hessian of the dense model, block by block."""
    input:
        model=rules.prepare_model.output.model,
        tokens=rules.calibration_tokens.output.tokens,
    output:
        norms=directory("results/{model}/sparsity/{calib}/obs_norms"),
        provenance="results/{model}/sparsity/{calib}/obs_norms.provenance.json",
    params:
        compute=compute,
        obs=lc.obs_norm_params(config),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/sparsity/{calib}/obs_norms.log",
    threads: 2
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/input_norms.py"


rule outliers:
    """Each block's outlier ratio on the dense model, for one metric (OWL's input)."""
    input:
        unpack(sparse_scores),
    output:
        outliers="results/{model}/sparsity/{calib}/{metric}/outliers.json",
        provenance="results/{model}/sparsity/{calib}/{metric}/outliers.provenance.json",
    params:
        outliers=lc.outlier_params(config),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/sparsity/{calib}/{metric}-outliers.log",
    threads: 1
    resources:
        **MODEL_RESOURCES,
    script:
        "../scripts/outliers.py"


rule sparse_plan:
    """Per-block and per-linear sparsity of one metric, allocation and target (MRP's trajectory too)."""
    input:
        unpack(sparse_plan_inputs),
    output:
        plan="results/{model}/sparsity/{calib}/plans/{metric}-{allocation}-{target}.json",
        provenance="results/{model}/sparsity/{calib}/plans/{metric}-{allocation}-{target}.provenance.json",
    params:
        plan=lambda wildcards: lc.sparse_plan_params(config, wildcards.allocation),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/sparsity/{calib}/plans/{metric}-{allocation}-{target}.log",
    threads: 1
    resources:
        **MODEL_RESOURCES,
    script:
        "../scripts/sparse_plan.py"


rule sparse_prune:
    """The model pruned in memory to its plan: the norms every block was pruned with, the weights of a metric
    that updates them (SparseGPT) and what it measures (every evaluation rebuilds the same model from them)."""
    input:
        unpack(sparse_prune_inputs),
    output:
        norms="results/{model}/sparsity/{calib}/pruned/{metric}-{allocation}-{target}.npz",
        weights="results/{model}/sparsity/{calib}/pruned/{metric}-{allocation}-{target}.safetensors",
        measured="results/{model}/sparsity/{calib}/measured/{metric}-{allocation}-{target}.json",
        provenance="results/{model}/sparsity/{calib}/pruned/{metric}-{allocation}-{target}.provenance.json",
    params:
        pruning=lambda wildcards: lc.sparse_prune_params(config, wildcards.metric),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/sparsity/{calib}/pruned/{metric}-{allocation}-{target}.log",
    threads: 1  # one core each: the six pruned models of the default run prune side by side
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/sparse_prune.py"


rule sparse_checkpoint:
    """Export (checkpoints.export): the sparse model as a Hugging Face directory with plan.json and sparsity.json."""
    input:
        unpack(lambda wildcards: model_sources(f"{wildcards.metric}-{wildcards.allocation}", model=wildcards.model,
                                               calib=wildcards.calib, budget=wildcards.target)),
    output:
        checkpoint=directory("results/{model}/sparsity/{calib}/checkpoints/{metric}-{allocation}-{target}"),
        provenance="results/{model}/sparsity/{calib}/checkpoints/{metric}-{allocation}-{target}.provenance.json",
    params:
        compute=compute,
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/sparsity/{calib}/checkpoints/{metric}-{allocation}-{target}.log",
    threads: 1
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/checkpoint.py"


rule redundancy:
    """Every plan's per-block non-outlier ratio after pruning and its spread, for one metric."""
    input:
        unpack(sparse_scores),
        plans=per_row_plans,
    output:
        redundancy="results/{model}/sparsity/{calib}/{metric}/redundancy.json",
        provenance="results/{model}/sparsity/{calib}/{metric}/redundancy.provenance.json",
    params:
        outliers=lc.outlier_params(config),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/sparsity/{calib}/{metric}-redundancy.log",
    threads: 1
    resources:
        **MODEL_RESOURCES,
    script:
        "../scripts/redundancy.py"


rule mrp_sweep:
    """MRP's allocation for other values of M and the step (sparsity.sweep), and its figure."""
    input:
        unpack(sparse_scores),
    output:
        json="results/{model}/sparsity/{calib}/{metric}/mrp_sweep.json",
        png=in_report("mrp_sweep", category="{model}", subcategory="{calib}", model="{model}", calibration="{calib}",
                      figure="MRP sweep ({metric})")("results/{model}/sparsity/{calib}/{metric}/mrp_sweep.png"),
        provenance="results/{model}/sparsity/{calib}/{metric}/mrp_sweep.provenance.json",
    params:
        sweep=lc.sweep_params(config),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/sparsity/{calib}/{metric}-mrp_sweep.log",
    threads: 1
    resources:
        **MODEL_RESOURCES,
    script:
        "../scripts/mrp_sweep.py"


rule figure_sparsity:
    """Per-block sparsity of every allocation and the blocks' non-outlier ratio after pruning."""
    input:
        plans=per_row_plans,
        redundancy=expand(rules.redundancy.output.redundancy, metric=REDUNDANCY_METRICS, allow_missing=True),
    output:
        png=model_figure("sparsity")("results/{model}/figures/{calib}/sparsity.png"),
        provenance="results/{model}/figures/{calib}/sparsity.provenance.json",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/figures/{calib}-sparsity.log",
    localrule: True
    threads: 1
    script:
        "../scripts/figure_sparsity.py"


rule summary_sparsity:
    """The sparsity table: mean perplexity of every metric x allocation at every target, with its spread."""
    input:
        dense=dense_outputs(rules.evaluate_dense.output.ppl),
        pruned=sparse_outputs(rules.evaluate_pruned.output.ppl),
        measured=sparse_files(rules.sparse_prune.output.measured),
        redundancy=expand(rules.redundancy.output.redundancy, model=MODELS, calib=CALIBS, metric=REDUNDANCY_METRICS),
    output:
        csv="results/summary/sparsity.csv",
        table="results/summary/sparsity_table.csv",
        md=in_report("sparsity_table", category="Tables", table="sparsity")("results/summary/sparsity.md"),
        provenance="results/summary/sparsity.provenance.json",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/summary-sparsity.log",
    localrule: True
    threads: 1
    script:
        "../scripts/summary_sparsity.py"


rule figure_vs_sparsity:
    """Mean perplexity (kind=ppl) or mean zero-shot accuracy with its standard error (kind=tasks) against the
    target sparsity, one line per metric and allocation."""
    input:
        table=lambda wildcards: {"ppl": rules.summary_sparsity.output.csv, "tasks": rules.summary_tasks.output.table}[
            wildcards.kind],
    output:
        png=in_report("vs_sparsity", figure="{kind} vs sparsity")("results/figures/{kind}_vs_sparsity.png"),
        provenance="results/figures/{kind}_vs_sparsity.provenance.json",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/figures/{kind}_vs_sparsity.log",
    localrule: True
    threads: 1
    script:
        "../scripts/figure_vs_sparsity.py"
