# Which method for which model: the similarity statistics compared, and the stability of the structure and
# the plans under the calibration (variations and a bootstrap over sequences). Opt-in: similarity.compare,
# sensitivity.variations, sensitivity.bootstrap.resamples.


def view_inputs(views, files):
    """The files of each view (``model`` and ``calib`` wildcards), view by view: each of ``files`` (rls,
    cosine, summary, per_sequence) and its plans (methods x budgets, in config order)."""
    templates = {"rls": rules.structure.output.rls, "cosine": rules.similarity.output.cosine,
                 "summary": rules.similarity.output.summary, "per_sequence": rules.similarity.output.per_sequence}
    out = {name: [] for name in (*files, "plans")}
    for w in views:
        for name in files:
            out[name].append(fill(templates[name], **w))
        out["plans"] += [fill(rules.plan.output.plan, **w, method=m, budget=b)
                         for m in lc.selection_methods(config) for b in BUDGETS]
    return out


def sensitivity_inputs(wildcards):
    """What the sensitivity tables of a model read, view by view (lorp.workflow.config.sensitivity_views):
    the structure, the similarity summary, the per-sequence sums and the plans."""
    views = [{"model": wildcards.model, "calib": calib} for calib in lc.sensitivity_views(config)]
    return view_inputs(views, ("rls", "summary", "per_sequence"))


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
        methods=lc.selection_methods(config),
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


def sensitivity_figure(name):
    return in_report(f"sensitivity_{name}", category="{model}", subcategory="sensitivity", model="{model}",
                     figure=name)(f"results/{{model}}/sensitivity/{name}.png")


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
