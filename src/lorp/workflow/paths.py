"""Every artifact of the workflow as a Snakemake path template, and the jobs a config implies.

One table, :data:`RULES`, names each rule's outputs and provenance record; ``rules/*.smk`` take their
outputs from it (``output: **outputs("similarity")``) and :func:`jobs` enumerates every job a config
asks for, with the outputs and the config slice (:data:`lorp.workflow.config.RULE_PARAMS`) the rules give it.
The default target ``all`` requests exactly those outputs and :mod:`lorp.workflow.audit` checks exactly those
jobs, so the workflow and its audit cannot describe two different DAGs.

Templates use Snakemake's wildcards (``{model}``, ``{calib}``, ``{method}``, ``{budget}``, ``{k}``,
``{kind}``, and for the sparse family ``{metric}``, ``{allocation}``, ``{target}``); :func:`fill` formats
one for given wildcards. A sparse method is evaluated as ``{method} = {metric}-{allocation}`` at
``{budget} = {target}``, so the evaluation rules serve both families (:func:`evaluated_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from . import config as lc
from ..depth.methods import AUTO, get_method
from ..sparse.names import parse_method

MODEL_DIR = "results/{model}/model"
MODEL_MANIFEST = MODEL_DIR + "/model.json"
CALIBRATION = "results/{model}/calib/{calib}"
TOKENS = CALIBRATION + "/tokens.npy"
HELD_OUT = CALIBRATION + "/held_out.npy"
ACTIVATIONS = "results/{model}/activations/{calib}"
SIMILARITY = "results/{model}/similarity/{calib}"
COSINE = SIMILARITY + "/cosine.npy"
PER_SEQUENCE = SIMILARITY + "/per_sequence.npz"
STRUCTURE = "results/{model}/structure/{calib}"
RLS = STRUCTURE + "/rls.json"
RLS_FIXED_K = STRUCTURE + "/rls-k{k}.json"
PLAN = "results/{model}/plans/{calib}/{method}-{budget}.json"
CHECKPOINT = "results/{model}/checkpoints/{calib}/{method}-{budget}"
EVAL_DENSE = "results/{model}/eval/dense"
EVAL_PRUNED = "results/{model}/eval/{calib}/{method}-{budget}"
MODEL_FIGURES = "results/{model}/figures/{calib}"
SUMMARY = "results/summary"
SUMMARY_TABLE = SUMMARY + "/{kind}_table.csv"
FIGURES = "results/figures"
LOGS = "results/logs"

SPARSITY = "results/{model}/sparsity/{calib}"
NORMS = SPARSITY + "/norms"
OUTLIERS = SPARSITY + "/{metric}/outliers.json"
REDUNDANCY = SPARSITY + "/{metric}/redundancy.json"
SWEEP = SPARSITY + "/{metric}/mrp_sweep"
SPARSE_NAME = "{metric}-{allocation}-{target}"
SPARSE_PLAN = SPARSITY + "/plans/" + SPARSE_NAME + ".json"
SPARSE_CHECKPOINT = SPARSITY + "/checkpoints/" + SPARSE_NAME
MEASURED = SPARSITY + "/measured/" + SPARSE_NAME + ".json"
PRUNING_NORMS = SPARSITY + "/pruned/" + SPARSE_NAME + ".npz"
EFFICIENCY = "results/{model}/eval/efficiency"
SENSITIVITY = "results/{model}/sensitivity"

PLAN_INPUTS = {"extended": SIMILARITY + "/cosine_extended.npy", "last_token": SIMILARITY + "/cosine_last_token.npy",
               "structure": RLS}
"""The file behind each input a method may declare (:attr:`lorp.depth.methods.Method.inputs`)."""


@dataclass(frozen=True)
class RuleFiles:
    """A rule's outputs (name -> template; ``directories`` are directory outputs) and its provenance record."""

    outputs: Mapping[str, str]
    provenance: str
    directories: tuple[str, ...] = ()


def _evaluations() -> dict[str, RuleFiles]:
    """The evaluation rules: each kind for the dense model (``_dense``) and for a plan (``_pruned``)."""
    kinds = {"evaluate": ("ppl", "ppl.csv", "provenance.json"),
             "evaluate_tasks": ("tasks", "tasks.csv", "tasks.provenance.json")}
    return {f"{rule}_{which}": RuleFiles({name: f"{base}/{file}"}, f"{base}/{prov}")
            for rule, (name, file, prov) in kinds.items()
            for which, base in (("dense", EVAL_DENSE), ("pruned", EVAL_PRUNED))}


