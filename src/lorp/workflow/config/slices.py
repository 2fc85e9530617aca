"""Each rule's config slice: exactly what its outputs depend on (the rules' params, so Snakemake reruns a job
when its slice changes), and the enumerations of what a config asks for (plans, sparse models, exports)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from ...data import BUILTIN_SOURCES
from ...depth.methods import AUTO, get_method
from ...depth.statistics import get_statistic
from ...sparse.allocation_plans import get_allocation
from ...sparse.metrics import get_metric
from ...sparse.names import method_name, nm_allocation, parse_nm
from ..fingerprint import file_digest
from .views import (VIEW_SEPARATOR, _sorted, ablation_budgets, ablation_methods, base_method, calibration_spec,
                    evaluated_views, similarity_methods, sensitivity_views, view, views)

SWEPT_ALLOCATION = "mrp"


"""The allocation whose loop ``sparsity.sweep`` runs for other settings (``mrp_sweep``)."""


def model_params(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """What the prepared model depends on: its source and the dtype a GGUF file is converted to."""
    entry = config["models"][model]
    return {"source": entry["source"], "storage_dtype": entry["storage_dtype"]}


def sensitivity_enabled(config: Mapping[str, Any]) -> bool:
    """Whether the config asks for the sensitivity tables (variations or a bootstrap)."""
    sens = config["sensitivity"]
    return bool(sens["variations"]) or sens["bootstrap"]["resamples"] > 0


def sensitivity_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the sensitivity tables depend on: every view's calibration (its label, size, corpus, seed,
    positions and statistic), the methods (those that read the similarity) and budgets whose plans are
    resampled, the clustering, the
    bootstrap and the figures' budget."""
    entries = []
    for name in sensitivity_views(config):
        v = view(config, name)
        entries.append({"view": name, "variation": name.partition(VIEW_SEPARATOR)[2] or "reference",
                        "n_samples": v.spec["n_samples"], "seqlen": v.spec["seqlen"], "source": v.spec["source"],
                        "seed": v.spec["seed"], "tokens_per_sequence": v.tokens_per_sequence, "statistic": v.statistic})
    return {"views": entries, "methods": {m: method_params(config, m) for m in similarity_methods(config)},
            "budgets": sorted(config["budgets"]), "structure": structure_params(config),
            "bootstrap": _sorted(config["sensitivity"]["bootstrap"]), "budget": figure_budget(config)}


def held_out_params(config: Mapping[str, Any], calib: str) -> dict[str, Any]:
    """What the held-out windows of view ``calib`` depend on: its calibration spec and their number."""
    auto = config["methods"][AUTO] if AUTO in config["methods"] else get_method(AUTO).defaults()  # the rule is
    # declared (and its params' keys learnt) whether or not auto runs
    return {"spec": calibration_spec(config, calib), "held_out": auto["held_out_samples"]}


