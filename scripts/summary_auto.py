"""Snakemake adapter for rule summary_auto."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import summarise_auto

    summarise_auto(list(snakemake.input.plans), snakemake.params.labels, snakemake.input.table,
                   snakemake.output.csv, snakemake.output.md)
