"""Snakemake adapter for rule efficiency: the entries are its params' labels and its inputs' sources."""

from lorp.workflow.jobs import efficiency_entries, job

with job(snakemake):
    from lorp.workflow.stages.evaluation import measure_efficiency

    measure_efficiency(
        snakemake.input.model,
        efficiency_entries(snakemake),
        snakemake.output.efficiency,
        snakemake.wildcards.model,
        snakemake.params.compute,
        snakemake.params.efficiency,
    )
