rule evaluate_dense:
    """Perplexity of the unpruned model on every evaluation dataset."""
    input:
        model="results/{model}/model",
    output:
        ppl="results/{model}/eval/dense/ppl.csv",
        provenance="results/{model}/eval/dense/provenance.json",
    params:
        datasets=EVAL_DATASETS,
        compute=COMPUTE,
    conda:
        "../envs/lorp.yaml"
    log:
        "results/logs/{model}/eval/dense.log",
    threads: 2
    resources:
        gpu=gpus,
    script:
        "../scripts/evaluate.py"


rule evaluate_pruned:
    """Perplexity of a pruned checkpoint on every evaluation dataset."""
    input:
        model="results/{model}/checkpoints/{calib}/{method}-{budget}",
        plan="results/{model}/plans/{calib}/{method}-{budget}.json",
    output:
        ppl="results/{model}/eval/{calib}/{method}-{budget}/ppl.csv",
        provenance="results/{model}/eval/{calib}/{method}-{budget}/provenance.json",
    params:
        datasets=EVAL_DATASETS,
        compute=COMPUTE,
    conda:
        "../envs/lorp.yaml"
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}.log",
    threads: 2
    resources:
        gpu=gpus,
    script:
        "../scripts/evaluate.py"


rule summary:
    """All perplexities in one table (CSV and Markdown), dense rows included."""
    input:
        dense=expand("results/{model}/eval/dense/ppl.csv", model=MODELS),
        pruned=pruned_targets(),
    output:
        csv="results/summary/ppl.csv",
        md="results/summary/ppl.md",
        provenance="results/summary/provenance.json",
    conda:
        "../envs/lorp.yaml"
    log:
        "results/logs/summary.log",
    threads: 1
    script:
        "../scripts/summary.py"


rule efficiency_dense:
    """Size, peak memory, prefill throughput and decode latency of the unpruned model."""
    input:
        model="results/{model}/model",
    output:
        efficiency="results/{model}/eval/dense/efficiency.csv",
        provenance="results/{model}/eval/dense/efficiency.provenance.json",
    params:
        efficiency=EFFICIENCY_PARAMS,
        compute=COMPUTE,
    conda:
        "../envs/lorp.yaml"
    log:
        "results/logs/{model}/eval/dense-efficiency.log",
    # all cores: timings are only comparable when no other job shares the machine
    threads: workflow.cores
    resources:
        gpu=gpus,
    script:
        "../scripts/efficiency.py"


rule efficiency_pruned:
    """Size, peak memory, prefill throughput and decode latency of a pruned checkpoint."""
    input:
        model="results/{model}/checkpoints/{calib}/{method}-{budget}",
        plan="results/{model}/plans/{calib}/{method}-{budget}.json",
    output:
        efficiency="results/{model}/eval/{calib}/{method}-{budget}/efficiency.csv",
        provenance="results/{model}/eval/{calib}/{method}-{budget}/efficiency.provenance.json",
    params:
        efficiency=EFFICIENCY_PARAMS,
        compute=COMPUTE,
    conda:
        "../envs/lorp.yaml"
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}-efficiency.log",
    threads: workflow.cores
    resources:
        gpu=gpus,
    script:
        "../scripts/efficiency.py"
