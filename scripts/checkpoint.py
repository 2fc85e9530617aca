"""Snakemake adapter for rules prune_checkpoint and sparse_checkpoint (exports)."""

from lorp.workflow.jobs import evaluation_sources, job

with job(snakemake):
    from lorp.workflow.stages.model import export_checkpoint

    export_checkpoint(evaluation_sources(snakemake), snakemake.output.checkpoint, snakemake.params.compute)