def _summary(kind: str, provenance: str) -> RuleFiles:
    return RuleFiles({"csv": f"{SUMMARY}/{kind}.csv", "table": SUMMARY_TABLE.format(kind=kind),
                      "md": f"{SUMMARY}/{kind}.md"}, f"{SUMMARY}/{provenance}")


RULES: dict[str, RuleFiles] = {
    "prepare_model": RuleFiles({"model": MODEL_DIR}, "results/{model}/model.provenance.json", ("model",)),
    "calibration_tokens": RuleFiles({"tokens": TOKENS, "meta": CALIBRATION + "/meta.json"},
                                    CALIBRATION + "/provenance.json"),
    "capture_activations": RuleFiles({"activations": ACTIVATIONS}, ACTIVATIONS + ".provenance.json",
                                     ("activations",)),
    "similarity": RuleFiles({"cosine": COSINE, "csv": SIMILARITY + "/cosine.csv", "heatmap": SIMILARITY + "/heatmap.png",
                             "extended": PLAN_INPUTS["extended"], "last_token": PLAN_INPUTS["last_token"],
                             "summary": SIMILARITY + "/similarity.json", "per_sequence": PER_SEQUENCE},
                            SIMILARITY + "/provenance.json"),
    "structure": RuleFiles({"rls": RLS}, STRUCTURE + "/provenance.json"),
    "structure_fixed_k": RuleFiles({"rls": RLS_FIXED_K}, STRUCTURE + "/rls-k{k}.provenance.json"),
    "plan": RuleFiles({"plan": PLAN}, PLAN.removesuffix(".json") + ".provenance.json"),
    "held_out_tokens": RuleFiles({"tokens": HELD_OUT, "meta": CALIBRATION + "/held_out.json"},
                                 CALIBRATION + "/held_out.provenance.json"),
    "auto_plan": RuleFiles({"plan": PLAN}, PLAN.removesuffix(".json") + ".provenance.json"),
    "prune_checkpoint": RuleFiles({"checkpoint": CHECKPOINT}, CHECKPOINT + ".provenance.json", ("checkpoint",)),
    **_evaluations(),
    "summary": _summary("ppl", "provenance.json"),
    "summary_tasks": _summary("tasks", "tasks.provenance.json"),
    "efficiency": RuleFiles({"efficiency": EFFICIENCY + ".csv"}, EFFICIENCY + ".provenance.json"),
    "summary_efficiency": _summary("efficiency", "efficiency.provenance.json"),
    "figure_structure": RuleFiles({"png": MODEL_FIGURES + "/structure.png"}, MODEL_FIGURES + "/structure.provenance.json"),
    "figure_pruned_layers": RuleFiles({"png": MODEL_FIGURES + "/pruned_layers.png"},
                                      MODEL_FIGURES + "/pruned_layers.provenance.json"),
    "summary_seeds": RuleFiles({"csv": SUMMARY + "/seeds.csv", "md": SUMMARY + "/seeds.md"},
                               SUMMARY + "/seeds.provenance.json"),
    "summary_auto": RuleFiles({"csv": SUMMARY + "/auto.csv", "md": SUMMARY + "/auto.md"},
                              SUMMARY + "/auto.provenance.json"),
    "statistics": RuleFiles({"csv": SUMMARY + "/statistics.csv", "png": FIGURES + "/statistics.png"},
                            SUMMARY + "/statistics.provenance.json"),
    "sensitivity": RuleFiles({"stability": SENSITIVITY + "/stability.csv", "rls": SENSITIVITY + "/rls.csv",
                              "selection": SENSITIVITY + "/selection.csv", "rls_png": SENSITIVITY + "/rls.png",
                              "stability_png": SENSITIVITY + "/stability.png",
                              "selection_png": SENSITIVITY + "/selection.png"},
                             SENSITIVITY + "/provenance.json"),
    "figure_locality": RuleFiles({"png": FIGURES + "/locality.png"}, FIGURES + "/locality.provenance.json"),
    "figure_vs_budget": RuleFiles({"png": FIGURES + "/{kind}_vs_budget.png"},
                                  FIGURES + "/{kind}_vs_budget.provenance.json"),
    "k_ablation": RuleFiles({"csv": SUMMARY + "/k_ablation.csv", "png": FIGURES + "/k_ablation.png"},
                            FIGURES + "/k_ablation.provenance.json"),
    "input_norms": RuleFiles({"norms": NORMS}, NORMS + ".provenance.json", ("norms",)),
    "outliers": RuleFiles({"outliers": OUTLIERS}, OUTLIERS.removesuffix(".json") + ".provenance.json"),
    "sparse_plan": RuleFiles({"plan": SPARSE_PLAN}, SPARSE_PLAN.removesuffix(".json") + ".provenance.json"),
    "sparse_prune": RuleFiles({"norms": PRUNING_NORMS, "measured": MEASURED},
                              PRUNING_NORMS.removesuffix(".npz") + ".provenance.json"),
    "sparse_checkpoint": RuleFiles({"checkpoint": SPARSE_CHECKPOINT}, SPARSE_CHECKPOINT + ".provenance.json",
                                   ("checkpoint",)),
    "redundancy": RuleFiles({"redundancy": REDUNDANCY}, REDUNDANCY.removesuffix(".json") + ".provenance.json"),
    "mrp_sweep": RuleFiles({"json": SWEEP + ".json", "png": SWEEP + ".png"}, SWEEP + ".provenance.json"),
    "summary_sparsity": _summary("sparsity", "sparsity.provenance.json"),
    "figure_sparsity": RuleFiles({"png": MODEL_FIGURES + "/sparsity.png"}, MODEL_FIGURES + "/sparsity.provenance.json"),
    "figure_vs_sparsity": RuleFiles({"png": FIGURES + "/ppl_vs_sparsity.png"},
                                    FIGURES + "/ppl_vs_sparsity.provenance.json"),
}

