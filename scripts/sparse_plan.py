"""Snakemake adapter for rule sparse_plan."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import make_sparse_plan

with job(snakemake):
    make_sparse_plan(
        snakemake.wildcards.metric,
        snakemake.wildcards.allocation,
        int(snakemake.wildcards.target),
        snakemake.input.get("model"),
        snakemake.output.plan,
        snakemake.params.plan,
        outliers_path=snakemake.input.get("outliers"),
        norms_dir=snakemake.input.get("norms"),
    )
