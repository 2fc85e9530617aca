"""Snakemake adapter for rule redundancy."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.sparse import assess_redundancy

    assess_redundancy(
        snakemake.input.model,
        snakemake.input.get("norms"),
        snakemake.wildcards.metric,
        list(snakemake.input.plans),
        snakemake.params.outliers,
        snakemake.output.redundancy,
        labels={"model": snakemake.wildcards.model, "calib": snakemake.wildcards.calib},
    )
