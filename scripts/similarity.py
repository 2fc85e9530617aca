"""Snakemake adapter for rule similarity."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.depth import compute_similarity

    outputs = {k: v for k, v in snakemake.output.items() if k != "provenance"}
    compute_similarity(snakemake.input.activations, outputs, snakemake.params.similarity,
                       title=f"{snakemake.wildcards.model} ({snakemake.wildcards.calib})")
