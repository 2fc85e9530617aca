"""Snakemake adapter for rule statistics (the similarity statistics compared)."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import compare_statistics

with job(snakemake):
    p, inp = snakemake.params, snakemake.input
    compare_statistics(p.views, {k: list(inp[k]) for k in ("rls", "cosine", "summary", "plans")}, p.methods,
                       p.budgets, p.budget, snakemake.output.csv, snakemake.output.png)
