"""Snakemake adapter for rule k_ablation."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import summarise_k_ablation

with job(snakemake):
    inp, out = snakemake.input, snakemake.output
    summarise_k_ablation(inp.ppl, dict(zip(snakemake.params.labels, inp.rls, strict=True)), out.csv, out.png)
