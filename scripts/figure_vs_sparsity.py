"""Snakemake adapter for rule figure_vs_sparsity."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import draw_metric_vs_sparsity

    draw_metric_vs_sparsity(snakemake.input.table, snakemake.wildcards.kind, snakemake.output.png)
