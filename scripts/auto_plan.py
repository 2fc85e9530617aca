"""Snakemake adapter for rule auto_plan (the evaluation batch size, a speed knob, is not a param)."""

from lorp.workflow.jobs import batch_size, job

with job(snakemake):
    from lorp.workflow.stages.depth import choose_auto_plan

    candidates = [{"method": m, "statistic": s, "plan": path}
                  for (m, s), path in zip(snakemake.params.candidates, snakemake.input.plans, strict=True)]
    choose_auto_plan(snakemake.input.model, snakemake.input.held_out, candidates, int(snakemake.wildcards.budget),
                     snakemake.output.plan, snakemake.params.compute, batch_size(snakemake))
