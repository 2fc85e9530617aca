"""Snakemake adapter for rules prune_checkpoint and sparse_checkpoint (exports)."""

from lorp.workflow.jobs import evaluation_sources, job
from lorp.workflow.pipeline import export_checkpoint

with job(snakemake):
    export_checkpoint(evaluation_sources(snakemake), snakemake.output.checkpoint, snakemake.params.compute)
