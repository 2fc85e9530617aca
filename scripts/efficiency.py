"""Snakemake adapter for rule efficiency: the entries are the ones its input function declared."""

from lorp.workflow.jobs import job
from lorp.workflow.paths import efficiency_entries
from lorp.workflow.pipeline import measure_efficiency

with job(snakemake):
    measure_efficiency(
        snakemake.input.model,
        efficiency_entries(snakemake.config, snakemake.wildcards.model),
        snakemake.output.efficiency,
        snakemake.wildcards.model,
        snakemake.params.compute,
        snakemake.params.efficiency,
    )
