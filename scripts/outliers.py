"""Snakemake adapter for rule outliers."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.sparse import measure_outliers

    measure_outliers(
        snakemake.input.model,
        snakemake.input.get("norms"),
        snakemake.wildcards.metric,
        snakemake.params.outliers,
        snakemake.output.outliers,
    )
