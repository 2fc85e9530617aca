"""Snakemake adapter for rule calibration_tokens."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import sample_calibration

with job(snakemake):
    sample_calibration(snakemake.input.model, snakemake.params.spec, snakemake.output.tokens, snakemake.output.meta)
