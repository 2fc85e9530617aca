"""Workflow configuration: schema validation with defaults, semantic checks, and per-stage slices.

Each stage's parameters are a *slice* of the config holding exactly what its output depends on
(see the README's invalidation table); Snakemake reruns a job when its slice changes.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .. import data
from ..depth.methods import AUTO, METHODS, eligible_count, get_method
from ..evaluation import zeroshot
from ..sparse.names import method_name, nm_allocation, parse_nm
from ..depth.similarity import get_statistic
from ..sparse.allocation_plans import get_allocation
from ..sparse.metrics import get_metric

SWEPT_ALLOCATION = "mrp"
"""The allocation whose loop ``sparsity.sweep`` runs for other settings (``mrp_sweep``)."""

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names every offending key and what is allowed."""


def registries() -> dict[str, list[str]]:
    """The registered names a schema node marked ``x-registry: <name>`` allows: the similarity statistics,
    the sparse metrics and the sparse allocations."""
    from ..depth.similarity import STATISTICS
    from ..sparse.names import ALLOCATIONS, METRICS

    return {"statistics": list(STATISTICS), "metrics": list(METRICS), "allocations": list(ALLOCATIONS)}


def _fill_registries(node: Any, names: Mapping[str, list[str]]) -> None:
    """Give every node marked ``x-registry: <name>`` the ``enum`` of that registry's names (in place)."""
    if isinstance(node, dict):
        if "x-registry" in node:
            node["enum"] = list(names[node.pop("x-registry")])
        for value in node.values():
            _fill_registries(value, names)
    elif isinstance(node, list):
        for value in node:
            _fill_registries(value, names)


def load_schema(path: str | Path | None = None) -> dict:
    """The config schema, with ``methods`` built from the method registry (:data:`lorp.depth.methods.METHODS`):
    each method's parameters, bounds and defaults are declared there, once; and the enums of the similarity
    statistics and the sparse metrics and allocations from their registries (:func:`registries`)."""
    import yaml

    schema = yaml.safe_load(Path(path or SCHEMA_PATH).read_text(encoding="utf-8"))
    schema["properties"]["methods"]["properties"] = {name: m.schema() for name, m in METHODS.items()}
    _fill_registries(schema, registries())
    return schema


def _validator_with_defaults(schema: dict):
    """A Draft 2020-12 validator that also fills in ``default`` values of absent properties."""
    from jsonschema import Draft202012Validator, validators

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)

    cls = validators.extend(Draft202012Validator, {"properties": set_defaults})
    return cls(schema)


REMOVED_KEYS = {
    ("checkpoints", "temporary"): "evaluations build each pruned model in memory from the prepared model and its "
                                  "plan, so no checkpoint is written unless checkpoints.export asks for it: remove "
                                  "the key (and list the checkpoints you want in checkpoints.export)",
}
"""Keys earlier versions accepted, with why they went and what to do instead."""


def validate_schema(config: dict, schema_path: str | Path | None = None) -> dict:
    """Check ``config`` against the JSON schema, filling in defaults in place; raise :class:`ConfigError`."""
    removed = [f"  {'.'.join(path)}: no longer a setting: {why}" for path, why in REMOVED_KEYS.items()
               if isinstance(config.get(path[0]), dict) and path[1] in config[path[0]]]
    if removed:
        raise ConfigError("invalid config:\n" + "\n".join(removed))
    validator = _validator_with_defaults(load_schema(schema_path))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    # A bad value inside an entry also makes its known keys "unevaluated" (unevaluatedProperties): report
    # an unevaluated-properties error only for keys the entry does not declare at all.
    errors = [e for e in errors if e.validator != "unevaluatedProperties" or not isinstance(e.instance, dict)
              or any(k not in _allowed_keys(e.schema, validator.schema) for k in e.instance)]
    if errors:
        schema = validator.schema
        lines = []
        for err in errors:
            key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"  {key}: {_explain(err, schema)}")
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    return config


