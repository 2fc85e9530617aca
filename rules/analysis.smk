rule similarity:
    """The N x N inter-layer similarity (similarity.statistic), out of core from the activation files."""
    input:
        activations=lambda wildcards: paths.activations_of(config, wildcards),
    output:
        **outputs("similarity"),
    params:
        **params("similarity"),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/similarity/{calib}.log",
    threads: 2
    script:
        "../scripts/similarity.py"


rule structure:
    """Representation Locality Score, K, and the spectral clustering of layers."""
    input:
        paths.COSINE,
    output:
        **outputs("structure"),
    params:
        **params("structure"),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/structure/{calib}.log",
    localrule: True
    threads: 1
    script:
        "../scripts/structure.py"


use rule structure as structure_fixed_k with:
    output:
        **outputs("structure_fixed_k"),
    params:
        **params("structure_fixed_k"),
    log:
        "results/logs/{model}/structure/{calib}-k{k}.log",
