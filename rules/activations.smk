rule capture_activations:
    """One forward pass per calibration batch; the hidden state entering every block, one .npy per layer."""
    input:
        model=paths.MODEL_DIR,
        tokens=lambda wildcards: paths.tokens_of(config, wildcards),
    output:
        **outputs("capture_activations"),
    params:
        **params("capture_activations"),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/activations/{calib}.log",
    threads: 2
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/capture_activations.py"
