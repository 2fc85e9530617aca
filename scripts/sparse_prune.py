"""Snakemake adapter for rule sparse_prune (the batch size is not a param: it does not change the weights)."""

from lorp.workflow.jobs import batch_size, job

with job(snakemake):
    from lorp.workflow.stages.sparse import prune_sparse

    prune_sparse(
        snakemake.input.model,
        snakemake.input.plan,
        snakemake.output.norms,
        snakemake.output.measured,
        snakemake.params.pruning,
        labels={"model": snakemake.wildcards.model, "calib": snakemake.wildcards.calib},
        norms_dir=snakemake.input.get("norms"),
        tokens_path=snakemake.input.get("tokens"),
        batch_size=batch_size(snakemake),
        weights_out=snakemake.output.weights,
    )
