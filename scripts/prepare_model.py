"""Snakemake adapter for rule prepare_model."""

from lorp.jobs import job
from lorp.pipeline import prepare_model

with job(snakemake):
    prepare_model(snakemake.params.model["source"], snakemake.output.model, snakemake.params.model["storage_dtype"])
