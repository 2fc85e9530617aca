"""Snakemake adapter for rule prepare_model."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.model import prepare_model

    prepare_model(snakemake.params.model["source"], snakemake.output.model, snakemake.params.model["storage_dtype"],
                  key=f"models.{snakemake.wildcards.model}.source")
