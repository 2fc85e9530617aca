"""Snakemake adapter for rule redundancy."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import assess_redundancy

with job(snakemake):
    assess_redundancy(
        snakemake.input.model,
        snakemake.input.get("norms"),
        snakemake.wildcards.metric,
        list(snakemake.input.plans),
        snakemake.params.outliers,
        snakemake.output.redundancy,
        labels={"model": snakemake.wildcards.model, "calib": snakemake.wildcards.calib},
    )
