# Each evaluation once for the dense model (<rule>_dense) and once per plan (<rule>_pruned): the
# pruned rule reuses the dense rule's body with the prepared model and a plan as inputs, a depth plan or
# a sparse plan (method <metric>-<allocation>, budget = target in %) with the norms its blocks were pruned
# with; the pruned model is built in memory (no checkpoint). An auto plan's evaluation also reads the same
# evaluation of its evaluated candidates and copies the rows of the one whose blocks it removes (the same
# model is not evaluated twice). Efficiency is one job per model.


rule evaluate_dense:
    """Perplexity on every evaluation dataset (of the unpruned model, or with _pruned of a pruned one)."""
    input:
        model=rules.prepare_model.output.model,
        sources=dataset_sources,
        corpora=dataset_corpora,
    output:
        ppl="results/{model}/eval/dense/ppl.csv",
        provenance="results/{model}/eval/dense/provenance.json",
    params:
        datasets=lambda wildcards: lc.evaluation_datasets(config, wildcards.model),
        compute=compute,
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/dense.log",
    threads: 1  # one core each, so that evaluations run side by side (a GPU does the work on a cluster)
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/evaluate.py"


use rule evaluate_dense as evaluate_pruned with:
    input:
        unpack(evaluated_model("ppl")),
        sources=dataset_sources,
        corpora=dataset_corpora,
    output:
        ppl="results/{model}/eval/{calib}/{method}-{budget}/ppl.csv",
        provenance="results/{model}/eval/{calib}/{method}-{budget}/provenance.json",
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}.log",


rule efficiency:
    """Size, memory, prefill throughput and decode latency of the dense model and of every pruned model,
    each pruned one timed alternately with the dense one in this job, a model of several plans once (every
    core: nothing shares the machine)."""
    input:
        unpack(efficiency_inputs),
    output:
        efficiency="results/{model}/eval/efficiency.csv",
        provenance="results/{model}/eval/efficiency.provenance.json",
    params:
        efficiency=lc.efficiency_params(config),
        compute=compute,
        entries=lambda wildcards: [labels for labels, _ in efficiency_entries(wildcards)],
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/efficiency.log",
    threads: all_cores
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/efficiency.py"


rule evaluate_tasks_dense:
    """Zero-shot accuracy with lm-evaluation-harness."""
    input:
        model=rules.prepare_model.output.model,
        data=zeroshot_data,
    output:
        tasks="results/{model}/eval/dense/tasks.csv",
        provenance="results/{model}/eval/dense/tasks.provenance.json",
    params:
        zeroshot=lc.zeroshot_params(config),
        compute=compute,
        contents=contents(zeroshot_data),
    conda:
        "../envs/evaluation.yaml"
    log:
        "results/logs/{model}/eval/dense-tasks.log",
    threads: 1
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/zeroshot.py"


use rule evaluate_tasks_dense as evaluate_tasks_pruned with:
    input:
        unpack(evaluated_model("tasks")),
        data=zeroshot_data,
    output:
        tasks="results/{model}/eval/{calib}/{method}-{budget}/tasks.csv",
        provenance="results/{model}/eval/{calib}/{method}-{budget}/tasks.provenance.json",
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}-tasks.log",
