"""Snakemake adapter for rule calibration_tokens."""

from lorp.jobs import job
from lorp.pipeline import calibration

with job(snakemake):
    calibration(snakemake.input.model, snakemake.params.spec, snakemake.output.tokens, snakemake.output.meta)
