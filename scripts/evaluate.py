"""Snakemake adapter for rules evaluate_dense and evaluate_pruned (the batch size is not a param)."""

from lorp.workflow.jobs import batch_size, evaluation_labels, evaluation_sources, job, reused_evaluations

with job(snakemake):
    from lorp.workflow.stages.evaluation import evaluate_perplexity

    evaluate_perplexity(
        evaluation_sources(snakemake),
        snakemake.params.datasets,
        snakemake.output.ppl,
        evaluation_labels(snakemake),
        snakemake.params.compute,
        batch_size=batch_size(snakemake),
        reuse=reused_evaluations(snakemake),
    )
