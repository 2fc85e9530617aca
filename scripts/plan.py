"""Snakemake adapter for rule plan."""

from lorp.jobs import job
from lorp.pipeline import plan

with job(snakemake):
    plan(
        snakemake.wildcards.method,
        int(snakemake.wildcards.budget),
        snakemake.input.extended,
        snakemake.input.last_token,
        snakemake.output.plan,
        snakemake.params.method_params,
        structure_path=snakemake.input.get("structure"),
    )
