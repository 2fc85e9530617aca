rule similarity:
    """The N x N inter-layer similarity (similarity.statistic), out of core from the activation files."""
    input:
        # a compared statistic reads its calibration's activations
        activations=lambda wildcards: fill(rules.capture_activations.output.activations, model=wildcards.model,
                                           calib=lc.activation_source(config, wildcards.calib)),
    output:
        cosine="results/{model}/similarity/{calib}/cosine.npy",
        csv="results/{model}/similarity/{calib}/cosine.csv",
        heatmap="results/{model}/similarity/{calib}/heatmap.png",
        extended="results/{model}/similarity/{calib}/cosine_extended.npy",
        last_token="results/{model}/similarity/{calib}/cosine_last_token.npy",
        summary="results/{model}/similarity/{calib}/similarity.json",
        per_sequence="results/{model}/similarity/{calib}/per_sequence.npz",
        provenance="results/{model}/similarity/{calib}/provenance.json",
    params:
        similarity=lambda wildcards: lc.similarity_params(config, wildcards.calib),
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
        rules.similarity.output.cosine,
    output:
        rls="results/{model}/structure/{calib}/rls.json",
        provenance="results/{model}/structure/{calib}/provenance.json",
    params:
        structure=lc.structure_params(config),
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
        rls="results/{model}/structure/{calib}/rls-k{k}.json",
        provenance="results/{model}/structure/{calib}/rls-k{k}.provenance.json",
    params:
        structure=lambda wildcards: lc.fixed_k_structure_params(config, wildcards.k),
    log:
        "results/logs/{model}/structure/{calib}-k{k}.log",
