"""Snakemake adapter for rule figure_locality (one curve per model/calib label)."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import draw_locality

    inp = snakemake.input
    draw_locality(dict(zip(snakemake.params.labels, zip(inp.cosine, inp.rls), strict=True)), snakemake.output.png)
