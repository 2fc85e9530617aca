# The paper's tables across every model, method and budget: CSV (long and wide) and Markdown.


rule summary:
    """All perplexities (long CSV) and paper Table 2: mean perplexity with the change against dense."""
    input:
        dense=dense_outputs("evaluate_dense"),
        pruned=all_pruned_outputs("evaluate_pruned"),
    output:
        **outputs("summary", md=in_report("ppl", category="Tables", table="perplexity (Table 2)")),
    params:
        **params("summary"),
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
        dense=dense_outputs("evaluate_tasks_dense"),
        pruned=all_pruned_outputs("evaluate_tasks_pruned"),
    output:
        **outputs("summary_tasks", md=in_report("tasks", category="Tables", table="zero-shot accuracy (Table 3)")),
    params:
        **params("summary_tasks"),
    log:
        "results/logs/summary-tasks.log",


use rule summary as summary_efficiency with:
    input:
        dense=dense_outputs("efficiency"),  # one file per model: the dense row and every pruned row
        pruned=[],
    output:
        **outputs("summary_efficiency", md=in_report("efficiency", category="Tables", table="efficiency")),
    params:
        **params("summary_efficiency"),
    log:
        "results/logs/summary-efficiency.log",


rule summary_auto:
    """methods.auto: the candidate it picked for every model, calibration and budget, on the held-out windows
    and on the evaluation sets it never saw."""
    input:
        plans=[x["plan"] for x in paths.auto_plans(config)],
        table=paths.SUMMARY_TABLE.format(kind="ppl"),
    output:
        **outputs("summary_auto", md=in_report("auto", category="Tables", table="auto (validation-guided choice)")),
    params:
        **params("summary_auto"),
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
        ppl=paths.SUMMARY_TABLE.format(kind="ppl"),
        **({"tasks": paths.SUMMARY_TABLE.format(kind="tasks")} if config["zeroshot"]["tasks"] else {}),
    output:
        **outputs("summary_seeds", md=in_report("seeds", category="Tables", table="over calibration seeds")),
    params:
        **params("summary_seeds"),
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/summary-seeds.log",
    localrule: True
    threads: 1
    script:
        "../scripts/summary_seeds.py"
