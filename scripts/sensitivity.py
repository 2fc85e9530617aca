"""Snakemake adapter for rule sensitivity (calibration variations and the bootstrap over sequences)."""

from lorp.workflow.jobs import job

with job(snakemake):
    from lorp.workflow.stages.reports import analyse_sensitivity

    inp = snakemake.input
    outputs = {k: v for k, v in snakemake.output.items() if k != "provenance"}
    analyse_sensitivity(snakemake.params.sensitivity, {k: list(inp[k]) for k in ("rls", "summary", "per_sequence",
                                                                                   "plans")},
                        outputs, snakemake.wildcards.model)
