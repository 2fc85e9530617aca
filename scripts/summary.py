"""Snakemake adapter for rules summary, summary_tasks and summary_efficiency."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import summarise

with job(snakemake):
    summarise(
        snakemake.params.kind,
        [*snakemake.input.dense, *snakemake.input.pruned],
        snakemake.output.csv,
        snakemake.output.md,
        snakemake.output.table,
    )