def did_you_mean(name: str, allowed: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the allowed name closest to a near miss, else nothing."""
    close = difflib.get_close_matches(str(name), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _allowed_keys(node: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The property names a schema node (with its ``allOf`` and ``$ref`` parts) declares."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    keys = list(node.get("properties", {}))
    for part in node.get("allOf", []):
        keys += [k for k in _allowed_keys(part, schema) if k not in keys]
    return keys


def _explain(err: Any, schema: Mapping[str, Any]) -> str:
    """A schema error as one line: a rejected key or value with the allowed ones and the closest of them."""
    if err.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(err.instance, dict):
        allowed = _allowed_keys(err.schema, schema)
        unknown = [k for k in err.instance if k not in allowed]
        what = "method" if list(err.absolute_path) == ["methods"] else "key"
        parts = [f"unknown {what} {k!r}{did_you_mean(k, allowed)}" for k in unknown]
        return "; ".join(parts) + f"; allowed: {', '.join(allowed) or '(none)'}"
    if err.validator == "enum":
        return err.message + did_you_mean(err.instance, err.validator_value)
    if err.validator == "not" and list(err.absolute_path) == ["sensitivity", "variations"]:
        return (f"the variation name {err.instance!r} is a similarity statistic's, which names the views of "
                "similarity.compare; choose another name (the statistic itself goes inside: {statistic: ...})")
    return err.message


# ----------------------------------------------------------------------------------------- slices
# Every function below takes a config validated by :func:`validate_schema`, which filled in the
# schema's defaults: none of them has a default of its own (a test checks this). Keys are sorted,
# so reordering keys in a YAML file changes no slice and reruns nothing.
def _sorted(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: mapping[key] for key in sorted(mapping)}


def model_params(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """What the prepared model depends on: its source and the dtype a GGUF file is converted to."""
    entry = config["models"][model]
    return {"source": entry["source"], "storage_dtype": entry["storage_dtype"]}


VIEW_SEPARATOR = "~"
"""Between a calibration's name and a variation's in a view's name (``python-docs~cka``): names cannot hold it."""


@dataclass(frozen=True)
class View:
    """A calibration as the stages after the tokens see it: the ``{calib}`` of every path.

    Each entry of ``calibration`` is a view of its own; ``similarity.compare`` adds one per other statistic
    (``<entry>~<statistic>``), which shares the entry's tokens and activations, ``evaluation.seeds`` one per
    other seed (``<entry>~seed<S>``, evaluated like the entry), and ``sensitivity.variations`` one per
    variation of the reference entry (``<entry>~<variation>``), which shares what it does not change.

    Attributes:
        name: the view's name, the ``{calib}`` wildcard.
        calibration: the ``calibration`` entry it departs from.
        spec: what its tokens depend on (:func:`calibration_spec`).
        tokens_per_sequence: the token positions kept per sequence (None: all).
        statistic: its similarity statistic (a name in :data:`lorp.depth.similarity.STATISTICS`).
        evaluated: whether its plans are evaluated (and drawn): a compared statistic's are not, a
            variation's where ``sensitivity.evaluate`` says so.
        seed_group: the calibration entry whose seeds its evaluations are pooled with (the entry itself and its
            ``evaluation.seeds`` views), else None.
    """

    name: str
    calibration: str
    spec: Mapping[str, Any]
    tokens_per_sequence: int | None
    statistic: str
    evaluated: bool
    seed_group: str | None = None


def views(config: Mapping[str, Any]) -> dict[str, View]:
    """Every view of a validated config by name: the calibration entries first, then each entry's
    compared statistics, then its other seeds (``evaluation.seeds``), then the sensitivity variations."""
    sim, act = config["similarity"], config["activations"]
    out = {}
    for name, spec in config["calibration"].items():
        out[name] = View(name, name, _sorted(spec), act["tokens_per_sequence"], sim["statistic"], True, name)
    for name, spec in config["calibration"].items():
        for statistic in sim["compare"]:
            if statistic != sim["statistic"]:
                full = f"{name}{VIEW_SEPARATOR}{statistic}"
                out[full] = View(full, name, _sorted(spec), act["tokens_per_sequence"], statistic, False)
    for name, spec in config["calibration"].items():
        for seed in config["evaluation"]["seeds"]:
            if seed != spec["seed"]:
                full = f"{name}{VIEW_SEPARATOR}seed{seed}"
                out[full] = View(full, name, _sorted({**spec, "seed": seed}), act["tokens_per_sequence"],
                                 sim["statistic"], True, name)
    reference = sensitivity_reference(config)
    for variation, change in config["sensitivity"]["variations"].items():
        base = out[reference]
        calib = {k: v for k, v in change.items() if k not in ("tokens_per_sequence", "statistic")}
        full = f"{reference}{VIEW_SEPARATOR}{variation}"
        merged = {"tokens_per_sequence": base.tokens_per_sequence, "statistic": base.statistic, **change}
        out[full] = View(full, reference, _sorted({**base.spec, **calib}), merged["tokens_per_sequence"],
                         merged["statistic"], config["sensitivity"]["evaluate"])
    return out


def sensitivity_reference(config: Mapping[str, Any]) -> str:
    """The calibration entry the sensitivity variations depart from (``sensitivity.calibration``, else the first)."""
    return config["sensitivity"]["calibration"] or next(iter(config["calibration"]))


def sensitivity_enabled(config: Mapping[str, Any]) -> bool:
    """Whether the config asks for the sensitivity tables (variations or a bootstrap)."""
    sens = config["sensitivity"]
    return bool(sens["variations"]) or sens["bootstrap"]["resamples"] > 0


def sensitivity_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the sensitivity tables depend on: every view's calibration (its label, size, corpus, seed,
    positions and statistic), the methods and budgets whose plans are resampled, the clustering, the
    bootstrap and the figures' budget."""
    entries = []
    for name in sensitivity_views(config):
        v = view(config, name)
        entries.append({"view": name, "variation": name.partition(VIEW_SEPARATOR)[2] or "reference",
                        "n_samples": v.spec["n_samples"], "seqlen": v.spec["seqlen"], "source": v.spec["source"],
                        "seed": v.spec["seed"], "tokens_per_sequence": v.tokens_per_sequence, "statistic": v.statistic})
    return {"views": entries, "methods": {m: method_params(config, m) for m in selection_methods(config)},
            "budgets": sorted(config["budgets"]), "structure": structure_params(config),
            "bootstrap": _sorted(config["sensitivity"]["bootstrap"]), "budget": figure_budget(config)}


