rule evaluate_dense:
    """Perplexity of the unpruned model on every evaluation dataset."""
    input:
        model="results/{model}/model",
    output:
        ppl="results/{model}/eval/dense/ppl.csv",
        provenance="results/{model}/eval/dense/provenance.json",
    params:
        datasets=eval_datasets,
        compute=COMPUTE,
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/dense.log",
    threads: 2
    resources:
        gpu=gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
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
        datasets=eval_datasets,
        compute=COMPUTE,
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}.log",
    threads: 2
    resources:
        gpu=gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    script:
        "../scripts/evaluate.py"


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
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/dense-efficiency.log",
    threads: all_cores
    resources:
        gpu=gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
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
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}-efficiency.log",
    threads: all_cores
    resources:
        gpu=gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    script:
        "../scripts/efficiency.py"


rule evaluate_tasks_dense:
    """Zero-shot accuracy (lm-evaluation-harness) of the unpruned model."""
    input:
        model="results/{model}/model",
        data=zeroshot_data,
    output:
        tasks="results/{model}/eval/dense/tasks.csv",
        provenance="results/{model}/eval/dense/tasks.provenance.json",
    params:
        zeroshot=ZEROSHOT_PARAMS,
        compute=COMPUTE,
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/dense-tasks.log",
    threads: 2
    resources:
        gpu=gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    script:
        "../scripts/zeroshot.py"


rule evaluate_tasks_pruned:
    """Zero-shot accuracy (lm-evaluation-harness) of a pruned checkpoint."""
    input:
        model="results/{model}/checkpoints/{calib}/{method}-{budget}",
        plan="results/{model}/plans/{calib}/{method}-{budget}.json",
        data=zeroshot_data,
    output:
        tasks="results/{model}/eval/{calib}/{method}-{budget}/tasks.csv",
        provenance="results/{model}/eval/{calib}/{method}-{budget}/tasks.provenance.json",
    params:
        zeroshot=ZEROSHOT_PARAMS,
        compute=COMPUTE,
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}-tasks.log",
    threads: 2
    resources:
        gpu=gpus,
        mem_mb=model_mem_mb,
        runtime=model_runtime,
    script:
        "../scripts/zeroshot.py"
