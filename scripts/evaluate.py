"""Snakemake adapter for rules evaluate_dense and evaluate_pruned."""

from lorp.jobs import job
from lorp.pipeline import evaluate_perplexity

with job(snakemake):
    w = snakemake.wildcards
    pruned = "plan" in snakemake.input.keys()
    labels = {
        "model": w.model,
        "calib": w.get("calib", "-"),
        "method": w.get("method", "dense"),
        "budget": int(w.get("budget", 0)),
        "checkpoint": snakemake.input.model if pruned else "-",
        "plan": snakemake.input.plan if pruned else "-",
    }
    evaluate_perplexity(
        snakemake.input.model,
        snakemake.params.datasets,
        snakemake.output[0],
        labels,
        snakemake.params.compute,
        batch_size=snakemake.params.batch_size,
    )
