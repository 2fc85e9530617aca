"""Snakemake adapter for rule efficiency: the entries are the ones its input function declared."""

from lorp.workflow.jobs import job
from lorp.workflow.paths import efficiency_entries

with job(snakemake):
    from lorp.workflow.stages.evaluation import measure_efficiency

    measure_efficiency(
        snakemake.input.model,
        efficiency_entries(snakemake.config, snakemake.wildcards.model),
        snakemake.output.efficiency,
        snakemake.wildcards.model,
        snakemake.params.compute,
        snakemake.params.efficiency,
    )
