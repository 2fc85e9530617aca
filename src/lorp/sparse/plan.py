"""Sparsity plans: how much of every linear layer of every decoder block a metric, an allocation and a
target sparsity prune, with the evidence behind the choice.

A sparse method is named ``<metric>-<allocation>`` (``wanda-mrp``) and its budget is the target in
percent, so its evaluations sit beside the depth methods' (``results/{model}/eval/{calib}/wanda-mrp-50``).

The outlier ratios of the dense model (:func:`dense_outliers`) are computed once per metric and feed
OWL directly; MRP's loop needs every unit's sorted scores (:class:`lorp.sparse.redundancy.BlockScores`);
a uniform plan needs only the layers' shapes.
Every choice MRP leaves open is a field of :class:`MRPSettings`, recorded in the plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from . import allocations
from .redundancy import BlockScores
from .scores import METRICS

ALLOCATIONS = allocations.ALLOCATIONS


def method_name(metric: str, allocation: str) -> str:
    """The method name of a sparse configuration, as evaluations and tables show it: ``wanda-mrp``."""
    return f"{metric}-{allocation}"


def parse_method(name: str) -> tuple[str, str] | None:
    """``(metric, allocation)`` of a sparse method name, or None for any other name (a depth method)."""
    metric, _, allocation = str(name).partition("-")
    return (metric, allocation) if metric in METRICS and allocation in ALLOCATIONS else None


@dataclass(frozen=True)
class MRPSettings:
    """The choices of MRP's loop (fractions, not percent).

    Attributes:
        start_below: every unit starts at ``s0 = target - start_below``.
        step: how much one iteration raises the chosen unit's sparsity; must divide ``start_below``.
        upper: no unit goes beyond it.
        granularity: ``block`` (a decoder block is one unit, all its linear layers at one sparsity) or
            ``linear`` (every linear layer is a unit of its own).
    """

    start_below: float
    step: float
    upper: float
    granularity: str = "block"

    def s0(self, target: float) -> float:
        s0 = target - self.start_below
        if s0 < -1e-9:
            raise ValueError(f"MRP starts {self.start_below:g} below the target {target:g}, below 0")
        return max(0.0, s0)


@dataclass
class SparsePlan:
    """Per-block and per-linear sparsity for one metric, allocation and target; the plan JSON."""

    metric: str
    allocation: str
    target: float
    n_params: list[int]
    blocks: list[float]
    linears: list[dict[str, float]]
    dense_outlier_ratios: list[float]
    settings: dict[str, Any] = field(default_factory=dict)
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    predicted_non_outlier: list[float] | None = None  # MRP: each unit's ratio at its final sparsity (dense norms)

    @property
    def method(self) -> str:
        return method_name(self.metric, self.allocation)

    @property
    def percent(self) -> int:
        return int(round(100 * self.target))

    @property
    def model_sparsity(self) -> float:
        return allocations.weighted_mean(self.blocks, self.n_params)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d = {"family": "sparse", "method": self.method, "budget": self.percent, "n_layers": len(self.blocks),
             "model_sparsity": self.model_sparsity, **d}
        if self.predicted_non_outlier is None:
            del d["predicted_non_outlier"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SparsePlan":
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in keys})


def dense_outliers(blocks: Sequence[BlockScores], m: float, count_zeros: bool) -> list[dict[str, Any]]:
    """Each block's outlier ratio on the dense model (OWL's input) and its parameter count: what
    ``outliers.json`` holds per block."""
    out = []
    for b, block in enumerate(blocks):
        ratio = block.outlier_ratio(0.0, m, count_zeros)
        out.append({"block": b, "n_params": block.n_params, "outlier_ratio": ratio, "non_outlier_ratio": 1.0 - ratio,
                    "linears": {name: [rows.rows, rows.cols] for name, rows in block.layers.items()}})
    return out


def _n_params(shapes: Sequence[Mapping[str, Sequence[int]]]) -> list[int]:
    return [int(sum(o * i for o, i in block.values())) for block in shapes]


def uniform_plan(metric: str, target: float, shapes: Sequence[Mapping[str, Sequence[int]]]) -> SparsePlan:
    """Every linear layer of every block at the target; ``shapes`` gives each block's layers as
    name -> (out, in) (:func:`lorp.sparse.norms.block_shapes`), so no weight is read."""
    sparsities = allocations.uniform(len(shapes), target)
    return SparsePlan(metric, "uniform", target, _n_params(shapes), sparsities,
                      [{name: float(target) for name in block} for block in shapes], [])


def owl_plan(metric: str, target: float, outliers: Sequence[Mapping[str, Any]], lam: float) -> SparsePlan:
    """OWL's plan from the dense blocks' outlier ratios (``outliers.json``)."""
    ratios = [float(b["outlier_ratio"]) for b in outliers]
    sparsities = allocations.owl(ratios, target, lam)
    return SparsePlan(metric, "owl", target, [int(b["n_params"]) for b in outliers], sparsities,
                      [{name: float(s) for name in block["linears"]} for block, s in zip(outliers, sparsities)],
                      ratios, {"owl_lambda": lam})


def mrp_plan(metric: str, target: float, blocks: Sequence[BlockScores], m: float, count_zeros: bool,
             settings: MRPSettings) -> SparsePlan:
    """MRP's plan: the loop of :func:`lorp.sparse.allocations.mrp` over blocks or linear layers."""
    s0 = settings.s0(target)
    if settings.granularity == "block":
        units, owners = list(blocks), [(b, None) for b in range(len(blocks))]
    elif settings.granularity == "linear":
        units, owners = [], []
        for b, block in enumerate(blocks):
            for name, unit in block.split().items():
                units.append(unit)
                owners.append((b, name))
    else:
        raise ValueError(f"granularity must be block or linear, got {settings.granularity!r}")
    result = allocations.mrp([u.n_params for u in units], lambda u, s: 1.0 - units[u].outlier_ratio(s, m, count_zeros),
                             target, s0, settings.step, settings.upper)
    linears: list[dict[str, float]] = [{name: s0 for name in block.layers} for block in blocks]
    for (b, name), s in zip(owners, result.sparsities):
        for layer in ([name] if name else blocks[b].layers):
            linears[b][layer] = float(s)
    n_params = [blk.n_params for blk in blocks]
    per_block = [sum(linears[b][name] * rows.rows * rows.cols for name, rows in blk.layers.items()) / blk.n_params
                 for b, blk in enumerate(blocks)]
    for step in result.trajectory:  # name the unit: a block, or a block's layer
        b, name = owners[step["block"]]
        step["block"] = b
        if name:
            step["linear"] = name
    dense = [blk.outlier_ratio(0.0, m, count_zeros) for blk in blocks]
    return SparsePlan(metric, "mrp", target, n_params, per_block, linears, dense,
                      {"outlier_m": m, "count_zeros": count_zeros, "s0": s0, **asdict(settings)}, result.trajectory,
                      [float(r) for r in result.final_ratios])


def redundancy_after(plan: SparsePlan, blocks: Sequence[BlockScores], m: float, count_zeros: bool) -> dict[str, Any]:
    """Each block's non-outlier ratio once pruned to ``plan``, scored with the dense model's input norms
    (as MRP's loop measures it), and their standard deviation: MRP's principle is to make it small."""
    ratios = [1.0 - block.outlier_ratio(plan.linears[b], m, count_zeros) for b, block in enumerate(blocks)]
    return {"method": plan.method, "budget": plan.percent, "non_outlier_ratio": ratios,
            "non_outlier_std": float(np.std(np.asarray(ratios, dtype=np.float64)))}
