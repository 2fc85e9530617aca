rule similarity:
    """The N x N inter-layer cosine similarity, out of core from the activation files."""
    input:
        "results/{model}/activations/{calib}",
    output:
        cosine="results/{model}/similarity/{calib}/cosine.npy",
        csv="results/{model}/similarity/{calib}/cosine.csv",
        heatmap="results/{model}/similarity/{calib}/heatmap.png",
        extended="results/{model}/similarity/{calib}/cosine_extended.npy",
        last_token="results/{model}/similarity/{calib}/cosine_last_token.npy",
        provenance="results/{model}/similarity/{calib}/provenance.json",
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
        "results/{model}/similarity/{calib}/cosine.npy",
    output:
        rls="results/{model}/structure/{calib}/rls.json",
        provenance="results/{model}/structure/{calib}/provenance.json",
    params:
        structure=STRUCTURE_PARAMS,
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/structure/{calib}.log",
    threads: 1
    script:
        "../scripts/structure.py"


rule structure_fixed_k:
    """The spectral clustering with a fixed number of clusters, for the K ablation (lorp-k<K>)."""
    input:
        "results/{model}/similarity/{calib}/cosine.npy",
    output:
        rls="results/{model}/structure/{calib}/rls-k{k}.json",
        provenance="results/{model}/structure/{calib}/rls-k{k}.provenance.json",
    params:
        structure=lambda wildcards: lc.fixed_k_structure_params(config, wildcards.k),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/{model}/structure/{calib}-k{k}.log",
    threads: 1
    script:
        "../scripts/structure.py"
