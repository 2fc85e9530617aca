"""Snakemake adapter for rule summary_seeds."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import summarise_seeds

    summarise_seeds(dict(snakemake.input.items()), snakemake.params.groups, snakemake.output.csv, snakemake.output.md)
