"""Snakemake adapter for rule summary_sparsity."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import summarise_sparsity

    summarise_sparsity(
        [*snakemake.input.dense, *snakemake.input.pruned],
        list(snakemake.input.measured),
        list(snakemake.input.redundancy),
        snakemake.output.csv,
        snakemake.output.table,
        snakemake.output.md,
    )
