"""MRP's allocation swept over its outlier threshold M and its step, at several targets, from one pass
over the blocks' scores: what the ``mrp_sweep`` stage tabulates and draws."""

from __future__ import annotations

import collections.abc
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import plan as sp
from .redundancy import BlockScores


class _Progress(collections.abc.Sequence):
    """A sequence that reports each item it hands out (a progress bar over a lazy pass)."""

    def __init__(self, items: Sequence, update: Callable[[int], Any]):
        self.items, self.update = items, update

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: Any) -> Any:
        item = self.items[i]
        self.update(1)
        return item


def mrp_sweep(metric: str, blocks: Sequence[BlockScores], targets: Sequence[int], params: Mapping[str, Any],
              sweep: Mapping[str, Sequence[float]],
              progress: Callable[[int], Any] | None = None) -> list[dict[str, Any]]:
    """MRP's allocation for every M and step of ``sweep`` (the configured value of ``params`` where a list is
    empty) at every target (percent), one row per run in the order target, M, step: its per-block
    sparsities, the steps it took and the spread (standard deviation) of the blocks' non-outlier ratios
    after pruning, with uniform's spread at the same M and target for reference.

    ``blocks`` may score each block when accessed (:class:`lorp.sparse.redundancy.ModelScores`): the
    ratios of every run are measured in one pass over them (``progress`` is called once per block), and
    the ratios after pruning in a second. ``params`` holds ``outlier_m``, ``count_zeros`` and ``mrp`` (its
    ``start_below``, ``step``, ``upper`` in percent, and ``granularity``).
    """
    mrp, count_zeros = params["mrp"], params["count_zeros"]
    ms = list(sweep["outlier_m"]) or [params["outlier_m"]]
    steps = list(sweep["step"]) or [mrp["step"]]
    targets = sorted(int(t) for t in targets)

    def settings(step: float) -> Any:
        return sp.MRPSettings(mrp["start_below"] / 100, step / 100, mrp["upper"] / 100, mrp["granularity"])

    grid = {0.0, *(t / 100 for t in targets)}
    grid |= {s for t in targets for step in steps for s in sp.mrp_grid(t / 100, settings(step))}
    counted = _Progress(blocks, progress) if progress is not None else blocks
    units = sp.measure_units(counted, mrp["granularity"], {m: grid for m in ms}, count_zeros)
    runs = [(t, m, step, sp.mrp_plan(metric, t / 100, blocks, m, count_zeros, settings(step), units=units))
            for t in targets for m in ms for step in steps]
    after: list[list[float]] = [[] for _ in runs]  # every run's block ratios after pruning, in one pass
    for b in range(len(blocks)):
        block = blocks[b]
        for i, (_, m, _, plan) in enumerate(runs):
            after[i].append(1.0 - block.outlier_ratio(plan.linears[b], m, count_zeros))
    rows = []
    for (t, m, step, plan), ratios in zip(runs, after):
        uniform = [1.0 - curve[round(t / 100, 9)] for curve in units.block_curves[m]]
        rows.append({"target": t, "outlier_m": m, "step": step, "iterations": len(plan.trajectory),
                     "sparsities": plan.blocks, "non_outlier_std": float(np.std(ratios)),
                     "uniform_non_outlier_std": float(np.std(uniform))})
    return rows
