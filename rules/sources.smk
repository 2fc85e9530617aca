rule fetch_source:
    """Check a model or corpus completely, and fetch it: a hub model's files into the Hugging Face cache, every
    record of a corpus read. Its record is named by a digest of the source, so a mistaken source fails here,
    before any job whose outputs Snakemake would remove, and the source put back finds its record again
    (docs/reruns.md). Runs where the snakemake command runs (a login node has the network)."""
    input:
        local_corpus,
    output:
        record=lc.SOURCE_RECORD,
        provenance="results/sources/{kind}/{digest}.provenance.json",
    params:
        source=lambda wildcards: source_entry(wildcards.digest),
    wildcard_constraints:
        kind="model|corpus",
        digest="[0-9a-f]{12}",
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/sources/{kind}-{digest}.log",
    localrule: True
    script:
        "../scripts/fetch_source.py"
