"""Snakemake adapter for rule summary_seeds."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import summarise_seeds

with job(snakemake):
    summarise_seeds(dict(snakemake.input.items()), snakemake.params.groups, snakemake.output.csv, snakemake.output.md)