def sensitivity_views(config: Mapping[str, Any]) -> list[str]:
    """The views of the sensitivity analysis: the reference calibration, then each variation."""
    reference = sensitivity_reference(config)
    return [reference] + [f"{reference}{VIEW_SEPARATOR}{v}" for v in config["sensitivity"]["variations"]]


def view(config: Mapping[str, Any], name: str) -> View:
    """The view ``name`` (:func:`views`); a clear error for a name the config does not imply."""
    known = views(config)
    if name not in known:
        raise ConfigError(f"no calibration view {name!r} in this config; known: {', '.join(known)}")
    return known[name]


def evaluated_views(config: Mapping[str, Any]) -> list[str]:
    """The views whose plans are evaluated, checkpointed on request and drawn."""
    return [name for name, v in views(config).items() if v.evaluated]


def token_source(config: Mapping[str, Any], name: str) -> str:
    """The view whose tokens ``name`` uses: the first with the same calibration spec."""
    v = view(config, name)
    return next(n for n, other in views(config).items() if other.spec == v.spec)


def activation_source(config: Mapping[str, Any], name: str) -> str:
    """The view whose stored activations ``name`` reads: the first with the same tokens and positions
    (a compared statistic reads its calibration's)."""
    v = view(config, name)
    return next(n for n, o in views(config).items()
                if o.spec == v.spec and o.tokens_per_sequence == v.tokens_per_sequence)


