"""Snakemake adapter for rule k_ablation."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import summarise_k_ablation

    inp, out = snakemake.input, snakemake.output
    summarise_k_ablation(inp.ppl, dict(zip(snakemake.params.labels, inp.rls, strict=True)), out.csv, out.png)
