"""Snakemake adapter for rule figure_vs_budget."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import draw_metric_vs_budget

with job(snakemake):
    draw_metric_vs_budget(snakemake.input.table, snakemake.wildcards.kind, snakemake.output.png)
