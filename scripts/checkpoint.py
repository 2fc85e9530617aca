"""Snakemake adapter for rule prune_checkpoint."""

from lorp.jobs import job
from lorp.pipeline import prune_checkpoint

with job(snakemake):
    prune_checkpoint(snakemake.input.model, snakemake.input.plan, snakemake.output.checkpoint)
