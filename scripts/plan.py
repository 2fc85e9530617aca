"""Snakemake adapter for rule plan (``lorp-k<K>`` of the K ablation is LoRP on a fixed-K clustering)."""

from lorp.config import base_method
from lorp.jobs import job
from lorp.pipeline import plan

with job(snakemake):
    plan(
        base_method(snakemake.wildcards.method),
        int(snakemake.wildcards.budget),
        snakemake.input.extended,
        snakemake.input.last_token,
        snakemake.output.plan,
        snakemake.params.method_params,
        structure_path=snakemake.input.get("structure"),
    )
