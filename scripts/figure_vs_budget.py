"""Snakemake adapter for rule figure_vs_budget."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import draw_metric_vs_budget

    groups = snakemake.params.seed_groups if hasattr(snakemake.params, "seed_groups") else None
    draw_metric_vs_budget(snakemake.input.table, snakemake.wildcards.kind, snakemake.output.png, groups)
