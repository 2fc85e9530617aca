rule prepare_model:
    """Resolve a model entry; convert a GGUF file once to a safetensors directory."""
    output:
        model=directory("results/{model}/model"),
        provenance="results/{model}/model.provenance.json",
    params:
        model=model_params,
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/prepare_model.log",
    threads: 2
    resources:
        gpu=0,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    script:
        "../scripts/prepare_model.py"
