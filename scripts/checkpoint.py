"""Snakemake adapter for rule prune_checkpoint."""

from lorp.jobs import job
from lorp.pipeline import checkpoint

with job(snakemake):
    checkpoint(snakemake.input.model, snakemake.input.plan, snakemake.output.checkpoint)
