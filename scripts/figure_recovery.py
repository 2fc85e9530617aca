"""Snakemake adapter for rule figure_recovery."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.recovery import draw_recovery

    draw_recovery(snakemake.input.table, snakemake.wildcards.model, snakemake.wildcards.calib, snakemake.output.png)
