# Which method for which model: the similarity statistics compared, and the stability of the structure and
# the plans under the calibration (variations and a bootstrap over sequences). Opt-in: similarity.compare,
# sensitivity.variations, sensitivity.bootstrap.resamples.


rule statistics:
    """How RLS, K, the clusters and the plans move with the similarity statistic (similarity.compare)."""
    input:
        **view_inputs([{"model": v["model"], "calib": v["view"]} for v in lc.statistics_views(config)],
                      ("rls", "cosine", "summary")),
    output:
        csv="results/summary/statistics.csv",
        png=in_report("statistics", figure="similarity statistics")("results/figures/statistics.png"),
        provenance="results/summary/statistics.provenance.json",
    params:
        views=lc.statistics_views(config),
        methods=lc.similarity_methods(config),
        budgets=BUDGETS,
        budget=lc.figure_budget(config),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/figures/statistics.log",
    localrule: True
    threads: 1
    script:
        "../scripts/statistics.py"


rule sensitivity:
    """Plans and RLS under every calibration variation and a bootstrap over sequences: tables and figures."""
    input:
        unpack(sensitivity_inputs),
    output:
        stability="results/{model}/sensitivity/stability.csv",
        rls="results/{model}/sensitivity/rls.csv",
        selection="results/{model}/sensitivity/selection.csv",
        rls_png=sensitivity_figure("rls"),
        stability_png=sensitivity_figure("stability"),
        selection_png=sensitivity_figure("selection"),
        provenance="results/{model}/sensitivity/provenance.json",
    params:
        sensitivity=lc.sensitivity_params(config),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/sensitivity.log",
    localrule: True
    threads: 1
    script:
        "../scripts/sensitivity.py"
