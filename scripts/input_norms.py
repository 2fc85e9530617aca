"""Snakemake adapter for rules input_norms and obs_norms (SparseGPT's saliency, with its ``obs`` param); the
batch size is not a param: it does not change the norms."""

from lorp.workflow.jobs import batch_size, job

with job(snakemake):
    from lorp.workflow.stages.sparse import capture_norms

    capture_norms(
        snakemake.input.model,
        snakemake.input.tokens,
        snakemake.output.norms,
        snakemake.params.compute,
        batch_size=batch_size(snakemake),
        obs=snakemake.params.get("obs"),
    )
