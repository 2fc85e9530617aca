rule prepare_model:
    """Resolve a model entry; convert a GGUF file once to a safetensors directory."""
    input:
        source=model_source,
    output:
        model=directory("results/{model}/model"),
        provenance="results/{model}/model.provenance.json",
    params:
        model=lambda wildcards: lc.model_params(config, wildcards.model),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/prepare_model.log",
    threads: 2
    resources:
        gpu=0,  # converts on the CPU
        **MODEL_RESOURCES,
    script:
        "../scripts/prepare_model.py"
