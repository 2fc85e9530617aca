# Each evaluation once for the dense model (<rule>_dense) and once per plan (<rule>_pruned): the
# pruned rule reuses the dense rule's body with the prepared model and a plan as inputs, a depth plan or
# a sparse plan (method <metric>-<allocation>, budget = target in %) with the norms its blocks were pruned
# with; the pruned model is built in memory (no checkpoint). An auto plan's evaluation also reads the same
# evaluation of its evaluated candidates and copies the rows of the one whose blocks it removes (the same
# model is not evaluated twice). Efficiency is one job per model.
from lorp.sparse.names import parse_method
from lorp.workflow.jobs import ENTRY_SEPARATOR, REUSED_PREFIX


def model_sources(method, **wildcards):
    """What a pruned model ``{method}-{budget}`` is built from in memory: the prepared model and a depth plan,
    or for a sparse method (``wanda-mrp``, budget = target in %) its sparse plan, the norms its blocks were
    pruned with and their measurement."""
    w = {**wildcards, "method": method}
    sparse = parse_method(method)
    if sparse is None:
        return {"model": fill(rules.prepare_model.output.model, **w), "plan": fill(rules.plan.output.plan, **w)}
    w.update(metric=sparse[0], allocation=sparse[1], target=w["budget"])
    return {"model": fill(rules.prepare_model.output.model, **w), "plan": fill(rules.sparse_plan.output.plan, **w),
            "pruning": fill(rules.sparse_prune.output.norms, **w), "measured": fill(rules.sparse_prune.output.measured, **w)}


def evaluated_model(kind):
    """The inputs of a pruned model's evaluation of ``kind`` (ppl, tasks): its sources, and for an auto plan
    the same evaluation of each candidate the workflow evaluates anyway (a method of ``methods`` on an
    evaluated view, same model and budget), keyed candidate_<i>, whose rows it copies when the plan removes
    the same blocks (a chosen candidate that is not evaluated, a compared statistic's view, is evaluated as
    any plan)."""

    def inputs(wildcards):
        w = dict(wildcards.items())
        out = model_sources(**w)
        if w["method"] == lc.AUTO:
            template = getattr(getattr(rules, "evaluate_pruned" if kind == "ppl" else "evaluate_tasks_pruned").output, kind)
            evaluated = set(lc.evaluated_views(config))
            candidates = [c for c in lc.auto_candidates(config, w["calib"])
                          if c["method"] in config["methods"] and c["view"] in evaluated]
            out.update({f"{REUSED_PREFIX}{i}": fill(template, **{**w, "calib": c["view"], "method": c["method"]})
                        for i, c in enumerate(candidates)})
        return out

    return inputs


def efficiency_entries(wildcards):
    """The pruned models the efficiency job of a model measures against its dense model (every depth method
    at every budget and every sparse model, of every calibration), as (labels, sources)."""
    out = []
    for calib in config["calibration"]:
        for method, budget in lc.evaluated_models(config):
            sources = model_sources(method, model=wildcards.model, calib=calib, budget=budget)
            out.append(({"model": wildcards.model, "calib": calib, "method": method, "budget": int(budget),
                         "base_model": sources["model"], "plan": sources["plan"]}, sources))
    return out


def efficiency_inputs(wildcards):
    """The prepared model and what every pruned model of it is built from (<key>_<i> for entry i)."""
    files = {"model": fill(rules.prepare_model.output.model, model=wildcards.model)}
    for i, (_, sources) in enumerate(efficiency_entries(wildcards)):
        files.update({f"{key}{ENTRY_SEPARATOR}{i}": path for key, path in sources.items() if key != "model"})
    return files


def zeroshot_data(wildcards):
    """The task files read offline and the lm-eval task definitions shipped in lorp (each task's YAML and
    their utils.py), so that an edit of either reruns the task evaluations."""
    import lorp.evaluation.zeroshot as lz

    zs = lc.zeroshot_params(config)
    if zs["data_dir"] is None:
        return []
    definitions = [lz.TASK_DIR / f"{lz.offline_task_name(t)}.yaml" for t in zs["tasks"]] + [lz.TASK_DIR / "utils.py"]
    return [os.path.join(zs["data_dir"], lz.OFFLINE_FILES[t]) for t in zs["tasks"]] + [str(p) for p in definitions]


rule evaluate_dense:
    """Perplexity on every evaluation dataset (of the unpruned model, or with _pruned of a pruned one)."""
    input:
        model=rules.prepare_model.output.model,
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
