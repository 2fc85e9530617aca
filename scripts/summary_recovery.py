"""Snakemake adapter for rule summary_recovery."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.recovery import summarise_recovery

    summarise_recovery(snakemake.input.table, [f"{d}/cost.json" for d in snakemake.input.recovered], snakemake.output.csv,
                       snakemake.output.md)
