"""Workflow configuration: schema validation with defaults, semantic checks, and per-stage slices.

Each stage's parameters are a *slice* of the config holding exactly what its output depends on
(see the README's invalidation table); Snakemake reruns a job when its slice changes.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Mapping

from . import data, zeroshot
from .methods import METHODS, eligible_count

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"

CORPUS_DEFAULTS = {"format": "auto", "field": "text", "join": data.DEFAULT_JOIN, "max_documents": None}
CALIBRATION_DEFAULTS = {"n_samples": 128, "seqlen": 2048, "seed": 0, "sampling": "auto"}
EFFICIENCY_DEFAULTS = {"batch_size": 1, "seqlen": 128, "decode_tokens": 32, "warmup": 2, "repeats": 5}


class ConfigError(ValueError):
    """The configuration is invalid; the message names every offending key and what is allowed."""


def _schema(path: str | Path | None = None) -> dict:
    import yaml

    return yaml.safe_load(Path(path or SCHEMA_PATH).read_text(encoding="utf-8"))


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


def validate_schema(config: dict, schema_path: str | Path | None = None) -> dict:
    """Check ``config`` against the JSON schema, filling in defaults in place; raise :class:`ConfigError`."""
    validator = _validator_with_defaults(_schema(schema_path))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    # A bad value inside an entry also makes its keys "unevaluated" (unevaluatedProperties): report
    # only the real error there, and "unevaluated" only for entries that have no other error.
    real = [tuple(e.absolute_path) for e in errors if e.validator != "unevaluatedProperties"]
    errors = [e for e in errors if e.validator != "unevaluatedProperties"
              or not any(p[:len(e.absolute_path)] == tuple(e.absolute_path) for p in real)]
    if errors:
        lines = []
        for err in errors:
            key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"  {key}: {err.message}")
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    return config


# ----------------------------------------------------------------------------------------- slices
def calibration_spec(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Everything the calibration tokens of ``name`` depend on."""
    return {**CORPUS_DEFAULTS, **CALIBRATION_DEFAULTS, **config["calibration"][name]}


def evaluation_datasets(config: Mapping[str, Any], model: str | None = None) -> dict[str, dict[str, Any]]:
    """Every evaluation dataset with its own seqlen and max_windows resolved, and whether windows of
    ``model`` start with a BOS (``models.<model>.bos_per_window``, else ``evaluation.bos_per_window``):
    what the model's ``ppl.csv`` files depend on."""
    ev = config["evaluation"]
    bos = ev.get("bos_per_window", False)
    if model is not None and config["models"][model].get("bos_per_window") is not None:
        bos = config["models"][model]["bos_per_window"]
    out = {}
    for name, spec in ev["datasets"].items():
        out[name] = {**CORPUS_DEFAULTS, "seqlen": ev.get("seqlen", 2048), "max_windows": ev.get("max_windows"),
                     **spec}
        if bos:  # only when on, so that results made before the option existed stay valid
            out[name]["bos_per_window"] = True
    return out


