"""Snakemake adapter for rule calibration_tokens."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.calibration import sample_calibration

    sample_calibration(snakemake.input.model, snakemake.params.spec, snakemake.output.tokens, snakemake.output.meta)
