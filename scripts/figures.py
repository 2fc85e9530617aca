"""Snakemake adapter for the figure rules (one script: each rule calls its own pipeline function)."""

from lorp import pipeline
from lorp.jobs import job

with job(snakemake):
    rule, out, inp = snakemake.rule, snakemake.output, snakemake.input
    w = snakemake.wildcards
    if rule == "figure_structure":
        plans = dict(zip(snakemake.config["methods"], inp.plans))
        pipeline.figure_structure(inp.cosine, inp.rls, plans, snakemake.params.budget, out.png,
                                  f"{w.model}: similarity and pruned layers ({w.calib})")
    elif rule == "figure_pruned_layers":
        pipeline.figure_pruned_map(inp.plans, out.png, f"{w.model}: pruned blocks per method ({w.calib})",
                                   names=[p.rsplit("/", 1)[1].rsplit("-", 1)[0] for p in inp.plans])
    elif rule == "figure_locality":
        labels = [p.split("/")[1] + "/" + p.split("/")[3] for p in inp.cosine]  # results/{model}/similarity/{calib}
        pipeline.figure_locality(dict(zip(labels, zip(inp.cosine, inp.rls))), out.png)
    elif rule == "figure_vs_budget":
        pipeline.figure_metric_vs_budget(inp.table, w.kind, out.png)
    elif rule == "k_ablation":
        labels = [p.split("/")[1] + "/" + p.split("/")[3] for p in inp.rls]  # results/{model}/structure/{calib}
        pipeline.summarise_k_ablation(inp.ppl, dict(zip(labels, inp.rls)), out.csv, out.png)
    else:  # pragma: no cover
        raise ValueError(f"no figure for rule {rule}")
