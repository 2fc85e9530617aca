"""Snakemake adapter for rule recover."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.recovery import recover

    recover(
        dict(snakemake.input.items()),
        snakemake.wildcards.recovery,
        snakemake.params.recovery,
        {"model": snakemake.wildcards.model, "calib": snakemake.wildcards.calib},
        snakemake.output.recovery,
    )
