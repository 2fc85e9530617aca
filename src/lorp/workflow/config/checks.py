"""The semantic checks of a validated config, before any job runs: files and sources, depths and budgets,
sequence lengths against the model's context, the sparse settings, ``auto`` and the sensitivity analysis;
every problem one line naming the key, the cause and the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ... import data, sources
from ...data import BUILTIN_SOURCES, HUB_SOURCES
from ...depth.methods import AUTO, eligible_count
from ...evaluation import zeroshot
from ...io import read_json
from ...sparse.allocation_plans import get_allocation
from ...sparse.metrics import get_metric
from .schema import ConfigError, did_you_mean, validate_schema
from .slices import (SWEPT_ALLOCATION, evaluated_names, recovery_corpora, sparse_targets, structure_params,
                     sweep_enabled, zeroshot_params)
from .views import (VIEW_SEPARATOR, ablation_budgets, ablation_methods, selection_methods, sensitivity_views,
                    view)

def export_errors(config: Mapping[str, Any]) -> list[str]:
    """Names in ``checkpoints.export`` that the config does not evaluate."""
    export = config["checkpoints"]["export"]
    if isinstance(export, str):
        return []
    names = evaluated_names(config)
    return [f"checkpoints.export: {name!r} is not a model this config evaluates ({'<method>-<budget>'}, e.g. "
            f"{names[0]!r}){did_you_mean(name, names)}" for name in export if name not in names]


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


def _corpus_entries(config: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(key, corpus spec) of every corpus the config names: a variation's with what it keeps of the reference
    calibration (its format and field)."""
    entries = [(f"calibration.{name}", spec) for name, spec in config["calibration"].items()]
    reference = config["calibration"].get(config["sensitivity"]["calibration"] or next(iter(config["calibration"])))
    if reference is not None:  # else sensitivity_errors names the key
        entries += [(f"sensitivity.variations.{name}", {**reference, **spec})
                     for name, spec in config["sensitivity"]["variations"].items() if "source" in spec]
    entries += [(f"evaluation.datasets.{name}", spec) for name, spec in config["evaluation"]["datasets"].items()]
    return entries + [(key, spec) for key, spec in recovery_corpora(config)
                      if spec["source"] not in data.BUILTIN_SOURCES]  # recovery_errors refuses those


def _file_errors(config: Mapping[str, Any], base: Path, unreadable: set[str] | None = None) -> list[str]:
    """Local corpus files must exist and their first records parse in their format (the sources that do
    not are added to ``unreadable``); the zero-shot data directory must exist."""
    errors, unreadable = [], unreadable if unreadable is not None else set()
    for key, spec in _corpus_entries(config):
        p = _local_path(spec["source"], base)
        if p is None:
            continue
        if not p.is_file():
            errors.append(f"{key}.source: file {p} does not exist (or use one of {', '.join(data.BUILTIN_SOURCES)})")
            unreadable.add(spec["source"])
            continue
        try:
            data.check_corpus_file(p, spec["format"], spec["field"])
        except (OSError, ValueError) as err:  # a file that cannot be read (permissions, I/O) or parsed
            errors.append(f"{key}.source: {spec['source']}: {err}")
            unreadable.add(spec["source"])
    zs = zeroshot_params(config)
    data_dir = zs["data_dir"]
    if data_dir is not None and not Path(data_dir).expanduser().is_absolute():
        data_dir = base / data_dir
    return errors + zeroshot.config_errors(zs["tasks"], data_dir)


