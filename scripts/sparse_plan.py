"""Snakemake adapter for rule sparse_plan."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.sparse import make_sparse_plan

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
