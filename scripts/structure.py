"""Snakemake adapter for rules structure and structure_fixed_k."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import analyse_structure

with job(snakemake):
    analyse_structure(snakemake.input[0], snakemake.output.rls, snakemake.params.structure)
