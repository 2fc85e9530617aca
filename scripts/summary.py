"""Snakemake adapter for rules summary, summary_tasks and summary_efficiency."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import summarise

    summarise(
        snakemake.params.kind,
        [*snakemake.input.dense, *snakemake.input.pruned],
        snakemake.output.csv,
        snakemake.output.md,
        snakemake.output.table,
    )
