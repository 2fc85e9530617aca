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


rule held_out_tokens:
    """methods.auto: the calibration windows that follow the calibration's own in the same draw, which no
    other stage sees; auto scores its candidate plans on them."""
    input:
        model=paths.MODEL_DIR,
        calibration=lambda wildcards: paths.tokens_of(config, wildcards),
    output:
        **outputs("held_out_tokens"),
    params:
        **params("held_out_tokens"),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/calib/{calib}-held-out.log",
    threads: 1
    script:
        "../scripts/held_out_tokens.py"
