"""The workflow around the science: config validation and slices, artifact paths and jobs, one function
per stage, provenance records, the audit, and the runtime of a Snakemake job."""
