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
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from . import allocations
from .registry import method_name, nm_allocation, parse_nm  # noqa: F401 (re-exported)
from .redundancy import BlockScores


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
        return allocations.grid_point(max(0.0, s0), self.step, 0)  # 0.7 - 0.2 is 0.49999999999999994


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


def dense_outliers(block_scores: Iterable[Mapping[str, Any]], m: float, count_zeros: bool) -> list[dict[str, Any]]:
    """Each block's outlier ratio on the dense model (OWL's input), its parameter count and its layers'
    shapes, from every block's scores (layer name -> [out, in] tensor; no sorting needed at sparsity 0):
    what ``outliers.json`` holds per block."""
    from .scores import outlier_ratio

    out = []
    for b, layers in enumerate(block_scores):
        ratio = outlier_ratio(list(layers.values()), m, count_zeros)
        out.append({"block": b, "n_params": int(sum(s.numel() for s in layers.values())), "outlier_ratio": ratio,
                    "non_outlier_ratio": 1.0 - ratio, "linears": {name: list(s.shape) for name, s in layers.items()}})
    return out


def _n_params(shapes: Sequence[Mapping[str, Sequence[int]]]) -> list[int]:
    return [int(sum(o * i for o, i in block.values())) for block in shapes]


def uniform_plan(metric: str, target: float, shapes: Sequence[Mapping[str, Sequence[int]]]) -> SparsePlan:
    """Every linear layer of every block at the target; ``shapes`` gives each block's layers as
    name -> (out, in) (:func:`lorp.sparse.norms.block_shapes`), so no weight is read."""
    sparsities = allocations.uniform(len(shapes), target)
    return SparsePlan(metric, "uniform", target, _n_params(shapes), sparsities,
                      [{name: float(target) for name in block} for block in shapes], [])


def nm_plan(metric: str, n: int, m: int, shapes: Sequence[Mapping[str, Sequence[int]]]) -> SparsePlan:
    """An N:M plan: in every group of M consecutive inputs of a row, the N highest scores are kept
    (2:4 is the pattern sparse tensor cores accelerate); every layer at sparsity ``(M - N) / M``."""
    if not 0 < n < m:
        raise ValueError(f"an N:M pattern needs 0 < N < M, got {n}:{m}")
    bad = [name for block in shapes for name, (_, cols) in block.items() if cols % m]
    if bad:
        raise ValueError(f"an {n}:{m} pattern needs every layer's inputs divisible by {m}; {bad[0]} has not")
    target = (m - n) / m
    return SparsePlan(metric, f"{n}of{m}", target, _n_params(shapes), [target] * len(shapes),
                      [{name: target for name in block} for block in shapes], [], {"nm": [n, m]})


def owl_plan(metric: str, target: float, outliers: Sequence[Mapping[str, Any]], lam: float) -> SparsePlan:
    """OWL's plan from the dense blocks' outlier ratios (``outliers.json``)."""
    ratios = [float(b["outlier_ratio"]) for b in outliers]
    sparsities = allocations.owl(ratios, target, lam)
    return SparsePlan(metric, "owl", target, [int(b["n_params"]) for b in outliers], sparsities,
                      [{name: float(s) for name in block["linears"]} for block, s in zip(outliers, sparsities)],
                      ratios, {"owl_lambda": lam})


def _units_of(block: BlockScores, granularity: str) -> dict[str | None, BlockScores]:
    """A block's units for MRP: the block itself (``block``) or each of its linear layers (``linear``)."""
    if granularity == "block":
        return {None: block}
    if granularity == "linear":
        return dict(block.split())
    raise ValueError(f"granularity must be block or linear, got {granularity!r}")


def _key(sparsity: float) -> float:
    return round(float(sparsity), 9)


def mrp_grid(target: float, settings: MRPSettings) -> list[float]:
    """The sparsities MRP's loop visits at ``target``: s0 plus whole steps below the upper bound, and the
    bound (the last, cut increment is measured when reached)."""
    s0 = settings.s0(target)
    n = int(np.ceil((settings.upper - s0) / settings.step - 1e-9))
    points = (allocations.grid_point(s0, settings.step, i) for i in range(n))
    return sorted({_key(s) for s in points if s < settings.upper} | {_key(settings.upper)})


@dataclass
class UnitRatios:
    """Outlier ratios of a model's MRP units (blocks or linear layers) at chosen sparsities, measured in
    one pass over the blocks (:func:`measure_units`), for any number of MRP runs on them."""

    granularity: str
    owners: list[tuple[int, str | None]]  # unit -> (block, layer name or None)
    n_params: list[int]  # per unit
    layers: list[dict[str, int]]  # per block: layer -> parameters
    curves: dict[float, list[dict[float, float]]]  # M -> per unit: sparsity -> outlier ratio
    block_curves: dict[float, list[dict[float, float]]]  # M -> per block: sparsity -> outlier ratio


