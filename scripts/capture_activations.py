"""Snakemake adapter for rule capture_activations (the batch size, a speed knob, is not a param)."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import capture

with job(snakemake):
    capture(
        snakemake.input.model,
        snakemake.input.tokens,
        snakemake.output.activations,
        snakemake.params.activations,
        snakemake.params.compute,
        batch_size=snakemake.config["activations"]["batch_size"],
    )
