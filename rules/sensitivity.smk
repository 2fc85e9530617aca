# Which method for which model: the similarity statistics compared, and the stability of the structure and
# the plans under the calibration (variations and a bootstrap over sequences). Opt-in: similarity.compare,
# sensitivity.variations, sensitivity.bootstrap.resamples.


rule statistics:
    """How RLS, K, the clusters and the plans move with the similarity statistic (similarity.compare)."""
    input:
        **paths.statistics_inputs(config),
    output:
        **outputs("statistics", png=in_report("statistics", figure="similarity statistics")),
    params:
        **params("statistics"),
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
        rls=lambda w: paths.sensitivity_inputs(config, w.model)["rls"],
        summary=lambda w: paths.sensitivity_inputs(config, w.model)["summary"],
        per_sequence=lambda w: paths.sensitivity_inputs(config, w.model)["per_sequence"],
        plans=lambda w: paths.sensitivity_inputs(config, w.model)["plans"],
    output:
        **outputs("sensitivity", **{f"{name}_png": in_report(f"sensitivity_{name}", category="{model}",
                                                             subcategory="sensitivity", model="{model}", figure=name)
                                    for name in ("rls", "stability", "selection")}),
    params:
        **params("sensitivity"),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/sensitivity.log",
    localrule: True
    threads: 1
    script:
        "../scripts/sensitivity.py"
