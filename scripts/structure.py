"""Snakemake adapter for rule structure."""

from lorp.jobs import job
from lorp.pipeline import structure

with job(snakemake):
    structure(snakemake.input[0], snakemake.output.rls, snakemake.params.structure)
