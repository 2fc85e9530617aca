# Figures (PNG) for the report: per model and calibration, and across models. Each rule has its own
# script; names shown in a figure come as params, never from parsing paths.


rule figure_structure:
    """Similarity heatmap with cluster boundaries and each method's pruned layers at one budget."""
    input:
        cosine=paths.COSINE,
        rls=paths.RLS,
        plans=expand(paths.PLAN, method=METHODS, budget=lc.figure_budget(config), allow_missing=True),
    output:
        **outputs("figure_structure", png=model_figure("structure")),
    params:
        **params("figure_structure"),
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
        plans=expand(paths.PLAN, method=METHODS, budget=BUDGETS, allow_missing=True),
    output:
        **outputs("figure_pruned_layers", png=model_figure("pruned_layers")),
    params:
        **params("figure_pruned_layers"),
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
        cosine=expand(paths.COSINE, model=MODELS, calib=list(config["calibration"])),
        rls=expand(paths.RLS, model=MODELS, calib=list(config["calibration"])),
    output:
        **outputs("figure_locality", png=in_report("locality", figure="similarity vs layer distance")),
    params:
        **params("figure_locality"),
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
        table=paths.SUMMARY_TABLE,
    output:
        **outputs("figure_vs_budget", png=in_report("vs_budget", figure="{kind} vs budget")),
    params:
        **params("figure_vs_budget"),
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
        ppl=pruned_outputs("evaluate_pruned", methods=ABLATION, budgets=lc.ablation_budgets(config)),
        rls=expand(paths.RLS, model=MODELS, calib=list(config["calibration"])),
    output:
        **outputs("k_ablation", png=in_report("k_ablation", figure="K ablation")),
    params:
        **params("k_ablation"),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/figures/k_ablation.log",
    localrule: True
    threads: 1
    script:
        "../scripts/k_ablation.py"

