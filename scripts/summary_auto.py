"""Snakemake adapter for rule summary_auto."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import summarise_auto

with job(snakemake):
    summarise_auto(list(snakemake.input.plans), snakemake.params.labels, snakemake.input.table,
                   snakemake.output.csv, snakemake.output.md)
