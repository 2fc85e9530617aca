"""Snakemake adapter for rule mrp_sweep."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.sparse import sweep_mrp

    w = snakemake.wildcards
    sweep = snakemake.params.sweep
    sweep_mrp(
        snakemake.input.model,
        snakemake.input.get("norms"),
        w.metric,
        sweep["targets"],
        sweep["params"],
        sweep["sweep"],
        snakemake.output.json,
        snakemake.output.png,
        title=f"{w.model} ({w.calib}): MRP with {w.metric} scores",
    )