def activation_params(config: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """What the stored activations of ``model`` depend on (batch size excluded: it does not change the
    values). ``models.<model>.activations_dtype``, where set, overrides ``activations.dtype``."""
    act = config.get("activations", {})
    dtype = act.get("dtype", "float16")
    if model is not None:
        dtype = config["models"][model].get("activations_dtype") or dtype
    return {"dtype": dtype, "tokens_per_sequence": act.get("tokens_per_sequence"), "seed": act.get("seed", 0)}


def structure_params(config: Mapping[str, Any]) -> dict[str, Any]:
    lorp = config["methods"].get("lorp") or {}
    return {"k": lorp.get("k"), "rls_thresholds": list(lorp.get("rls_thresholds", [1.0, 0.7])),
            "random_state": lorp.get("random_state", 0)}


ABLATION_PREFIX = "lorp-k"


def ablation_methods(config: Mapping[str, Any]) -> list[str]:
    """The method names of the K ablation: ``lorp-k<K>`` for every K in ``ablation.lorp_k``."""
    return [f"{ABLATION_PREFIX}{k}" for k in config.get("ablation", {}).get("lorp_k", [])]


def ablation_budgets(config: Mapping[str, Any]) -> list[int]:
    budgets = config.get("ablation", {}).get("budgets")
    return sorted(budgets if budgets is not None else config["budgets"])


def base_method(name: str) -> str:
    """The selection method behind a method name: ``lorp`` for the ablation's ``lorp-k<K>``."""
    return "lorp" if name.startswith(ABLATION_PREFIX) and name[len(ABLATION_PREFIX):].isdigit() else name


def ablation_k(name: str) -> int | None:
    return int(name[len(ABLATION_PREFIX):]) if base_method(name) == "lorp" and name != "lorp" else None


def fixed_k_structure_params(config: Mapping[str, Any], k: int) -> dict[str, Any]:
    """What a fixed-K clustering depends on: K and the random state (not the RLS thresholds)."""
    return {"k": int(k), "random_state": structure_params(config)["random_state"]}


def method_params(config: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A method's own parameters (LoRP's live in the structure stage, so its plans get none here)."""
    if base_method(method) == "lorp":
        return {}
    return dict(config["methods"][method] or {})


def efficiency_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The efficiency measurement settings (``enabled`` excluded: it only decides whether it runs)."""
    eff = dict(config.get("efficiency", {}))
    eff.pop("enabled", None)
    return {**EFFICIENCY_DEFAULTS, **eff}


def zeroshot_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """What ``tasks.csv`` depends on: the task list, the data directory and the limit (not the batch size)."""
    zs = config.get("zeroshot", {})
    return {"tasks": list(zs.get("tasks", [])), "data_dir": zs.get("data_dir"), "limit": zs.get("limit")}


def compute_params(config: Mapping[str, Any]) -> dict[str, Any]:
    comp = config.get("compute", {})
    return {"device": comp.get("device", "auto"), "dtype": comp.get("dtype", "auto")}


# ------------------------------------------------------------------------------------- semantics
def _local_path(source: str, base_dir: Path) -> Path | None:
    if source in data.BUILTIN_SOURCES:
        return None
    p = Path(source).expanduser()
    return p if p.is_absolute() else base_dir / p


def semantic_errors(config: Mapping[str, Any], n_layers_of: Callable[[str], int | None],
                    base_dir: str | Path = ".") -> list[str]:
    """Checks the schema cannot express: budgets against each model's depth, K, files that must exist.

    ``n_layers_of(model_name)`` returns the model's number of decoder blocks, or None if it cannot
    be known before the model is prepared (then the plan stage checks the budget instead).
    """
    base = Path(base_dir)
    errors: list[str] = []
    for name, spec in config["calibration"].items():
        p = _local_path(spec["source"], base)
        if p is not None and not p.is_file():
            errors.append(f"calibration.{name}.source: file {p} does not exist (or use one of "
                          f"{', '.join(data.BUILTIN_SOURCES)})")
    for name, spec in config["evaluation"]["datasets"].items():
        p = _local_path(spec["source"], base)
        if p is not None and not p.is_file():
            errors.append(f"evaluation.datasets.{name}.source: file {p} does not exist (or use one of "
                          f"{', '.join(data.BUILTIN_SOURCES)})")
    zs = zeroshot_params(config)
    data_dir = zs["data_dir"]
    if data_dir is not None and not Path(data_dir).expanduser().is_absolute():
        data_dir = base / data_dir
    errors += zeroshot.config_errors(zs["tasks"], data_dir)
    thresholds = structure_params(config)["rls_thresholds"] if "lorp" in config["methods"] else []
    if any(b >= a for a, b in zip(thresholds, thresholds[1:])):
        errors.append(f"methods.lorp.rls_thresholds: must be strictly descending, got {thresholds}")
    for model in config["models"]:
        try:
            n = n_layers_of(model)
        except (OSError, ValueError) as err:
            errors.append(f"models.{model}.source: {err}")
            continue
        if n is None:
            continue
        k = structure_params(config)["k"] if "lorp" in config["methods"] else None
        if k is not None and k > n:
            errors.append(f"methods.lorp.k: {k} clusters is more than the {n} layers of model {model!r}")
        too_many = [k for k in config.get("ablation", {}).get("lorp_k", []) if k > n]
        if too_many:
            errors.append(f"ablation.lorp_k: {too_many} clusters is more than the {n} layers of model {model!r}")
        limit = eligible_count("lorp", n, {})
        bad = [b for b in ablation_budgets(config) if not 1 <= b <= limit] if ablation_methods(config) else []
        if bad:
            errors.append(f"ablation.budgets: {bad} too large for LoRP on model {model!r} ({n} layers): "
                          f"allowed 1..{limit}")
        for method in config["methods"]:
            limit = eligible_count(method, n, config["methods"][method] or {})
            bad = [b for b in config["budgets"] if not 1 <= b <= limit]
            if bad:
                errors.append(f"budgets: {bad} too large for method {method!r} on model {model!r} ({n} layers): "
                              f"allowed 1..{limit}")
    return errors


def check_config(config: dict, n_layers_of: Callable[[str], int | None], base_dir: str | Path = ".",
                 schema_path: str | Path | None = None) -> dict:
    """Schema validation (with defaults) followed by :func:`semantic_errors`; raises :class:`ConfigError`."""
    validate_schema(config, schema_path)
    errors = semantic_errors(config, n_layers_of, base_dir)
    if errors:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {e}" for e in errors))
    unknown = set(config["methods"]) - set(METHODS)
    if unknown:  # pragma: no cover - the schema forbids it
        raise ConfigError(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    return config
