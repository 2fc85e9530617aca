"""Snakemake adapter for rule summary_sparsity."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import summarise_sparsity

with job(snakemake):
    summarise_sparsity(
        [*snakemake.input.dense, *snakemake.input.pruned],
        list(snakemake.input.measured),
        list(snakemake.input.redundancy),
        snakemake.output.csv,
        snakemake.output.table,
        snakemake.output.md,
    )
