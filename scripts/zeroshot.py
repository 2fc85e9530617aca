"""Snakemake adapter for rules evaluate_tasks_dense and evaluate_tasks_pruned (batch size not a param)."""

from lorp.workflow.jobs import batch_size, evaluation_labels, evaluation_sources, job, reused_evaluations

with job(snakemake):
    from lorp.workflow.stages.evaluation import evaluate_zeroshot

    evaluate_zeroshot(
        evaluation_sources(snakemake),
        snakemake.output.tasks,
        evaluation_labels(snakemake),
        snakemake.params.compute,
        snakemake.params.zeroshot,
        batch_size=batch_size(snakemake),
        reuse=reused_evaluations(snakemake),
    )