def _sized_views(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, view) of every calibration whose tokens are drawn: the entries, and the sensitivity variations
    that change what is drawn (keyed by the variation's n_samples)."""
    out = [(f"calibration.{name}.n_samples", name) for name in config["calibration"]]
    reference = sensitivity_views(config)[0]
    if reference not in config["calibration"]:
        return out  # sensitivity_errors names the missing entry
    drawn = ("n_samples", "seqlen", "source", "max_documents", "join", "format", "field")
    return out + [(f"sensitivity.variations.{name}.n_samples", f"{reference}{VIEW_SEPARATOR}{name}")
                  for name, change in config["sensitivity"]["variations"].items() if any(k in change for k in drawn)]


def corpus_size_errors(config: Mapping[str, Any], base_dir: str | Path = ".",
                       unreadable: set[str] = frozenset()) -> list[str]:
    """Calibrations that ask for more tokens than their corpus holds (n_samples x seqlen, plus auto's
    held-out windows, against :func:`lorp.data.max_tokens`), where its size is known before any download;
    corpora in ``unreadable`` (already reported) are left out."""
    held_out = config["methods"][AUTO]["held_out_samples"] if AUTO in config["methods"] else 0
    reference = config["sensitivity"]["calibration"]
    if reference is not None and reference not in config["calibration"]:
        return []  # the views cannot be built; sensitivity_errors names the key
    errors = []
    for key, name in _sized_views(config):
        v = view(config, name)
        spec = v.spec
        if spec["source"] in unreadable:
            continue
        limit = data.max_tokens(spec, "calibration", base_dir)
        extra = held_out if v.evaluated else 0
        n, seqlen = spec["n_samples"] + extra, spec["seqlen"]
        if limit is None or n * seqlen <= limit:
            continue
        count = f"{n} windows ({spec['n_samples']} + {extra} held out for auto)" if extra else f"{n} windows"
        errors.append(f"{key}: {count} of {seqlen} tokens need {n * seqlen} tokens, and the calibration part of "
                      f"{spec['source']} holds at most {limit} (its UTF-8 bytes: a token is at least one); lower "
                      "n_samples or seqlen, or use a larger corpus")
    return errors


def model_shape(entry: Mapping[str, Any], manifest: str | Path, base_dir: str | Path = ".") -> ModelShape | None:
    """Depth and context length of a config's model entry before any job runs, once its source is known to
    exist (:func:`lorp.sources.check_source`, which raises ``OSError`` or ``ValueError`` naming the cause and
    the fix): from its prepared ``manifest`` (model.json) where that was prepared from the same source, else
    its metadata (GGUF, a local or cached config), else what the entry gives (a hub model not in the cache);
    None where nothing is known. Imports no torch."""
    source = sources.check_source(entry["source"], base_dir)
    manifest = Path(manifest)
    info = read_json(manifest) if manifest.is_file() else {}
    if info.get("source") != source.describe():
        info = {}  # another source: it will be prepared again, and its shape is its own
    if info.get("max_position_embeddings"):  # model.json files made before it was recorded lack it
        return ModelShape(info["num_hidden_layers"], info["max_position_embeddings"])
    shape = sources.peek_shape(source)
    if shape:
        return ModelShape(*shape)
    depth = info.get("num_hidden_layers") or entry.get("num_hidden_layers")
    return ModelShape(depth, entry.get("max_position_embeddings")) if depth else None


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
    errors, patterns = [], []
    for pattern in sp["nm"]:
        n, m = (int(x) for x in pattern.split(":"))
        if not 0 < n < m:
            errors.append(f"sparsity.nm: {pattern!r} must keep N of M inputs with 0 < N < M, e.g. '2:4'")
        elif 100 * (m - n) % m:
            errors.append(f"sparsity.nm: {pattern!r} prunes {100 * (m - n) / m:g}%, not a whole percent (the "
                          "budget column); use a pattern such as '2:4', '4:8' or '1:4'")
        else:
            patterns.append((n, m))
    if targets or patterns:
        for name in sp["metrics"]:  # each metric's own settings (SparseGPT's block size against N:M)
            errors += get_metric(name).check(sp, patterns)
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


RESERVED_NAMES = ("sources", "logs", "summary", "figures", "bench")
"""Folders of ``results/`` that are not a model's: a model of that name would write into them."""


def config_problems(config: Mapping[str, Any], shape_of: Callable[[str], ModelShape | None],
                    base_dir: str | Path = ".") -> tuple[list[str], list[str]]:
    """Checks the schema cannot express, as (errors, warnings): corpus files that must exist and parse,
    calibrations no larger than their corpus, RLS thresholds, and for each model its source, its budgets
    and cluster counts against its depth and every sequence length against its context.

    ``shape_of(model_name)`` returns the model's :class:`ModelShape`, or None where it cannot be known
    offline before the run (a hub model not in the cache): then a warning says what is not checked.
    It raises ``OSError`` or ``ValueError`` for a source that names no model (:func:`model_shape`, the
    rules' callback, checks the source on every run, before it reads a prepared model.json).
    """
    unreadable: set[str] = set()
    errors = [f"models.{name}: the name is taken by the folder results/{name}/ (the workflow's own); choose another"
              for name in config["models"] if name in RESERVED_NAMES]
    errors += (_file_errors(config, Path(base_dir), unreadable) + corpus_size_errors(config, base_dir, unreadable)
              + sparsity_errors(config) + export_errors(config) + sensitivity_errors(config) + auto_errors(config)
              + recovery_errors(config, base_dir))
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


def recovery_errors(config: Mapping[str, Any], base_dir: str | Path = ".") -> list[str]:
    """Plans in ``recovery.plans`` that the config does not evaluate; a training corpus that is built in or
    on the hub (their parts are the calibration and evaluation data) or that is also a calibration or
    evaluation corpus of the config (the fine-tune would see the data it is measured on)."""
    errors = []
    chosen = config["recovery"]["plans"]
    if chosen != "all":
        names = [f"{m}-{b}" for m in config["methods"] for b in sorted(config["budgets"])]
        errors += [f"recovery.plans: {name!r} is not a depth plan this config evaluates (<method>-<budget> of "
                   f"methods x budgets, e.g. {names[0]!r})" for name in chosen if name not in names]
    named = [(f"calibration {n}", s) for n, s in config["calibration"].items()]
    named += [(f"sensitivity variation {n}", s) for n, s in config["sensitivity"]["variations"].items() if "source" in s]
    named += [(f"evaluation dataset {n}", s) for n, s in config["evaluation"]["datasets"].items()]
    used = {Path(base_dir, s["source"]).expanduser().resolve(): what for what, s in named
            if s["source"] not in BUILTIN_SOURCES}
    for key, spec in recovery_corpora(config):
        source = spec["source"]
        if source in BUILTIN_SOURCES or source in HUB_SOURCES:
            errors.append(f"{key}.source: {source!r} is a built-in corpus whose parts are the calibration and "
                          "evaluation data; name a local file disjoint from both (e.g. "
                          "../shared/data/c4/c4_validation_2k_sample.jsonl)")
        elif Path(base_dir, source).expanduser().resolve() in used:
            errors.append(f"{key}.source: {source} is also the {used[Path(base_dir, source).expanduser().resolve()]}'s corpus; "
                          "a fine-tune must not train on what the workflow calibrates or evaluates on: name another file")
    return errors