CHECKPOINT_RULES = ("prune_checkpoint", "sparse_checkpoint")
"""The export rules: a pruned model as a Hugging Face directory, made for the names ``checkpoints.export``
lists (and for any other plan when its directory is asked for by path)."""


def fill(template: str, wildcards: Mapping[str, Any]) -> str:
    """``template`` with its wildcards replaced."""
    return template.format(**wildcards)


def plan_inputs(method: str, wildcards: Mapping[str, Any]) -> dict[str, str]:
    """The files a plan of ``method`` reads (the method's declared inputs; ``lorp-k<K>`` reads the
    fixed-K clustering instead of ``rls.json``)."""
    k = lc.ablation_k(method)
    out = {}
    for name in get_method(lc.base_method(method)).inputs:
        template = RLS_FIXED_K if name == "structure" and k is not None else PLAN_INPUTS[name]
        out[name] = fill(template, {**wildcards, "k": k})
    return out


def evaluated_model(method: str, wildcards: Mapping[str, Any]) -> dict[str, str]:
    """What an evaluation of ``{method}-{budget}`` reads to build the pruned model in memory: the prepared
    model and the plan, a depth plan, or for a sparse method (``wanda-mrp``, budget = target in %) the
    sparse plan with the norms its blocks were pruned with and their measurement."""
    sparse = parse_method(method)
    if sparse is None:
        return {"model": fill(MODEL_DIR, wildcards), "plan": fill(PLAN, wildcards)}
    w = {**wildcards, "metric": sparse[0], "allocation": sparse[1], "target": wildcards["budget"]}
    return {"model": fill(MODEL_DIR, w), "plan": fill(SPARSE_PLAN, w), "pruning": fill(PRUNING_NORMS, w),
            "measured": fill(MEASURED, w)}


REUSED_PREFIX = "candidate_"
"""The input keys of the candidate evaluations an ``auto`` evaluation may copy (:func:`reused_evaluations`)."""


