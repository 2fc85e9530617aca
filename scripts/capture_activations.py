"""Snakemake adapter for rule capture_activations."""

from lorp.jobs import job
from lorp.pipeline import activations

with job(snakemake):
    params = {**snakemake.params.activations, "batch_size": snakemake.params.batch_size}
    activations(snakemake.input.model, snakemake.input.tokens, snakemake.output[0], params, snakemake.params.compute)
