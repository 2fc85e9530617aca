"""Snakemake adapter for rule figure_sparsity."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import draw_sparsity

    w = snakemake.wildcards
    draw_sparsity(list(snakemake.input.plans), list(snakemake.input.redundancy), snakemake.output.png,
                  title=f"{w.model} ({w.calib}): layer-wise sparsity")