def reused_evaluations(config: Mapping[str, Any], rule: str, wildcards: Mapping[str, Any]) -> dict[str, str]:
    """For an ``auto`` plan, the output of the evaluation ``rule`` (``evaluate_pruned``,
    ``evaluate_tasks_pruned``) for each of its candidates that the workflow evaluates anyway (a method of
    ``methods`` on an evaluated view, at the same model and budget), keyed ``candidate_<i>``. The ``auto``
    plan removes the blocks of the candidate it chose, so its evaluation copies that candidate's rows
    (:func:`lorp.workflow.pipeline.reused_rows`) instead of evaluating the same model a second time; a
    chosen candidate that is not evaluated (a compared statistic's view) is evaluated as any plan. Empty
    for every other method."""
    if wildcards["method"] != AUTO:
        return {}
    (template,) = RULES[rule].outputs.values()
    evaluated = set(lc.evaluated_views(config))
    candidates = [c for c in lc.auto_candidates(config, wildcards["calib"])
                  if c["method"] in config["methods"] and c["view"] in evaluated]
    return {f"{REUSED_PREFIX}{i}": fill(template, {**wildcards, "calib": c["view"], "method": c["method"]})
            for i, c in enumerate(candidates)}


def efficiency_entries(config: Mapping[str, Any], model: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The pruned models the efficiency job of ``model`` measures against its dense model: every depth
    method at every budget and every sparse model, of every calibration, as (labels, sources)."""
    out = []
    pairs = [(m, b) for m in config["methods"] for b in sorted(config["budgets"])] + lc.sparse_evaluations(config)
    for calib in config["calibration"]:
        for method, budget in pairs:
            sources = evaluated_model(method, {"model": model, "calib": calib, "method": method, "budget": budget})
            out.append(({"model": model, "calib": calib, "method": method, "budget": int(budget),
                         "base_model": sources["model"], "plan": sources["plan"]}, sources))
    return out


def tokens_of(config: Mapping[str, Any], wildcards: Mapping[str, Any]) -> str:
    """The calibration tokens a capture of ``{calib}`` reads (a view's shared tokens)."""
    return fill(TOKENS, {**wildcards, "calib": lc.token_source(config, wildcards["calib"])})


def activations_of(config: Mapping[str, Any], wildcards: Mapping[str, Any]) -> str:
    """The activations the similarity of ``{calib}`` reads (a compared statistic reads its calibration's)."""
    return fill(ACTIVATIONS, {**wildcards, "calib": lc.activation_source(config, wildcards["calib"])})


def compared_statistics(config: Mapping[str, Any]) -> list[str]:
    """The statistics of the statistics table: the main one first, then the compared ones (none: no table)."""
    sim = config["similarity"]
    others = [s for s in sim["compare"] if s != sim["statistic"]]
    return [sim["statistic"], *others] if others else []


def statistics_views(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The views of the statistics table, as ``model``, ``calib`` (the calibration entry), ``statistic`` and
    ``view`` (the ``{calib}`` of its files), model by model, each calibration's statistics in
    :func:`compared_statistics` order."""
    statistics = compared_statistics(config)
    out = []
    for model in config["models"]:
        for calib in config["calibration"]:
            out += [{"model": model, "calib": calib, "statistic": s,
                     "view": calib if s == statistics[0] else f"{calib}{lc.VIEW_SEPARATOR}{s}"} for s in statistics]
    return out


def view_inputs(config: Mapping[str, Any], views: Sequence[Mapping[str, str]],
                files: Sequence[str]) -> dict[str, list[str]]:
    """The files of each view (``model`` and ``calib`` wildcards), view by view: each of ``files`` (``rls``,
    ``cosine``, ``summary``, ``per_sequence``) and its plans (methods x budgets, in config order)."""
    templates = {"rls": RLS, "cosine": COSINE, "summary": RULES["similarity"].outputs["summary"],
                 "per_sequence": PER_SEQUENCE}
    out: dict[str, list[str]] = {name: [] for name in (*files, "plans")}
    for w in views:
        for name in files:
            out[name].append(fill(templates[name], w))
        out["plans"] += [fill(PLAN, {**w, "method": m, "budget": b}) for m in lc.selection_methods(config)
                         for b in sorted(config["budgets"])]
    return out


def statistics_inputs(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the statistics table reads, in :func:`statistics_views` order: each view's structure, similarity
    matrix and summary, and its plans."""
    views = [{"model": v["model"], "calib": v["view"]} for v in statistics_views(config)]
    return view_inputs(config, views, ("rls", "cosine", "summary"))


def sensitivity_inputs(config: Mapping[str, Any], model: str) -> dict[str, list[str]]:
    """What the sensitivity tables of ``model`` read, view by view (:func:`lorp.workflow.config.sensitivity_views`):
    the structure, the similarity summary, the per-sequence sums and the plans."""
    views = [{"model": model, "calib": calib} for calib in lc.sensitivity_views(config)]
    return view_inputs(config, views, ("rls", "summary", "per_sequence"))


def auto_inputs(config: Mapping[str, Any], wildcards: Mapping[str, Any]) -> dict[str, Any]:
    """What the ``auto`` plan of ``{calib}`` at ``{budget}`` reads: the prepared model, the held-out windows
    and every candidate plan (:func:`lorp.workflow.config.auto_candidates`, in that order)."""
    plans = [fill(PLAN, {**wildcards, "calib": c["view"], "method": c["method"]})
             for c in lc.auto_candidates(config, wildcards["calib"])]
    return {"model": fill(MODEL_DIR, wildcards), "held_out": fill(HELD_OUT, wildcards), "plans": plans}


def auto_plans(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every ``auto`` plan (``model``, ``calib``, ``budget`` and ``plan``, its path), in the summary's order."""
    return [{"model": model, "calib": calib, "budget": budget,
             "plan": fill(PLAN, {"model": model, "calib": calib, "method": AUTO, "budget": budget})}
            for model in config["models"] for calib in lc.evaluated_views(config) for budget in sorted(config["budgets"])]


def checkpoint_rule(method: str) -> str:
    """The export rule of a method's checkpoints: ``prune_checkpoint`` (depth) or ``sparse_checkpoint``."""
    return "prune_checkpoint" if parse_method(method) is None else "sparse_checkpoint"


@dataclass(frozen=True)
class Job:
    """One job of the workflow: its rule, wildcards, outputs, provenance record and config slice."""

    rule: str
    wildcards: dict[str, str]
    outputs: dict[str, str]
    provenance: str
    params: dict[str, Any]


def code_params(rule: str) -> dict[str, str]:
    """``{"code": <fingerprint>}`` of the package code ``rule``'s script reaches (:mod:`lorp.workflow.fingerprint`);
    empty for a rule without a script."""
    from .fingerprint import rule_code

    code = rule_code(rule)
    return {"code": code} if code else {}


def _job(config: Mapping[str, Any], rule: str, **wildcards: Any) -> Job:
    w = {k: str(v) for k, v in wildcards.items()}
    files = RULES[rule]
    outputs = {name: fill(t, w) for name, t in files.outputs.items()}
    return Job(rule, w, outputs, fill(files.provenance, w), {**lc.rule_params(config, rule, w), **code_params(rule)})


SUMMARIES = {"evaluate": "summary", "evaluate_tasks": "summary_tasks"}
"""The summary rule of each per-plan evaluation kind (``<kind>_dense`` and ``<kind>_pruned`` feed it)."""


def evaluation_rules(config: Mapping[str, Any]) -> list[str]:
    """The per-plan evaluation kinds the config asks for: perplexity always, zero-shot tasks when set
    (efficiency is one job per model: ``efficiency.enabled``)."""
    return ["evaluate"] + (["evaluate_tasks"] if config["zeroshot"]["tasks"] else [])


def jobs(config: Mapping[str, Any]) -> Iterator[Job]:
    """Every job a validated config implies, in a stable order."""
    evaluations = evaluation_rules(config)
    exported = lc.exported_checkpoints(config)
    depth = [(m, b) for m in lc.selection_methods(config) for b in sorted(config["budgets"])]
    auto = [(AUTO, b) for b in sorted(config["budgets"])] if AUTO in config["methods"] else []
    pairs = depth + [(m, b) for m in lc.ablation_methods(config) for b in lc.ablation_budgets(config)]
    for model in config["models"]:
        yield _job(config, "prepare_model", model=model)
        if lc.sensitivity_enabled(config):
            yield _job(config, "sensitivity", model=model)
        for rule in evaluations:
            yield _job(config, f"{rule}_dense", model=model)
        if config["efficiency"]["enabled"]:
            yield _job(config, "efficiency", model=model)
        for calib, view in lc.views(config).items():
            w = {"model": model, "calib": calib}
            if lc.token_source(config, calib) == calib:
                yield _job(config, "calibration_tokens", **w)
            if lc.activation_source(config, calib) == calib:
                yield _job(config, "capture_activations", **w)
            for rule in ("similarity", "structure"):
                yield _job(config, rule, **w)
            if not view.evaluated:  # a compared statistic: its structure and plans only
                for method, budget in depth:
                    yield _job(config, "plan", **w, method=method, budget=budget)
                continue
            for k in config["ablation"]["lorp_k"]:
                yield _job(config, "structure_fixed_k", **w, k=k)
            for rule in ("figure_structure", "figure_pruned_layers"):
                yield _job(config, rule, **w)
            if auto:
                yield _job(config, "held_out_tokens", **w)
            for method, budget in pairs + auto:
                wb = {**w, "method": method, "budget": budget}
                yield _job(config, "auto_plan" if method == AUTO else "plan", **wb)
                if f"{method}-{budget}" in exported and calib in config["calibration"]:
                    yield _job(config, "prune_checkpoint", **wb)
                for rule in evaluations if method in config["methods"] else ["evaluate"]:
                    yield _job(config, f"{rule}_pruned", **wb)
    for rule in evaluations:
        yield _job(config, SUMMARIES[rule])
        yield _job(config, "figure_vs_budget", kind=lc.SUMMARY_KINDS[SUMMARIES[rule]])
    if config["efficiency"]["enabled"]:
        yield _job(config, "summary_efficiency")
    yield _job(config, "figure_locality")
    if compared_statistics(config):
        yield _job(config, "statistics")
    if AUTO in config["methods"]:
        yield _job(config, "summary_auto")
    if config["evaluation"]["seeds"]:
        yield _job(config, "summary_seeds")
    if config["ablation"]["lorp_k"]:
        yield _job(config, "k_ablation")
    yield from _sparse_jobs(config, evaluations, exported)


def _sparse_jobs(config: Mapping[str, Any], evaluations: list[str], exported: set[str]) -> Iterator[Job]:
    """The sparse family's jobs (none without ``sparsity.targets`` or ``sparsity.nm``)."""
    plans = lc.sparse_plans(config)
    if not plans:
        return
    for model in config["models"]:
        for calib in config["calibration"]:
            w = {"model": model, "calib": calib}
            yield _job(config, "input_norms", **w)
            for metric in config["sparsity"]["metrics"]:
                yield _job(config, "outliers", **w, metric=metric)
                for _, allocation, target in (p for p in plans if p[0] == metric):
                    ws = {**w, "metric": metric, "allocation": allocation, "target": target}
                    yield _job(config, "sparse_plan", **ws)
                    yield _job(config, "sparse_prune", **ws)
                    if f"{metric}-{allocation}-{target}" in exported:
                        yield _job(config, "sparse_checkpoint", **ws)
                    for rule in evaluations:
                        yield _job(config, f"{rule}_pruned", **w, method=f"{metric}-{allocation}", budget=target)
                if lc.redundancy_plans(config, metric):
                    yield _job(config, "redundancy", **w, metric=metric)
                if lc.sweep_enabled(config):
                    yield _job(config, "mrp_sweep", **w, metric=metric)
            if lc.sparse_targets(config):
                yield _job(config, "figure_sparsity", **w)
    yield _job(config, "summary_sparsity")
    yield _job(config, "figure_vs_sparsity")


def sparse_files(config: Mapping[str, Any], template: str, **wildcards: Any) -> list[str]:
    """``template`` (a sparse plan, checkpoint or measurement) filled for every sparse plan of the config,
    for every model and calibration not fixed by ``wildcards``; with ``per_row=True`` only the per-row
    allocations' plans (those :func:`lorp.workflow.config.redundancy_plans` lists)."""
    per_row = wildcards.pop("per_row", False)
    out = []
    for model in [wildcards["model"]] if "model" in wildcards else list(config["models"]):
        for calib in [wildcards["calib"]] if "calib" in wildcards else list(config["calibration"]):
            for metric, allocation, target in lc.sparse_plans(config):
                if "metric" in wildcards and metric != wildcards["metric"]:
                    continue
                if per_row and allocation not in config["sparsity"]["allocations"]:
                    continue
                out.append(fill(template, {"model": model, "calib": calib, "metric": metric,
                                           "allocation": allocation, "target": target}))
    return out


def targets(config: Mapping[str, Any]) -> list[str]:
    """What the default target ``all`` requests: every output and provenance record of every job (the
    exported checkpoints among them)."""
    out = []
    for job in jobs(config):
        out += list(job.outputs.values())
        out.append(job.provenance)
    return out
