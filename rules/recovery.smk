# Recovery after depth pruning (recovery.methods, docs/recovery.md): a recover job per depth plan and recovery
# method writes what rebuilds the recovered model (the patches, or the LoRA adapter), its log and its cost; the
# recovered model <method>-<budget>+<recovery> is evaluated (built in memory: the pruned model, then the
# recovery) and exported like any pruned model, and its rows (method <method>+<recovery>) join every table.


rule recover:
    """A recovery fitted to a depth plan: the closed-form patch from the stored activations (no forward pass),
    or a LoRA fine-tune of the pruned model on the training corpus."""
    input:
        unpack(recover_inputs),
    output:
        recovery=directory("results/{model}/recovery/{calib}/{method}-{budget}+{recovery}"),
        provenance="results/{model}/recovery/{calib}/{method}-{budget}+{recovery}.provenance.json",
    params:
        recovery=lambda wildcards: lc.recover_params(config, wildcards.recovery),
        contents=contents(recovery_data),
    conda:
        "../envs/model.yaml"
    log:
        "results/logs/{model}/recovery/{calib}/{method}-{budget}+{recovery}.log",
    threads: lambda wildcards: recover_threads(wildcards)
    resources:
        **GPU_RESOURCES,
    script:
        "../scripts/recover.py"


use rule evaluate_dense as evaluate_recovered with:
    input:
        unpack(recovered_model),
        sources=dataset_sources,
        corpora=dataset_corpora,
    output:
        ppl="results/{model}/eval/{calib}/{method}-{budget}+{recovery}/ppl.csv",
        provenance="results/{model}/eval/{calib}/{method}-{budget}+{recovery}/provenance.json",
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}+{recovery}.log",


use rule evaluate_tasks_dense as evaluate_tasks_recovered with:
    input:
        unpack(recovered_model),
        data=zeroshot_data,
    output:
        tasks="results/{model}/eval/{calib}/{method}-{budget}+{recovery}/tasks.csv",
        provenance="results/{model}/eval/{calib}/{method}-{budget}+{recovery}/tasks.provenance.json",
    log:
        "results/logs/{model}/eval/{calib}/{method}-{budget}+{recovery}-tasks.log",


use rule prune_checkpoint as recovered_checkpoint with:
    input:
        unpack(recovered_model),
    output:
        checkpoint=directory("results/{model}/checkpoints/{calib}/{method}-{budget}+{recovery}"),
        provenance="results/{model}/checkpoints/{calib}/{method}-{budget}+{recovery}.provenance.json",
    log:
        "results/logs/{model}/checkpoints/{calib}/{method}-{budget}+{recovery}.log",
