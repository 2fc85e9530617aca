# The paper's tables across every model, method and budget: CSV (long and wide) and Markdown.


rule summary:
    """All perplexities (long CSV) and paper Table 2: mean perplexity with the change against dense."""
    input:
        dense=expand("results/{model}/eval/dense/ppl.csv", model=MODELS),
        pruned=pruned_targets("ppl.csv"),
    output:
        csv="results/summary/ppl.csv",
        table="results/summary/ppl_table.csv",
        md=report(
            "results/summary/ppl.md",
            caption="../report/ppl.rst",
            category="Tables",
            labels={"table": "perplexity (Table 2)"},
        ),
        provenance="results/summary/provenance.json",
    params:
        kind="ppl",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/summary.log",
    threads: 1
    script:
        "../scripts/summary.py"


rule summary_tasks:
    """All zero-shot accuracies (long CSV) and paper Table 3: per-task accuracy and the mean."""
    input:
        dense=expand("results/{model}/eval/dense/tasks.csv", model=MODELS),
        pruned=pruned_targets("tasks.csv"),
    output:
        csv="results/summary/tasks.csv",
        table="results/summary/tasks_table.csv",
        md=report(
            "results/summary/tasks.md",
            caption="../report/tasks.rst",
            category="Tables",
            labels={"table": "zero-shot accuracy (Table 3)"},
        ),
        provenance="results/summary/tasks.provenance.json",
    params:
        kind="tasks",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/summary-tasks.log",
    threads: 1
    script:
        "../scripts/summary.py"


rule summary_efficiency:
    """All efficiency measurements (long CSV) and the efficiency table with ratios against dense."""
    input:
        dense=expand("results/{model}/eval/dense/efficiency.csv", model=MODELS),
        pruned=pruned_targets("efficiency.csv"),
    output:
        csv="results/summary/efficiency.csv",
        table="results/summary/efficiency_table.csv",
        md=report(
            "results/summary/efficiency.md",
            caption="../report/efficiency.rst",
            category="Tables",
            labels={"table": "efficiency"},
        ),
        provenance="results/summary/efficiency.provenance.json",
    params:
        kind="efficiency",
    conda:
        "../envs/analysis.yaml"
    log:
        "results/logs/summary-efficiency.log",
    threads: 1
    script:
        "../scripts/summary.py"
