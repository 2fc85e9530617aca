"""Snakemake adapter for rule outliers."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import measure_outliers

with job(snakemake):
    measure_outliers(
        snakemake.input.model,
        snakemake.input.get("norms"),
        snakemake.wildcards.metric,
        snakemake.params.outliers,
        snakemake.output.outliers,
    )
