"""Snakemake adapter for rule sparse_checkpoint (the batch size is not a param: it does not change the weights)."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import prune_sparse_checkpoint

with job(snakemake):
    prune_sparse_checkpoint(
        snakemake.input.model,
        snakemake.input.plan,
        snakemake.output.checkpoint,
        snakemake.output.measured,
        snakemake.params.pruning,
        labels={"model": snakemake.wildcards.model, "calib": snakemake.wildcards.calib},
        norms_dir=snakemake.input.get("norms"),
        tokens_path=snakemake.input.get("tokens"),
        batch_size=snakemake.config["activations"]["batch_size"],
    )
