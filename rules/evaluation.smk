rule evaluate_dense:
    """Perplexity of the unpruned model on every evaluation dataset."""
    input:
        model="results/{model}/model",
    output:
        "results/{model}/eval/dense/ppl.csv",
    params:
        datasets=EVAL_DATASETS,
        compute=COMPUTE,
        batch_size=config["evaluation"]["batch_size"],
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
        "results/{model}/eval/{calib}/{method}-{budget}/ppl.csv",
    params:
        datasets=EVAL_DATASETS,
        compute=COMPUTE,
        batch_size=config["evaluation"]["batch_size"],
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
    conda:
        "../envs/lorp.yaml"
    log:
        "results/logs/summary.log",
    threads: 1
    script:
        "../scripts/summary.py"
