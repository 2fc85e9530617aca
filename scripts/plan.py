"""Snakemake adapter for rule plan (``lorp-k<K>`` of the K ablation is LoRP on a fixed-K clustering)."""

from lorp.workflow.config import base_method
from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.depth import make_plan

    make_plan(
        base_method(snakemake.wildcards.method),
        int(snakemake.wildcards.budget),
        dict(snakemake.input.items()),
        snakemake.output.plan,
        snakemake.params.method_params,
    )
