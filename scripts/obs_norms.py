"""Snakemake adapter for rule obs_norms (the batch size is not a param: it does not change the factors)."""

from lorp.workflow.jobs import batch_size, job

with job(snakemake):
    from lorp.workflow.stages.sparse import capture_norms

    capture_norms(
        snakemake.input.model,
        snakemake.input.tokens,
        snakemake.output.norms,
        snakemake.params.compute,
        batch_size=batch_size(snakemake),
        obs=snakemake.params.obs,
    )
