rule calibration_tokens:
    """Random windows of calibration text, tokenised with the model's tokenizer."""
    input:
        model=rules.prepare_model.output.model,
        source=calibration_source,
        corpus=calibration_corpus,
    output:
        tokens="results/{model}/calib/{calib}/tokens.npy",
        meta="results/{model}/calib/{calib}/meta.json",
        provenance="results/{model}/calib/{calib}/provenance.json",
    params:
        spec=lambda wildcards: lc.calibration_spec(config, wildcards.calib),
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
        model=rules.prepare_model.output.model,
        source=calibration_source,
        corpus=calibration_corpus,
        calibration=tokens_of,
    output:
        tokens="results/{model}/calib/{calib}/held_out.npy",
        meta="results/{model}/calib/{calib}/held_out.json",
        provenance="results/{model}/calib/{calib}/held_out.provenance.json",
    params:
        spec=lambda wildcards: lc.held_out_params(config, wildcards.calib)["spec"],
        held_out=lambda wildcards: lc.held_out_params(config, wildcards.calib)["held_out"],
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/calib/{calib}-held-out.log",
    threads: 1
    script:
        "../scripts/held_out_tokens.py"
