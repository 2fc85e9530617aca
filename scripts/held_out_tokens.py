"""Snakemake adapter for rule held_out_tokens."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.calibration import sample_held_out

    p, out = snakemake.params, snakemake.output
    sample_held_out(snakemake.input.model, p.spec, p.held_out, snakemake.input.calibration, out.tokens, out.meta)
