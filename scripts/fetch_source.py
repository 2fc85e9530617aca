"""Snakemake adapter for rule fetch_source."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.config import source_keys
    from lorp.workflow.stages.sources import fetch_source

    # the config keys only name the source in an error message (they are not a param: see source_keys)
    fetch_source(snakemake.params.source, snakemake.output.record,
                 keys=source_keys(snakemake.config, snakemake.wildcards.digest))
