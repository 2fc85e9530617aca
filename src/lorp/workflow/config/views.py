"""The views of a config: each calibration as the stages after the tokens see it (its compared statistics,
seeds and sensitivity variations too), computed once per config, and the names that derive from them."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Mapping

from ...depth.methods import AUTO, get_method
from .schema import ConfigError

# Every function below takes a config validated by :func:`validate_schema`, which filled in the
# schema's defaults: none of them has a default of its own (a test checks this). Keys are sorted,
# so reordering keys in a YAML file changes no slice and reruns nothing.
def _sorted(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: mapping[key] for key in sorted(mapping)}


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
        statistic: its similarity statistic (a name in :data:`lorp.depth.statistics.STATISTICS`).
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


VIEW_SECTIONS = ("calibration", "similarity", "activations", "evaluation", "sensitivity")
"""The config sections the views depend on."""


def views(config: Mapping[str, Any]) -> dict[str, View]:
    """Every view of a validated config by name: the calibration entries first, then each entry's
    compared statistics, then its other seeds (``evaluation.seeds``), then the sensitivity variations.
    Computed once per distinct content of :data:`VIEW_SECTIONS` (every rule and slice asks for them)."""
    key = json.dumps({section: config[section] for section in VIEW_SECTIONS})  # in order, as the views are
    return dict(_cached_views(key))


@functools.lru_cache(maxsize=16)
def _cached_views(key: str) -> dict[str, View]:
    return _views(json.loads(key))


def _views(config: Mapping[str, Any]) -> dict[str, View]:
    """:func:`views`, computed."""
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
    """The configured methods that select blocks from their stored inputs (every one but ``auto``)."""
    return [m for m in config["methods"] if m != AUTO]


def similarity_methods(config: Mapping[str, Any]) -> list[str]:
    """The configured methods whose plans read only stored similarity files (rule ``plan``): those the
    statistics and sensitivity stages compare and resample."""
    return [m for m in selection_methods(config) if not get_method(m).runs_model]


def model_methods(config: Mapping[str, Any]) -> list[str]:
    """The configured methods whose plans run the model (their registration declares the ``model`` input,
    as SLEB's): rule ``model_plan``, on the GPU resources."""
    return [m for m in selection_methods(config) if get_method(m).runs_model]


def auto_candidates(config: Mapping[str, Any], calib: str) -> list[dict[str, str]]:
    """The plans ``auto`` chooses among on view ``calib``: every other method under the view's statistic and,
    for a calibration entry and a method that reads the similarity, under each compared one (``method``,
    ``statistic``, ``view``; a method that runs the model makes the same plan under every statistic)."""
    v = view(config, calib)
    out = []
    for method in selection_methods(config):
        out.append({"method": method, "statistic": v.statistic, "view": calib})
        if calib in config["calibration"] and not get_method(method).runs_model:
            out += [{"method": method, "statistic": s, "view": f"{calib}{VIEW_SEPARATOR}{s}"}
                    for s in config["similarity"]["compare"] if s != v.statistic]
    return out


def seed_groups(config: Mapping[str, Any]) -> dict[str, str]:
    """Each view whose evaluations are pooled over seeds, with its calibration entry: the entries and their
    ``evaluation.seeds`` views."""
    return {name: v.seed_group for name, v in views(config).items() if v.seed_group}


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
