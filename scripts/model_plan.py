"""Snakemake adapter for rule model_plan (the evaluation batch size, a speed knob, is not a param)."""

from lorp.workflow.jobs import batch_size, job

with job(snakemake):
    from lorp.workflow.stages.depth import make_model_plan

    make_model_plan(
        snakemake.wildcards.method,
        int(snakemake.wildcards.budget),
        dict(snakemake.input.items()),
        snakemake.output.plan,
        snakemake.params.method_params,
        snakemake.params.compute,
        batch_size(snakemake),
    )