def measure_units(blocks: Sequence[BlockScores], granularity: str, points: Mapping[float, Iterable[float]],
                  count_zeros: bool) -> UnitRatios:
    """Every unit's and every block's outlier ratio at the sparsities ``points[M]`` for each M, one block
    at a time (``blocks`` may score each block when accessed: :class:`lorp.sparse.redundancy.ModelScores`)."""
    pts = {m: sorted({_key(s) for s in ss}) for m, ss in points.items()}
    result = UnitRatios(granularity, [], [], [], {m: [] for m in pts}, {m: [] for m in pts})
    for b in range(len(blocks)):
        block = blocks[b]
        result.layers.append({name: r.rows * r.cols for name, r in block.layers.items()})
        for m, ss in pts.items():
            result.block_curves[m].append({s: block.outlier_ratio(s, m, count_zeros) for s in ss})
        for name, unit in _units_of(block, granularity).items():
            result.owners.append((b, name))
            result.n_params.append(unit.n_params)
            for m, ss in pts.items():
                result.curves[m].append({s: unit.outlier_ratio(s, m, count_zeros) for s in ss}
                                        if granularity == "linear" else result.block_curves[m][-1])
    return result


def _block_sparsity(linears: Mapping[str, float], n_params: Mapping[str, int]) -> float:
    """A block's sparsity: its layers' one sparsity when they share it (exactly, not a weighted mean that
    could leave MRP's grid by float error), else their parameter-weighted mean."""
    values = set(linears.values())
    if len(values) == 1:
        return float(values.pop())
    return sum(linears[name] * n for name, n in n_params.items()) / sum(n_params.values())


def mrp_plan(metric: str, target: float, blocks: Sequence[BlockScores], m: float, count_zeros: bool,
             settings: MRPSettings, units: UnitRatios | None = None) -> SparsePlan:
    """MRP's plan: the loop of :func:`lorp.sparse.allocations.mrp` over blocks or linear layers.

    The ratios come from ``units`` (measured beforehand, e.g. once for a sweep of several runs) or are
    measured here on MRP's grid (:func:`mrp_grid`); the last, cut increment is measured on its block.
    """
    s0 = settings.s0(target)
    if units is None:
        units = measure_units(blocks, settings.granularity, {m: mrp_grid(target, settings) + [0.0]}, count_zeros)
    if units.granularity != settings.granularity:
        raise ValueError(f"the units were measured at granularity {units.granularity!r}, not {settings.granularity!r}")
    curves = units.curves[m]

    def non_outlier(u: int, s: float) -> float:
        ratio = curves[u].get(_key(s))
        if ratio is None:  # off the grid: the last increment, cut to land on the target
            b, name = units.owners[u]
            ratio = _units_of(blocks[b], units.granularity)[name].outlier_ratio(s, m, count_zeros)
        return 1.0 - ratio

    result = allocations.mrp(units.n_params, non_outlier, target, s0, settings.step, settings.upper)
    linears: list[dict[str, float]] = [{name: s0 for name in layers} for layers in units.layers]
    for (b, name), s in zip(units.owners, result.sparsities):
        for layer in ([name] if name else units.layers[b]):
            linears[b][layer] = float(s)
    n_params = [sum(layers.values()) for layers in units.layers]
    per_block = [_block_sparsity(linears[b], layers) for b, layers in enumerate(units.layers)]
    for step in result.trajectory:  # name the unit: a block, or a block's layer
        b, name = units.owners[step["block"]]
        step["block"] = b
        if name:
            step["linear"] = name
    dense = [curve.get(0.0) for curve in units.block_curves[m]]
    return SparsePlan(metric, "mrp", target, n_params, per_block, linears,
                      dense if None not in dense else [], {"outlier_m": m, "count_zeros": count_zeros, "s0": s0,
                                                           **asdict(settings)},
                      result.trajectory, [float(r) for r in result.final_ratios])


def redundancy_after(plans: Sequence[SparsePlan], blocks: Sequence[BlockScores], m: float,
                     count_zeros: bool) -> list[dict[str, Any]]:
    """Each block's non-outlier ratio once pruned to each plan, scored with the dense model's input
    norms (as MRP's loop measures it), and their standard deviation: MRP's principle is to make it
    small. One pass over the blocks for all plans."""
    ratios: list[list[float]] = [[] for _ in plans]
    for b in range(len(blocks)):
        block = blocks[b]
        for i, plan in enumerate(plans):
            ratios[i].append(1.0 - block.outlier_ratio(plan.linears[b], m, count_zeros))
    return [{"method": plan.method, "budget": plan.percent, "non_outlier_ratio": r,
             "non_outlier_std": float(np.std(np.asarray(r, dtype=np.float64)))} for plan, r in zip(plans, ratios)]
