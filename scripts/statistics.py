"""Snakemake adapter for rule statistics (the similarity statistics compared)."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import compare_statistics

    p, inp = snakemake.params, snakemake.input
    compare_statistics(p.views, {k: list(inp[k]) for k in ("rls", "cosine", "summary", "plans")}, p.methods,
                       p.budgets, p.budget, snakemake.output.csv, snakemake.output.png)