def calibration_spec(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Everything the calibration tokens of view ``name`` depend on."""
    return dict(view(config, name).spec)


def selection_methods(config: Mapping[str, Any]) -> list[str]:
    """The configured methods that select blocks from the similarity alone (every one but ``auto``)."""
    return [m for m in config["methods"] if m != AUTO]


def auto_candidates(config: Mapping[str, Any], calib: str) -> list[dict[str, str]]:
    """The plans ``auto`` chooses among on view ``calib``: every other method under the view's statistic and,
    for a calibration entry, under each compared one (``method``, ``statistic``, ``view``)."""
    v = view(config, calib)
    out = []
    for method in selection_methods(config):
        out.append({"method": method, "statistic": v.statistic, "view": calib})
        if calib in config["calibration"]:
            out += [{"method": method, "statistic": s, "view": f"{calib}{VIEW_SEPARATOR}{s}"}
                    for s in config["similarity"]["compare"] if s != v.statistic]
    return out


def held_out_params(config: Mapping[str, Any], calib: str) -> dict[str, Any]:
    """What the held-out windows of view ``calib`` depend on: its calibration spec and their number."""
    auto = config["methods"][AUTO] if AUTO in config["methods"] else get_method(AUTO).defaults()  # the rule is
    # declared (and its params' keys learnt) whether or not auto runs
    return {"spec": calibration_spec(config, calib), "held_out": auto["held_out_samples"]}


def seed_groups(config: Mapping[str, Any]) -> dict[str, str]:
    """Each view whose evaluations are pooled over seeds, with its calibration entry: the entries and their
    ``evaluation.seeds`` views."""
    return {name: v.seed_group for name, v in views(config).items() if v.seed_group}


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


ABLATION_PREFIX = "lorp-k"


def ablation_methods(config: Mapping[str, Any]) -> list[str]:
    """The method names of the K ablation: ``lorp-k<K>`` for every K in ``ablation.lorp_k``."""
    return [f"{ABLATION_PREFIX}{k}" for k in config["ablation"]["lorp_k"]]


def ablation_budgets(config: Mapping[str, Any]) -> list[int]:
    budgets = config["ablation"]["budgets"]
    return sorted(budgets if budgets is not None else config["budgets"])


def base_method(name: str) -> str:
    """The selection method behind a method name: ``lorp`` for the ablation's ``lorp-k<K>``."""
    return "lorp" if name.startswith(ABLATION_PREFIX) and name[len(ABLATION_PREFIX):].isdigit() else name


def ablation_k(name: str) -> int | None:
    return int(name[len(ABLATION_PREFIX):]) if base_method(name) == "lorp" and name != "lorp" else None


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


def sparse_prune_params(config: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """What a sparse model's zeros depend on besides its plan: which input norms it prunes with (``none``
    for magnitude) and the device and dtype whose weights are scored (the evaluations' own)."""
    uses_norms = get_metric(metric).uses_norms
    return {"norms": config["sparsity"]["norms"] if uses_norms else "none", "compute": compute_params(config)}


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
    (the K ablation's too) and each sparse model at its target."""
    names = [f"{m}-{b}" for m in config["methods"] for b in sorted(config["budgets"])]
    names += [f"{m}-{b}" for m in ablation_methods(config) for b in ablation_budgets(config)]
    return names + [f"{m}-{t}" for m, t in sparse_evaluations(config)]


def export_errors(config: Mapping[str, Any]) -> list[str]:
    """Names in ``checkpoints.export`` that the config does not evaluate."""
    export = config["checkpoints"]["export"]
    if isinstance(export, str):
        return []
    names = evaluated_names(config)
    return [f"checkpoints.export: {name!r} is not a model this config evaluates ({'<method>-<budget>'}, e.g. "
            f"{names[0]!r}){did_you_mean(name, names)}" for name in export if name not in names]


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


# ------------------------------------------------------------------------------------- semantics
def _local_path(source: str, base_dir: Path) -> Path | None:
    if source in data.BUILTIN_SOURCES:
        return None
    p = Path(source).expanduser()
    return p if p.is_absolute() else base_dir / p


@dataclass(frozen=True)
class ModelShape:
    """What the config check needs to know of a model before any job runs."""

    num_hidden_layers: int
    max_position_embeddings: int | None = None


def _file_errors(config: Mapping[str, Any], base: Path) -> list[str]:
    """Local corpus files and the zero-shot data directory must exist."""
    errors = []
    entries = [(f"calibration.{name}", spec) for name, spec in config["calibration"].items()]
    entries += [(f"sensitivity.variations.{name}", spec) for name, spec in config["sensitivity"]["variations"].items()
                if "source" in spec]
    entries += [(f"evaluation.datasets.{name}", spec) for name, spec in config["evaluation"]["datasets"].items()]
    for key, spec in entries:
        p = _local_path(spec["source"], base)
        if p is not None and not p.is_file():
            errors.append(f"{key}.source: file {p} does not exist (or use one of {', '.join(data.BUILTIN_SOURCES)})")
    zs = zeroshot_params(config)
    data_dir = zs["data_dir"]
    if data_dir is not None and not Path(data_dir).expanduser().is_absolute():
        data_dir = base / data_dir
    return errors + zeroshot.config_errors(zs["tasks"], data_dir)


def _depth_errors(config: Mapping[str, Any], model: str, n: int) -> list[str]:
    """Cluster counts and budgets against a model's depth."""
    errors = []
    k = structure_params(config)["k"] if "lorp" in config["methods"] else None
    if k is not None and k > n:
        errors.append(f"methods.lorp.k: {k} clusters is more than the {n} layers of model {model!r}")
    too_many = [k for k in config["ablation"]["lorp_k"] if k > n]
    if too_many:
        errors.append(f"ablation.lorp_k: {too_many} clusters is more than the {n} layers of model {model!r}")
    limit = eligible_count("lorp", n, {})
    bad = [b for b in ablation_budgets(config) if not 1 <= b <= limit] if ablation_methods(config) else []
    if bad:
        errors.append(f"ablation.budgets: {bad} too large for LoRP on model {model!r} ({n} layers): allowed 1..{limit}")
    for method in config["methods"]:
        limit = eligible_count(method, n, config["methods"][method])
        bad = [b for b in config["budgets"] if not 1 <= b <= limit]
        if bad:
            errors.append(f"budgets: {bad} too large for method {method!r} on model {model!r} ({n} layers): "
                          f"allowed 1..{limit}")
    return errors


def sequence_lengths(config: Mapping[str, Any]) -> dict[str, int]:
    """Every number of positions a job feeds a model, by the config key that sets it."""
    lengths = {f"calibration.{name}.seqlen": spec["seqlen"] for name, spec in config["calibration"].items()}
    lengths.update({f"sensitivity.variations.{name}.seqlen": spec["seqlen"]
                    for name, spec in config["sensitivity"]["variations"].items() if "seqlen" in spec})
    datasets = config["evaluation"]["datasets"]
    if any("seqlen" not in spec for spec in datasets.values()):
        lengths["evaluation.seqlen"] = config["evaluation"]["seqlen"]
    lengths.update({f"evaluation.datasets.{name}.seqlen": spec["seqlen"] for name, spec in datasets.items()
                    if "seqlen" in spec})
    eff = config["efficiency"]
    if eff["enabled"]:  # the prompt, then one position per decoded token
        lengths["efficiency.seqlen + efficiency.decode_tokens"] = eff["seqlen"] + eff["decode_tokens"]
    return lengths


def _position_errors(config: Mapping[str, Any], model: str, limit: int) -> list[str]:
    return [f"{key}: {n} positions is more than the {limit} that model {model!r} was trained for "
            f"(max_position_embeddings); use at most {limit}"
            for key, n in sequence_lengths(config).items() if n > limit]


def sparsity_errors(config: Mapping[str, Any]) -> list[str]:
    """Sparse settings that cannot work at some target: OWL's lambda leaving [0, 1], MRP starting below
    0, steps that do not divide MRP's range, an upper bound not above a target."""
    sp = config["sparsity"]
    targets = sparse_targets(config)
    errors = []
    for pattern in sp["nm"]:
        n, m = (int(x) for x in pattern.split(":"))
        if not 0 < n < m:
            errors.append(f"sparsity.nm: {pattern!r} must keep N of M inputs with 0 < N < M, e.g. '2:4'")
        elif 100 * (m - n) % m:
            errors.append(f"sparsity.nm: {pattern!r} prunes {100 * (m - n) / m:g}%, not a whole percent (the "
                          "budget column); use a pattern such as '2:4', '4:8' or '1:4'")
    if not targets:
        return errors
    checked = list(sp["allocations"]) + ([SWEPT_ALLOCATION] if sweep_enabled(config) else [])
    for name in dict.fromkeys(checked):  # each allocation's own settings (the sweep runs MRP's loop)
        errors += get_allocation(name).check(sp, targets)
    return errors  # N:M divisibility of every layer's inputs is checked by the plan (it needs the shapes)


def auto_errors(config: Mapping[str, Any]) -> list[str]:
    """``auto`` chooses among the other methods' plans, so it needs at least one."""
    if AUTO in config["methods"] and not selection_methods(config):
        return ["methods.auto: chooses among the plans of the other methods, and none is configured; add at least "
                "one (e.g. lorp: {} and shortgpt: {})"]
    return []


def sensitivity_errors(config: Mapping[str, Any]) -> list[str]:
    """The reference calibration must exist, and a bootstrap needs sequences to draw."""
    sens = config["sensitivity"]
    name = sens["calibration"]
    if name is not None and name not in config["calibration"]:
        return [f"sensitivity.calibration: {name!r} is not a calibration entry{did_you_mean(name, list(config['calibration']))}; "
                f"choose from {', '.join(config['calibration'])} (or null for the first)"]
    errors = [f"sensitivity.variations.{v}: the name is taken by the views of evaluation.seeds (<calibration>~seed<S>); "
              "choose another" for v in sens["variations"] if re.fullmatch(r"seed\d+", v)]
    if sens["bootstrap"]["resamples"]:
        for view_name in sensitivity_views(config):
            if view(config, view_name).spec["n_samples"] < 2:
                errors.append(f"sensitivity.bootstrap.resamples: the view {view_name!r} has 1 calibration sequence, and "
                              "a bootstrap over sequences needs at least 2 (raise its n_samples or set resamples: 0)")
    return errors


def config_problems(config: Mapping[str, Any], shape_of: Callable[[str], ModelShape | None],
                    base_dir: str | Path = ".") -> tuple[list[str], list[str]]:
    """Checks the schema cannot express, as (errors, warnings): files that must exist, RLS thresholds,
    and for each model its budgets and cluster counts against its depth and every sequence length
    against its context.

    ``shape_of(model_name)`` returns the model's :class:`ModelShape`, or None where it cannot be known
    offline before the run (a hub model not in the cache): then a warning says what is not checked.
    It raises ``OSError`` or ``ValueError`` for a source that names no model.
    """
    errors = (_file_errors(config, Path(base_dir)) + sparsity_errors(config) + export_errors(config)
              + sensitivity_errors(config) + auto_errors(config))
    warnings: list[str] = []
    if config["figures"]["budget"] is not None and config["figures"]["budget"] not in config["budgets"]:
        errors.append(f"figures.budget: {config['figures']['budget']} is not one of budgets {sorted(config['budgets'])} "
                      "(the heatmaps mark the plans of a budget that runs)")
    thresholds = structure_params(config)["rls_thresholds"] if "lorp" in config["methods"] else []
    if any(b >= a for a, b in zip(thresholds, thresholds[1:])):
        errors.append(f"methods.lorp.rls_thresholds: must be strictly descending, got {thresholds}")
    for model, entry in config["models"].items():
        try:
            shape = shape_of(model)
        except (OSError, ValueError) as err:
            errors.append(f"models.{model}.source: {err}")
            continue
        if shape is None:
            warnings.append(f"models.{model}: the depth and context of {entry['source']!r} are not known before the "
                            "run (a hub model that is not in the Hugging Face cache), so budgets and sequence lengths "
                            f"are checked only when its jobs run; set models.{model}.num_hidden_layers and "
                            f"models.{model}.max_position_embeddings, or put the model in the cache (HF_HOME), "
                            "to check them now")
            continue
        errors += _depth_errors(config, model, shape.num_hidden_layers)
        if shape.max_position_embeddings:
            errors += _position_errors(config, model, shape.max_position_embeddings)
        else:
            warnings.append(f"models.{model}: the context length of {entry['source']!r} is not known before the run, "
                            f"so sequence lengths are not checked against it; set models.{model}."
                            "max_position_embeddings, or put the model in the cache (HF_HOME), to check them")
    return errors, warnings


def check_config(config: dict, shape_of: Callable[[str], ModelShape | None], base_dir: str | Path = ".",
                 schema_path: str | Path | None = None) -> list[str]:
    """Schema validation (defaults filled in place) followed by :func:`config_problems`; raises
    :class:`ConfigError` naming every problem, one per line, and returns the warnings."""
    validate_schema(config, schema_path)
    errors, warnings = config_problems(config, shape_of, base_dir)
    if errors:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {e}" for e in errors))
    return warnings
