"""The sparse family's figures as PNG (the helpers and conventions of :mod:`lorp.figures`).

* :func:`sparsity_profiles`: per-block sparsity of every allocation, and each block's non-outlier ratio
  after pruning with its spread (MRP's principle is to flatten it);
* :func:`mrp_sweep`: how MRP's outlier threshold M and step move its allocation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..figures import _linestyle, _plt, _save, _sparse_color, integer_ticks


def sparsity_profiles(profiles: Mapping[str, Mapping[int, Sequence[float]]],
                      after: Mapping[str, Mapping[int, tuple[Sequence[float], float]]], path: str | Path,
                      title: str) -> None:
    """Per target (rows): each method's per-block sparsity (left) and its blocks' non-outlier ratio
    after pruning, with the standard deviation in the legend (right)."""
    plt = _plt()
    targets = sorted({t for per in profiles.values() for t in per})
    fig, axes = plt.subplots(len(targets), 2, figsize=(11, 3.2 * len(targets)), dpi=120, squeeze=False)
    for row, target in zip(axes, targets):
        for i, (method, per) in enumerate(profiles.items()):
            if target not in per:
                continue
            style = {"color": _sparse_color(method, i), "ls": _linestyle(method),
                     "marker": ".", "lw": 1.2}
            row[0].plot(range(len(per[target])), [100 * s for s in per[target]], label=method, **style)
            ratios, std = after[method][target]
            row[1].plot(range(len(ratios)), ratios, label=f"{method} (std {std:.4f})", **style)
        row[0].axhline(target, color="black", lw=0.8, ls=":")
        row[0].set_ylabel("sparsity (%)")
        row[0].set_title(f"per-block sparsity, target {target}%", fontsize=10)
        row[1].set_ylabel("non-outlier ratio")
        row[1].set_title(f"non-outlier ratio after pruning, target {target}%", fontsize=10)
        for ax in row:
            ax.set_xlabel("block")
            integer_ticks(ax)
            ax.grid(color="0.9")
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def mrp_sweep(runs: Sequence[Mapping[str, Any]], m: float, step: float, path: str | Path, title: str) -> None:
    """Per target (rows): MRP's per-block sparsity for every M at the configured step, for every step
    at the configured M, and the spread of the non-outlier ratios after pruning against M (one line per
    step; uniform's spread dashed)."""
    plt = _plt()
    targets = sorted({r["target"] for r in runs})
    fig, axes = plt.subplots(len(targets), 3, figsize=(15, 3.2 * len(targets)), dpi=120, squeeze=False)
    for row, target in zip(axes, targets):
        sub = [r for r in runs if r["target"] == target]
        for i, r in enumerate(x for x in sub if x["step"] == step):
            row[0].plot([100 * s for s in r["sparsities"]], marker=".", lw=1, color=f"C{i}", label=f"M = {r['outlier_m']:g}")
        for i, r in enumerate(x for x in sub if x["outlier_m"] == m):
            row[1].plot([100 * s for s in r["sparsities"]], marker=".", lw=1, color=f"C{i}",
                        label=f"step {r['step']:g} ({r['iterations']} iterations)")
        for i, st in enumerate(dict.fromkeys(r["step"] for r in sub)):
            pts = sorted((r["outlier_m"], r["non_outlier_std"]) for r in sub if r["step"] == st)
            row[2].plot(*zip(*pts), marker="o", color=f"C{i}", label=f"MRP, step {st:g}")
        uni = sorted({(r["outlier_m"], r["uniform_non_outlier_std"]) for r in sub})
        row[2].plot(*zip(*uni), ls="--", color="black", marker="x", label="uniform")
        row[0].set_title(f"MRP sparsity by M (step {step:g}), target {target}%", fontsize=10)
        row[1].set_title(f"MRP sparsity by step (M = {m:g}), target {target}%", fontsize=10)
        row[2].set_title(f"spread of the non-outlier ratio, target {target}%", fontsize=10)
        for ax in row[:2]:
            ax.set_xlabel("block")
            ax.set_ylabel("sparsity (%)")
            ax.axhline(target, color="black", lw=0.8, ls=":")
            integer_ticks(ax)
        row[2].set_xlabel("outlier threshold M")
        row[2].set_ylabel("std of non-outlier ratio")
        for ax in row:
            ax.grid(color="0.9")
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)
