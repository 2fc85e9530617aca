rule calibration_tokens:
    """Random windows of calibration text, tokenised with the model's tokenizer."""
    input:
        model=paths.MODEL_DIR,
    output:
        **outputs("calibration_tokens"),
    params:
        **params("calibration_tokens"),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/calib/{calib}.log",
    threads: 1
    script:
        "../scripts/calibration_tokens.py"
