"""Snakemake adapter for rule figure_vs_sparsity."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import draw_metric_vs_sparsity

with job(snakemake):
    draw_metric_vs_sparsity(snakemake.input.table, snakemake.output.png)
