"""Snakemake adapter for rule figure_locality (one curve per model/calib label)."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import draw_locality

with job(snakemake):
    inp = snakemake.input
    draw_locality(dict(zip(snakemake.params.labels, zip(inp.cosine, inp.rls), strict=True)), snakemake.output.png)
