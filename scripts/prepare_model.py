"""Snakemake adapter for rule prepare_model."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import prepare_model

with job(snakemake):
    prepare_model(snakemake.params.model["source"], snakemake.output.model, snakemake.params.model["storage_dtype"],
                  key=f"models.{snakemake.wildcards.model}.source")
