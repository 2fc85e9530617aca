rule capture_activations:
    """One forward pass per calibration batch; the hidden state entering every block, one .npy per layer."""
    input:
        model=rules.prepare_model.output.model,
        tokens=tokens_of,
    output:
        activations=directory("results/{model}/activations/{calib}"),
        provenance="results/{model}/activations/{calib}.provenance.json",
    params:
        activations=lambda wildcards: lc.activation_params(config, wildcards.model, wildcards.calib),
        compute=compute,
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/activations/{calib}.log",
    threads: 2
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/capture_activations.py"