def similarity_params(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """What view ``name``'s similarity depends on: its statistic, and the statistic's own setting."""
    statistic = view(config, name).statistic
    extra = get_statistic(statistic).parameter
    return {"statistic": statistic, **({extra: config["similarity"][extra]} if extra else {})}


def evaluation_datasets(config: Mapping[str, Any], model: str) -> dict[str, dict[str, Any]]:
    """Every evaluation dataset with its own seqlen and max_windows resolved, and whether windows of
    ``model`` start with a BOS (``models.<model>.bos_per_window``, else ``evaluation.bos_per_window``):
    what the model's ``ppl.csv`` files depend on."""
    ev = config["evaluation"]
    bos = config["models"][model]["bos_per_window"]
    bos = ev["bos_per_window"] if bos is None else bos
    out = {}
    for name, spec in ev["datasets"].items():
        out[name] = _sorted({"seqlen": ev["seqlen"], "max_windows": ev["max_windows"], **spec})
        if bos:  # only when on, so that results made before the option existed stay valid
            out[name]["bos_per_window"] = True
    return out


def activation_params(config: Mapping[str, Any], model: str, calib: str) -> dict[str, Any]:
    """What the stored activations of ``model`` on view ``calib`` depend on (batch size excluded: it does not
    change the values). ``models.<model>.activations_dtype``, where set, overrides ``activations.dtype``."""
    act = config["activations"]
    return {"dtype": config["models"][model]["activations_dtype"] or act["dtype"],
            "tokens_per_sequence": view(config, calib).tokens_per_sequence, "seed": act["seed"]}


def structure_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """What ``rls.json`` depends on: LoRP's parameters (the registry's defaults where LoRP is not run,
    since the structure stage runs for every model)."""
    lorp = config["methods"]["lorp"] if "lorp" in config["methods"] else get_method("lorp").defaults()
    return {"k": lorp["k"], "rls_thresholds": list(lorp["rls_thresholds"]), "random_state": lorp["random_state"]}


def fixed_k_structure_params(config: Mapping[str, Any], k: int | str) -> dict[str, Any]:
    """What a fixed-K clustering depends on: K and the random state (not the RLS thresholds)."""
    return {"k": int(k), "random_state": structure_params(config)["random_state"]}


def method_params(config: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A method's own parameters as its plans depend on them (none for a method whose parameters
    shape another stage, as LoRP's shape the clustering)."""
    if not get_method(base_method(method)).plan_parameters:
        return {}
    return _sorted(config["methods"][method])


def efficiency_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The efficiency measurement settings (``enabled`` excluded: it only decides whether it runs)."""
    return _sorted({k: v for k, v in config["efficiency"].items() if k != "enabled"})


def zeroshot_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """What ``tasks.csv`` depends on: the task list, the data directory and the limit (not the batch size)."""
    zs = config["zeroshot"]
    return {"tasks": list(zs["tasks"]), "data_dir": zs["data_dir"], "limit": zs["limit"]}


def compute_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The device and compute dtype that every model-running stage's numbers depend on, and the device map
    where one is set (left out otherwise, so that configs without one keep their params and rerun nothing)."""
    compute = config["compute"]
    placed = {"device_map": compute["device_map"]} if compute["device_map"] else {}
    return {"device": compute["device"], "dtype": compute["dtype"], **placed}


def figure_budget(config: Mapping[str, Any]) -> int:
    """The budget whose pruned layers the similarity heatmaps mark (``figures.budget``, else the largest)."""
    return config["figures"]["budget"] or max(config["budgets"])


def figure_labels(config: Mapping[str, Any]) -> list[str]:
    """``model/calib`` for every model and calibration, in the order of the across-model figures' inputs."""
    return [f"{model}/{calib}" for model in config["models"] for calib in config["calibration"]]


def sparse_targets(config: Mapping[str, Any]) -> list[int]:
    """The target sparsities in percent of the allocations (uniform, OWL, MRP)."""
    return sorted(config["sparsity"]["targets"])


def sparse_plans(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """Every sparse plan as (metric, allocation, target in %): each allocation at each target, and each
    N:M pattern (allocation ``<N>of<M>``) at its own sparsity."""
    sp = config["sparsity"]
    nm = [nm_allocation(p) for p in sp["nm"]]
    out = []
    for metric in sp["metrics"]:
        out += [(metric, a, t) for a in sp["allocations"] for t in sparse_targets(config)]
        out += [(metric, name, 100 * (m - n) // m) for name, n, m in nm]
    return out


def sparse_methods(config: Mapping[str, Any]) -> list[str]:
    """Every sparse method, ``<metric>-<allocation>``, in config order (none without plans)."""
    return list(dict.fromkeys(method_name(m, a) for m, a, _ in sparse_plans(config)))


def sparse_evaluations(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(method, budget) of every sparse model the evaluations measure (budget = target in %)."""
    return [(method_name(m, a), t) for m, a, t in sparse_plans(config)]


def evaluated_models(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(method, budget) of every pruned model the evaluations measure: each configured depth method at each
    budget, then each sparse model at its target (the K ablation's models are measured by perplexity only)."""
    return [(m, b) for m in config["methods"] for b in sorted(config["budgets"])] + sparse_evaluations(config)


def outlier_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """What an outlier ratio depends on: M and whether pruned weights count."""
    return {"count_zeros": config["sparsity"]["count_zeros"], "outlier_m": config["sparsity"]["outlier_m"]}


def sparse_plan_params(config: Mapping[str, Any], allocation: str) -> dict[str, Any]:
    """What a sparse plan depends on besides its inputs: its allocation's settings (the registration's
    ``params``: nothing for uniform, lambda for OWL, M, count_zeros and the loop's settings for MRP), nothing
    for an N:M pattern."""
    if parse_nm(allocation):
        return {}
    return get_allocation(allocation).params(config["sparsity"])


def score_norms(config: Mapping[str, Any], metric: str) -> str | None:
    """The rule whose per-input factors a metric's scores read (``input_norms`` or ``obs_norms``,
    :attr:`lorp.sparse.registry.Metric.score_norms`), None for a metric without norms (magnitude)."""
    m = get_metric(metric)
    return m.score_norms(config["sparsity"]) if m.uses_norms else None


def obs_norm_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """What SparseGPT's own saliency factors depend on: its damping and Hessian dtype."""
    settings = config["sparsity"]["sparsegpt"]
    return {"damping": settings["damping"], "hessian_dtype": settings["hessian_dtype"]}


def sparse_prune_params(config: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """What a sparse model's zeros depend on besides its plan: which input norms it prunes with (``none``
    for magnitude) and the device and dtype whose weights are scored (the evaluations' own). A metric that
    reconstructs (SparseGPT) prunes from Hessians measured sequentially (``hessians: sequential``, no norms)
    with its settings (under its name)."""
    m = get_metric(metric)
    if m.updates_weights:
        return {"norms": "none", "hessians": "sequential", m.name: m.params(config["sparsity"]),
                "compute": compute_params(config)}
    return {"norms": config["sparsity"]["norms"] if m.uses_norms else "none", "compute": compute_params(config)}


def exported_checkpoints(config: Mapping[str, Any]) -> set[str]:
    """The ``<method>-<budget>`` names whose Hugging Face checkpoints the run writes (``checkpoints.export``:
    ``all`` for every depth and sparse model the config evaluates, ``none``, or a list)."""
    export = config["checkpoints"]["export"]
    if export == "none":
        return set()
    names = set(evaluated_names(config))
    return names if export == "all" else set(export) & names


def evaluated_names(config: Mapping[str, Any]) -> list[str]:
    """``<method>-<budget>`` of every pruned model the config evaluates: each depth method at each budget
    (the K ablation's too), each sparse model at its target and each recovered model
    (``<method>-<budget>+<recovery>``)."""
    names = [f"{m}-{b}" for m in config["methods"] for b in sorted(config["budgets"])]
    names += [f"{m}-{b}" for m in ablation_methods(config) for b in ablation_budgets(config)]
    return names + [f"{m}-{t}" for m, t in sparse_evaluations(config)] + recovered_names(config)


def sweep_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the MRP sweep depends on: the targets, M, count_zeros, the loop's settings and the sweep."""
    sp = config["sparsity"]
    return {"targets": sparse_targets(config), "params": sparse_plan_params(config, SWEPT_ALLOCATION),
            "sweep": {"outlier_m": sorted(sp["sweep"]["outlier_m"]), "step": sorted(sp["sweep"]["step"])}}


def sweep_enabled(config: Mapping[str, Any]) -> bool:
    sweep = config["sparsity"]["sweep"]
    return bool(sparse_targets(config)) and bool(sweep["outlier_m"] or sweep["step"])


def redundancy_plans(config: Mapping[str, Any], metric: str) -> list[tuple[str, int]]:
    """(allocation, target) of the plans of ``metric`` whose redundancy after pruning is assessed: the
    per-row allocations (an N:M mask is not a per-row sparsity)."""
    return [(a, t) for m, a, t in sparse_plans(config) if m == metric and a in config["sparsity"]["allocations"]]


def auto_plans(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The wildcards (``model``, ``calib``, ``budget``) of every ``auto`` plan, in the summary's order."""
    return [{"model": model, "calib": calib, "budget": budget}
            for model in config["models"] for calib in evaluated_views(config) for budget in sorted(config["budgets"])]


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
                     "view": calib if s == statistics[0] else f"{calib}{VIEW_SEPARATOR}{s}"} for s in statistics]
    return out


SOURCE_RECORD = "results/sources/{kind}/{digest}.json"
"""Where the ``fetch_source`` job writes what it found of a source (``rules/sources.smk``)."""

CORPUS_KEYS = ("source", "format", "field", "max_documents")
"""The keys of a corpus spec that decide which records are read (not how they are windowed)."""


def source_entry(kind: str, spec: Mapping[str, Any], purpose: str | None = None) -> dict[str, Any]:
    """What a ``fetch_source`` job checks and fetches: a model's ``source`` (``kind`` ``model``), or the
    record-selecting keys of a corpus spec (``kind`` ``corpus``) with its ``purpose`` (``calibration``
    or ``evaluation``: the bundled and hub corpora have a part for each). A corpus in a local file also
    holds the sha256 of the file's bytes (``file_sha256``; the file is read relative to the working
    directory), so that its record's name follows its content: an edit is a new source, whose record
    does not exist yet, and a copy or touch with the same bytes is the same one (docs/reruns.md)."""
    if kind == "model":
        return {"kind": "model", "source": str(spec["source"])}
    if purpose not in ("calibration", "evaluation"):
        raise ValueError(f"purpose must be 'calibration' or 'evaluation', got {purpose!r}")
    entry = {"kind": "corpus", "purpose": purpose, **{k: spec[k] for k in CORPUS_KEYS if spec.get(k) is not None}}
    path = local_corpus_file(entry)
    if path is not None and path.is_file():  # a missing file: the config check names its key
        entry["file_sha256"] = file_digest(path)
    return entry


def local_corpus_file(entry: Mapping[str, Any]) -> Path | None:
    """The local file of a corpus :func:`source_entry` (as the config gives it), or None for a model, a
    bundled corpus and a hub dataset."""
    if entry["kind"] != "corpus" or entry["source"] in BUILTIN_SOURCES:
        return None
    return Path(str(entry["source"])).expanduser()


def source_digest(entry: Mapping[str, Any]) -> str:
    """The 12 hex digits that name a source's record: a hash of its :func:`source_entry`."""
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:12]


def source_record(entry: Mapping[str, Any]) -> str:
    """The path of a source's record (:data:`SOURCE_RECORD`)."""
    return SOURCE_RECORD.format(kind=entry["kind"], digest=source_digest(entry))


def _sources(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(config key, :func:`source_entry`) of every source the config reads."""
    out = [(f"models.{name}.source", source_entry("model", entry)) for name, entry in config["models"].items()]
    variations = config["sensitivity"]["variations"]
    for v in views(config).values():
        variation = v.name.rpartition(VIEW_SEPARATOR)[2]
        key = (f"calibration.{v.name}.source" if v.name in config["calibration"]
               else f"sensitivity.variations.{variation}.source" if "source" in variations.get(variation, {})
               else f"calibration.{v.calibration}.source")
        out.append((key, source_entry("corpus", v.spec, "calibration")))
    out += [(f"evaluation.datasets.{name}.source", source_entry("corpus", spec, "evaluation"))
            for name, spec in config["evaluation"]["datasets"].items()]
    return out


def source_entries(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every source the config reads, by digest: each model, the corpus of every calibration view (the
    sensitivity variations with a source of their own included) and every evaluation dataset."""
    return {source_digest(entry): entry for _, entry in _sources(config)}


def source_keys(config: Mapping[str, Any], digest: str) -> list[str]:
    """The config keys that name the source with ``digest`` (for its errors; not a param: a second entry
    naming the same source must not fetch it again)."""
    return list(dict.fromkeys(key for key, entry in _sources(config) if source_digest(entry) == digest))


# ---------------------------------------------------------------- recovery (lorp.recovery)
def recovery_methods(config: Mapping[str, Any]) -> list[str]:
    """The configured recovery methods (``recovery.methods``), in config order."""
    return list(config["recovery"]["methods"])


def recovered_models(config: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    """(method, budget, recovery) of every recovered model: each recovery of ``recovery.methods`` on each
    depth plan the config evaluates (every method of ``methods`` at every budget), or on those of
    ``recovery.plans`` where it lists ``<method>-<budget>`` names."""
    chosen = config["recovery"]["plans"]
    out = []
    for recovery in recovery_methods(config):
        for method in config["methods"]:
            for budget in sorted(config["budgets"]):
                if chosen == "all" or f"{method}-{budget}" in chosen:
                    out.append((method, budget, recovery))
    return out


def recovered_names(config: Mapping[str, Any]) -> list[str]:
    """``<method>-<budget>+<recovery>`` of every recovered model (names for ``checkpoints.export``)."""
    return [f"{m}-{b}+{r}" for m, b, r in recovered_models(config)]


def recover_params(config: Mapping[str, Any], recovery: str) -> dict[str, Any]:
    """What a recover job's output depends on besides its inputs: the recovery's parameters (defaults filled
    in by the schema), and for one that runs the model the device and dtype it runs in."""
    from ...recovery.registry import get_recovery

    params = _sorted(config["recovery"]["methods"][recovery])
    if "model" in get_recovery(recovery).inputs:
        params["compute"] = compute_params(config)
    return params


def recovery_corpora(config: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(key, corpus spec) of every training corpus of a configured recovery (its ``data`` parameter)."""
    return [(f"recovery.methods.{name}.data", params["data"])
            for name, params in config["recovery"]["methods"].items() if isinstance(params.get("data"), Mapping)]
