"""Snakemake adapter for rules efficiency_dense and efficiency_pruned."""

from lorp.workflow.jobs import evaluation_labels, job
from lorp.workflow.pipeline import evaluate_efficiency

with job(snakemake):
    evaluate_efficiency(
        snakemake.input.model,
        snakemake.output.efficiency,
        evaluation_labels(snakemake),
        snakemake.params.compute,
        snakemake.params.efficiency,
    )
