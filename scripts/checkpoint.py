"""Snakemake adapter for rule prune_checkpoint."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import prune_checkpoint

with job(snakemake):
    prune_checkpoint(snakemake.input.model, snakemake.input.plan, snakemake.output.checkpoint)
