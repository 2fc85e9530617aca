# Figures (PNG) for the report: per model and calibration, and across models. Each rule has its own
# script; names shown in a figure come as params, never from parsing paths.


rule figure_structure:
    """Similarity heatmap with cluster boundaries and each method's pruned layers at one budget."""
    input:
        cosine=rules.similarity.output.cosine,
        rls=rules.structure.output.rls,
        plans=expand(rules.plan.output.plan, method=METHODS, budget=lc.figure_budget(config), allow_missing=True),
    output:
        png=model_figure("structure")("results/{model}/figures/{calib}/structure.png"),
        provenance="results/{model}/figures/{calib}/structure.provenance.json",
    params:
        budget=lc.figure_budget(config),
        methods=METHODS,
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/figures/{calib}-structure.log",
    localrule: True
    threads: 1
    script:
        "../scripts/figure_structure.py"


rule figure_pruned_layers:
    """Which blocks every method prunes, methods x layers, one panel per budget."""
    input:
        plans=expand(rules.plan.output.plan, method=METHODS, budget=BUDGETS, allow_missing=True),
    output:
        png=model_figure("pruned_layers")("results/{model}/figures/{calib}/pruned_layers.png"),
        provenance="results/{model}/figures/{calib}/pruned_layers.provenance.json",
    params:
        methods=METHODS,
        budgets=BUDGETS,
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/figures/{calib}-pruned_layers.log",
    localrule: True
    threads: 1
    script:
        "../scripts/figure_pruned_layers.py"


rule figure_locality:
    """Mean similarity against normalised layer distance for every model, with its RLS."""
    input:
        cosine=expand(rules.similarity.output.cosine, model=MODELS, calib=CALIBS),
        rls=expand(rules.structure.output.rls, model=MODELS, calib=CALIBS),
    output:
        png=in_report("locality", figure="similarity vs layer distance")("results/figures/locality.png"),
        provenance="results/figures/locality.provenance.json",
    params:
        labels=lc.figure_labels(config),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/figures/locality.log",
    localrule: True
    threads: 1
    script:
        "../scripts/figure_locality.py"


rule figure_vs_budget:
    """Mean perplexity (kind=ppl) or mean zero-shot accuracy (kind=tasks) against the budget."""
    input:
        table="results/summary/{kind}_table.csv",  # rule summary's table (kind=ppl) or summary_tasks' (kind=tasks)
    output:
        png=in_report("vs_budget", figure="{kind} vs budget")("results/figures/{kind}_vs_budget.png"),
        provenance="results/figures/{kind}_vs_budget.provenance.json",
    params:
        **({"seed_groups": lc.seed_groups(config)} if config["evaluation"]["seeds"] else {}),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/figures/{kind}_vs_budget.log",
    localrule: True
    threads: 1
    script:
        "../scripts/figure_vs_budget.py"


rule k_ablation:
    """LoRP with K = ablation.lorp_k clusters: mean perplexity per K and budget, CSV and figure."""
    input:
        ppl=pruned_outputs(rules.evaluate_pruned.output.ppl, methods=ABLATION, budgets=lc.ablation_budgets(config)),
        rls=expand(rules.structure.output.rls, model=MODELS, calib=CALIBS),
    output:
        csv="results/summary/k_ablation.csv",
        png=in_report("k_ablation", figure="K ablation")("results/figures/k_ablation.png"),
        provenance="results/figures/k_ablation.provenance.json",
    params:
        labels=lc.figure_labels(config),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/figures/k_ablation.log",
    localrule: True
    threads: 1
    script:
        "../scripts/k_ablation.py"


rule figure_recovery:
    """Mean perplexity against the budget, every depth method training-free and recovered."""
    input:
        table=rules.summary.output.table,
    output:
        png=in_report("recovery_figure", category="{model}", subcategory="{calib}", model="{model}", calibration="{calib}",
                      figure="recovery")("results/{model}/figures/{calib}/recovery.png"),
        provenance="results/{model}/figures/{calib}/recovery.provenance.json",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/figures/{calib}-recovery.log",
    localrule: True
    threads: 1
    script:
        "../scripts/figure_recovery.py"
