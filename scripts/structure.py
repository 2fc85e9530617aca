"""Snakemake adapter for rules structure and structure_fixed_k."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.depth import analyse_structure

    analyse_structure(snakemake.input[0], snakemake.output.rls, snakemake.params.structure)
