# The paper's tables across every model, method and budget (recovered models included): CSV (long and wide)
# and Markdown; the recovery table.


rule summary:
    """All perplexities (long CSV) and paper Table 2: mean perplexity with the change against dense."""
    input:
        dense=dense_outputs(rules.evaluate_dense.output.ppl),
        pruned=all_pruned_outputs(rules.evaluate_pruned.output.ppl, rules.evaluate_recovered.output.ppl),
    output:
        csv="results/summary/ppl.csv",
        table="results/summary/ppl_table.csv",
        md=in_report("ppl", category="Tables", table="perplexity (Table 2)")("results/summary/ppl.md"),
        provenance="results/summary/provenance.json",
    params:
        kind="ppl",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/summary.log",
    localrule: True
    threads: 1
    script:
        "../scripts/summary.py"


use rule summary as summary_tasks with:
    input:
        dense=dense_outputs(rules.evaluate_tasks_dense.output.tasks),
        pruned=all_pruned_outputs(rules.evaluate_tasks_pruned.output.tasks, rules.evaluate_tasks_recovered.output.tasks),
    output:
        csv="results/summary/tasks.csv",
        table="results/summary/tasks_table.csv",
        md=in_report("tasks", category="Tables", table="zero-shot accuracy (Table 3)")("results/summary/tasks.md"),
        provenance="results/summary/tasks.provenance.json",
    params:
        kind="tasks",
    log:
        "results/logs/summary-tasks.log",


use rule summary as summary_efficiency with:
    input:
        dense=dense_outputs(rules.efficiency.output.efficiency),  # one file per model: the dense row and every pruned row
        pruned=[],
    output:
        csv="results/summary/efficiency.csv",
        table="results/summary/efficiency_table.csv",
        md=in_report("efficiency", category="Tables", table="efficiency")("results/summary/efficiency.md"),
        provenance="results/summary/efficiency.provenance.json",
    params:
        kind="efficiency",
    log:
        "results/logs/summary-efficiency.log",


rule summary_auto:
    """methods.auto: the candidate it picked for every model, calibration and budget, on the held-out windows
    and on the evaluation sets it never saw."""
    input:
        plans=[fill(rules.auto_plan.output.plan, method=AUTO, **w) for w in lc.auto_plans(config)],
        table=rules.summary.output.table,
    output:
        csv="results/summary/auto.csv",
        md=in_report("auto", category="Tables", table="auto (validation-guided choice)")("results/summary/auto.md"),
        provenance="results/summary/auto.provenance.json",
    params:
        labels=[{"model": w["model"], "calib": w["calib"]} for w in lc.auto_plans(config)],
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/summary-auto.log",
    localrule: True
    threads: 1
    script:
        "../scripts/summary_auto.py"


rule summary_seeds:
    """evaluation.seeds: Table 2's mean perplexity (and Table 3's accuracy) pooled over the calibration seeds."""
    input:
        ppl=rules.summary.output.table,
        **({"tasks": rules.summary_tasks.output.table} if config["zeroshot"]["tasks"] else {}),
    output:
        csv="results/summary/seeds.csv",
        md=in_report("seeds", category="Tables", table="over calibration seeds")("results/summary/seeds.md"),
        provenance="results/summary/seeds.provenance.json",
    params:
        groups=lc.seed_groups(config),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/summary-seeds.log",
    localrule: True
    threads: 1
    script:
        "../scripts/summary_seeds.py"


rule summary_recovery:
    """The recovered fraction of every recovered model, the methods' ranks before and after, and the cost."""
    input:
        table=rules.summary.output.table,
        recovered=recovered_outputs(rules.recover.output.recovery),
    output:
        csv="results/summary/recovery.csv",
        md=in_report("recovery", category="Tables", table="recovery (recovered fraction)")("results/summary/recovery.md"),
        provenance="results/summary/recovery.provenance.json",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/summary-recovery.log",
    localrule: True
    threads: 1
    script:
        "../scripts/summary_recovery.py"
