rule calibration_tokens:
    """Random windows of calibration text, tokenised with the model's tokenizer."""
    input:
        model="results/{model}/model",
    output:
        tokens="results/{model}/calib/{calib}/tokens.npy",
        meta="results/{model}/calib/{calib}/meta.json",
        provenance="results/{model}/calib/{calib}/provenance.json",
    params:
        spec=calibration_params,
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/calib/{calib}.log",
    threads: 1
    script:
        "../scripts/calibration_tokens.py"
