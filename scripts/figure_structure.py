"""Snakemake adapter for rule figure_structure."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import draw_structure

    w, p = snakemake.wildcards, snakemake.params
    draw_structure(snakemake.input.cosine, snakemake.input.rls, dict(zip(p.methods, snakemake.input.plans, strict=True)),
                   p.budget, snakemake.output.png, f"{w.model}: similarity and pruned layers ({w.calib})")
