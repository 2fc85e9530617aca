# Figures (PNG) for the report: per model and calibration, and across models.


rule figure_structure:
    """Similarity heatmap with cluster boundaries and each method's pruned layers at one budget."""
    input:
        cosine="results/{model}/similarity/{calib}/cosine.npy",
        rls="results/{model}/structure/{calib}/rls.json",
        plans=lambda w: expand(
            "results/{{model}}/plans/{{calib}}/{method}-{budget}.json",
            method=METHODS,
            budget=FIGURE_BUDGET,
        ),
    output:
        png=report(
            "results/{model}/figures/{calib}/structure.png",
            caption="../report/structure.rst",
            category="{model}",
            subcategory="{calib}",
            labels={"model": "{model}", "calibration": "{calib}", "figure": "similarity and pruned layers"},
        ),
        provenance="results/{model}/figures/{calib}/structure.provenance.json",
    params:
        budget=FIGURE_BUDGET,
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/figures/{calib}-structure.log",
    threads: 1
    script:
        "../scripts/figures.py"


rule figure_pruned_layers:
    """Which blocks every method prunes, methods x layers, one panel per budget."""
    input:
        plans=expand(
            "results/{{model}}/plans/{{calib}}/{method}-{budget}.json",
            method=METHODS,
            budget=BUDGETS,
        ),
    output:
        png=report(
            "results/{model}/figures/{calib}/pruned_layers.png",
            caption="../report/pruned_layers.rst",
            category="{model}",
            subcategory="{calib}",
            labels={"model": "{model}", "calibration": "{calib}", "figure": "pruned-layer map"},
        ),
        provenance="results/{model}/figures/{calib}/pruned_layers.provenance.json",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/figures/{calib}-pruned_layers.log",
    threads: 1
    script:
        "../scripts/figures.py"


rule figure_locality:
    """Mean similarity against normalised layer distance for every model, with its RLS."""
    input:
        cosine=expand(
            "results/{model}/similarity/{calib}/cosine.npy", model=MODELS, calib=CALIBS
        ),
        rls=expand("results/{model}/structure/{calib}/rls.json", model=MODELS, calib=CALIBS),
    output:
        png=report(
            "results/figures/locality.png",
            caption="../report/locality.rst",
            category="Across models",
            labels={"figure": "similarity vs layer distance"},
        ),
        provenance="results/figures/locality.provenance.json",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/figures/locality.log",
    threads: 1
    script:
        "../scripts/figures.py"


rule figure_vs_budget:
    """Mean perplexity (kind=ppl) or mean zero-shot accuracy (kind=tasks) against the budget."""
    input:
        table="results/summary/{kind}_table.csv",
    output:
        png=report(
            "results/figures/{kind}_vs_budget.png",
            caption="../report/vs_budget.rst",
            category="Across models",
            labels={"figure": "{kind} vs budget"},
        ),
        provenance="results/figures/{kind}_vs_budget.provenance.json",
    wildcard_constraints:
        kind="ppl|tasks",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/figures/{kind}_vs_budget.log",
    threads: 1
    script:
        "../scripts/figures.py"


rule k_ablation:
    """LoRP with K = ablation.lorp_k clusters: mean perplexity per K and budget, CSV and figure."""
    input:
        ppl=expand(
            "results/{model}/eval/{calib}/{method}-{budget}/ppl.csv",
            model=MODELS,
            calib=CALIBS,
            method=ABLATION,
            budget=ABLATION_BUDGETS,
        ),
        rls=expand("results/{model}/structure/{calib}/rls.json", model=MODELS, calib=CALIBS),
    output:
        csv="results/summary/k_ablation.csv",
        png=report(
            "results/figures/k_ablation.png",
            caption="../report/k_ablation.rst",
            category="Across models",
            labels={"figure": "K ablation"},
        ),
        provenance="results/figures/k_ablation.provenance.json",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/figures/k_ablation.log",
    threads: 1
    script:
        "../scripts/figures.py"
