rule prepare_model:
    """Resolve a model entry; convert a GGUF file once to a safetensors directory."""
    output:
        **outputs("prepare_model"),
    params:
        **params("prepare_model"),
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
