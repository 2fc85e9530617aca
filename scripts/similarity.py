"""Snakemake adapter for rule similarity."""

from lorp.jobs import job
from lorp.pipeline import similarity

with job(snakemake):
    w = snakemake.wildcards
    similarity(snakemake.input[0], dict(snakemake.output.items()), title=f"{w.model}: cosine similarity ({w.calib})")
