"""Snakemake adapter for rule figure_pruned_layers (plans come method-major, budgets within)."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import draw_pruned_layers

    w, p = snakemake.wildcards, snakemake.params
    names = [method for method in p.methods for _ in p.budgets]
    draw_pruned_layers(snakemake.input.plans, names, snakemake.output.png,
                       f"{w.model}: pruned blocks per method ({w.calib})")
