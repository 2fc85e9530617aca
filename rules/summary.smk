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
