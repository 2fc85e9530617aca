rule capture_activations:
    """One forward pass per calibration batch; the hidden state entering every block, one .npy per layer."""
    input:
        model="results/{model}/model",
        tokens="results/{model}/calib/{calib}/tokens.npy",
    output:
        activations=directory("results/{model}/activations/{calib}"),
        provenance="results/{model}/activations/{calib}.provenance.json",
    params:
        activations=activation_params,
        compute=COMPUTE,
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/activations/{calib}.log",
    threads: 2
    resources:
        gpu=gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    script:
        "../scripts/capture_activations.py"
