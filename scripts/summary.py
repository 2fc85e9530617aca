"""Snakemake adapter for rule summary."""

from lorp.jobs import job
from lorp.pipeline import summarise_perplexity

with job(snakemake):
    summarise_perplexity([*snakemake.input.dense, *snakemake.input.pruned], snakemake.output.csv, snakemake.output.md)
