"""Snakemake adapter for rule figure_sparsity."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import draw_sparsity

with job(snakemake):
    w = snakemake.wildcards
    draw_sparsity(list(snakemake.input.plans), list(snakemake.input.redundancy), snakemake.output.png,
                  title=f"{w.model} ({w.calib}): layer-wise sparsity")
