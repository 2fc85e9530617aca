"""Snakemake adapter for rule capture_activations (the batch size, a speed knob, is not a param)."""

from lorp.workflow.jobs import batch_size, job

with job(snakemake):
    from lorp.workflow.stages.calibration import capture

    capture(
        snakemake.input.model,
        snakemake.input.tokens,
        snakemake.output.activations,
        snakemake.params.activations,
        snakemake.params.compute,
        batch_size=batch_size(snakemake),
    )
