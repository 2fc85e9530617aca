"""Snakemake adapter for rules evaluate_tasks_dense and evaluate_tasks_pruned (batch size not a param)."""

from lorp.workflow.jobs import evaluation_labels, job
from lorp.workflow.pipeline import evaluate_zeroshot

with job(snakemake):
    evaluate_zeroshot(
        snakemake.input.model,
        snakemake.output.tasks,
        evaluation_labels(snakemake),
        snakemake.params.compute,
        snakemake.params.zeroshot,
        batch_size=snakemake.config["zeroshot"]["batch_size"],
    )
