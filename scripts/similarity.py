"""Snakemake adapter for rule similarity."""

from lorp.workflow.jobs import job
from lorp.workflow.pipeline import compute_similarity

with job(snakemake):
    w = snakemake.wildcards
    outputs = {k: v for k, v in snakemake.output.items() if k != "provenance"}
    compute_similarity(snakemake.input[0], outputs, title=f"{w.model}: cosine similarity ({w.calib})")
