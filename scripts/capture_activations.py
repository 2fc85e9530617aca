"""Snakemake adapter for rule capture_activations (the batch size, a speed knob, is not a param)."""

from lorp.jobs import job
from lorp.pipeline import activations

with job(snakemake):
    params = {**snakemake.params.activations, "batch_size": snakemake.config["activations"]["batch_size"]}
    activations(
        snakemake.input.model,
        snakemake.input.tokens,
        snakemake.output.activations,
        params,
        snakemake.params.compute,
    )
