"""Snakemake adapter for rule held_out_tokens."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import sample_held_out

with job(snakemake):
    p, out = snakemake.params, snakemake.output
    sample_held_out(snakemake.input.model, p.spec, p.held_out, snakemake.input.calibration, out.tokens, out.meta)
