"""How much unstructured sparsity each decoder block gets, for a global target.

* :func:`uniform`: every block the target.
* :func:`owl` (Outlier-Weighted Layerwise sparsity): blocks with more outliers keep more weights.
  Densities ``r = minmax(outlier ratio) * 2 * lambda``, shifted so that they average ``1 - target``;
  sparsity ``1 - r`` (so the sparsities span at most ``2 * lambda`` around their mean, the target).
* :func:`mrp` (Maximum Redundancy Pruning): every block starts at ``s0``; each iteration raises the
  sparsity of the most redundant block (the highest non-outlier ratio, measured on the model as pruned
  so far) by ``step`` and measures it again, until the parameter-weighted mean sparsity reaches the
  target exactly (the last increment is cut to land on it). The trajectory of every iteration is kept.
  A block's sparsity is a point of its grid, ``s0`` plus a whole number of steps (:func:`grid_point`),
  computed from that number and not by adding steps up, so float error never accumulates: block 17 of
  the default ``wanda-mrp-50`` plan is 0.5, not 0.49999999999999073 (which would prune 287 of a 576-input
  row's weights instead of 288). Only the last, cut increment (and the upper bound) leaves the grid.

All sparsities are fractions in [0, 1]; blocks are 0-based.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


_EPS = 1e-12
GRID_DECIMALS = 12
"""MRP's grid points are rounded to this many decimals: the float of the decimal they stand for (0.37,
0.5), whatever error ``s0 + k * step`` picked up, as the sparsities of the config are decimals (percent / 100)."""


def _check_target(target: float) -> None:
    if not 0 < target < 1:
        raise ValueError(f"target sparsity must be in (0, 1), got {target}")


def weighted_mean(sparsities: Sequence[float], n_params: Sequence[int]) -> float:
    """The model's sparsity: the blocks' sparsities weighted by their parameter counts."""
    s, p = np.asarray(sparsities, dtype=np.float64), np.asarray(n_params, dtype=np.float64)
    return float((s * p).sum() / p.sum())


def uniform(n_blocks: int, target: float) -> list[float]:
    """Every block at the target."""
    _check_target(target)
    return [float(target)] * n_blocks


def owl(outlier_ratios: Sequence[float], target: float, lam: float = 0.08) -> list[float]:
    """OWL's sparsities from each block's outlier ratio on the dense model; they average to ``target``
    (unweighted, as OWL's blocks are the same size), and the highest minus the lowest is ``2 * lam``
    (0 when every ratio is the same)."""
    _check_target(target)
    if not 0 <= 2 * lam < min(target, 1 - target):
        raise ValueError(f"lambda must be in [0, {min(target, 1 - target) / 2:g}) for target {target} (the sparsities "
                         f"span 2 x lambda around it and must stay in [0, 1]), got {lam}")
    d = np.asarray(outlier_ratios, dtype=np.float64)
    span = d.max() - d.min()
    r = (d - d.min()) / span * 2 * lam if span > 0 else np.zeros_like(d)
    r = r - r.mean() + (1 - target)
    return (1 - r).tolist()


@dataclass
class MRPResult:
    """Per-block sparsities and the trajectory (one record per iteration: block, its new sparsity, its
    non-outlier ratio after the step, the model's sparsity)."""

    sparsities: list[float]
    initial_ratios: list[float]
    final_ratios: list[float]
    trajectory: list[dict] = field(default_factory=list)


def check_mrp_settings(target: float, s0: float, step: float, upper: float) -> None:
    """Errors for settings that cannot reach the target in whole steps (s0 = target means no step: uniform)."""
    _check_target(target)
    if not 0 <= s0 <= target:
        raise ValueError(f"the starting sparsity s0 = {s0} must be in [0, target = {target}]")
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    n = (target - s0) / step
    if abs(n - round(n)) > 1e-6:
        raise ValueError(f"step {step} does not divide the range target - s0 = {target - s0:g} "
                         f"({n:.3f} steps); choose a step that does")
    if not target < upper <= 1:
        raise ValueError(f"the upper bound of a block's sparsity must be in (target, 1], got {upper}")


def grid_point(s0: float, step: float, k: int) -> float:
    """The sparsity ``k`` whole steps above ``s0``, as the float of its decimal value
    (:data:`GRID_DECIMALS`): ``grid_point(0.7 - 0.2, 0.01, 0)`` is 0.5, not 0.49999999999999994, and
    ``grid_point(0.3, 0.01, 5)`` is 0.35, not 0.35000000000000003."""
    return round(s0 + k * step, GRID_DECIMALS)


def mrp(n_params: Sequence[int], non_outlier_ratio: Callable[[int, float], float], target: float, s0: float,
        step: float, upper: float = 0.95) -> MRPResult:
    """Maximum Redundancy Pruning's allocation loop.

    Args:
        n_params: the prunable parameters of each block (the weights of its linear layers).
        non_outlier_ratio: ``f(block, sparsity)``, the block's non-outlier ratio once pruned to ``sparsity``
            (with the metric, on the model as pruned so far).
        target: the model's sparsity to reach, exactly, as the parameter-weighted mean.
        s0: every block's starting sparsity.
        step: how much one iteration raises the chosen block's sparsity.
        upper: no block goes beyond it (blocks at the bound are no longer chosen).
    """
    check_mrp_settings(target, s0, step, upper)
    n = len(n_params)
    total = float(sum(n_params))
    steps = [0] * n  # whole steps each block has taken: its sparsity is grid_point(s0, step, steps[b])
    s = [grid_point(s0, step, 0)] * n
    ratios = [float(non_outlier_ratio(b, s[b])) for b in range(n)]
    initial = list(ratios)
    trajectory = []
    while weighted_mean(s, n_params) < target - _EPS:
        open_blocks = [b for b in range(n) if s[b] < upper - _EPS]
        if not open_blocks:
            raise ValueError(f"every block is at the upper bound {upper}: the target {target} cannot be reached")
        block = max(open_blocks, key=lambda b: (ratios[b], -b))  # ties to the shallower block
        stepped = list(s)
        stepped[block] = min(grid_point(s0, step, steps[block] + 1), upper)
        if weighted_mean(stepped, n_params) <= target + _EPS:  # a whole step (to the bound at most)
            steps[block] += 1
            s = stepped
        else:  # a whole step would overshoot: the last increment, cut to land on the target
            s[block] += (target - weighted_mean(s, n_params)) * total / n_params[block]
        ratios[block] = float(non_outlier_ratio(block, s[block]))
        trajectory.append({"iteration": len(trajectory) + 1, "block": block, "sparsity": s[block],
                           "non_outlier_ratio": ratios[block], "model_sparsity": weighted_mean(s, n_params)})
    return MRPResult(sparsities=s, initial_ratios=initial, final_ratios=ratios, trajectory=trajectory)
