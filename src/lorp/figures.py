"""The paper's figures as PNG (matplotlib, Agg backend), each readable without the text around it.

* :func:`similarity_heatmap`: the similarity matrix alone (``heatmap.png`` of the similarity stage);
* :func:`heatmap_with_plans`: the similarity matrix with cluster boundaries, and beside it the layers
  each method prunes at one budget;
* :func:`locality_curves`: mean similarity against normalised layer distance, one line per model with
  its RLS in the legend (the paper's Figure 2);
* :func:`pruned_layer_map`: methods x layers, one panel per budget (the paper's Figure 4);
* :func:`k_ablation`: LoRP perplexity against the number of clusters K, one line per budget (Figure 5);
* :func:`metric_vs_budget`: perplexity or accuracy against the budget, one line per method, dense dashed
  (also perplexity against target sparsity, one line per metric and allocation);
* the sparse family's own figures are in :mod:`lorp.sparse.figures` (per-block sparsity of every
  allocation, MRP's sweep).

Functions take plain arrays, dicts and data frames and write one PNG atomically; PNG metadata
carries no software version or date, so a rerun on the same inputs gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .io import atomic_path
from .depth.methods import METHODS
from .recovery.registry import split_recovered
from .sparse.names import parse_method

DENSE_COLOR = "#000000"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(method: str, index: int) -> str:
    """A method's colour as declared in the registry (black for dense; a cycle colour otherwise)."""
    if method == "dense":
        return DENSE_COLOR
    base, recovery = split_recovered(method)
    if recovery is not None:  # a recovered model: its depth method's colour (its recovery's line style)
        return _color(base, index)
    if parse_method(method):
        return _sparse_color(method, index)
    declared = METHODS[method].color if method in METHODS else None
    return declared or f"C{index % 10}"


def _save(fig: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    _plt().close(fig)


def cluster_boundaries(labels: Sequence[int]) -> list[float]:
    """Positions (between layers, as i - 0.5) where the cluster label changes along depth."""
    return [i - 0.5 for i in range(1, len(labels)) if labels[i] != labels[i - 1]]


def integer_ticks(ax: Any) -> None:
    """Layer axes show whole layer numbers only (no 2.5)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def similarity_heatmap(matrix: np.ndarray, path: str | Path, title: str) -> None:
    """Similarity heatmap (layer x layer)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=120)
    im = ax.imshow(matrix, cmap="viridis", vmin=min(0.0, float(matrix.min())), vmax=1.0, origin="upper")
    ax.set_xlabel("layer j (input of block j)")
    ax.set_ylabel("layer i (input of block i)")
    ax.set_title(title)
    integer_ticks(ax)
    fig.colorbar(im, ax=ax, label="mean cosine similarity")
    fig.tight_layout()
    _save(fig, path)


def heatmap_with_plans(cosine: np.ndarray, labels: Sequence[int], rls: float, k: int,
                       pruned: Mapping[str, Sequence[int]], budget: int, path: str | Path, title: str) -> None:
    """Similarity heatmap with cluster boundaries, and a strip marking each method's pruned layers."""
    plt = _plt()
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    n = cosine.shape[0]
    methods = list(pruned)
    fig, ax = plt.subplots(figsize=(7.6 + 0.25 * len(methods), 6.0), dpi=120)
    im = ax.imshow(cosine, cmap="viridis", vmin=min(0.0, float(cosine.min())), vmax=1.0, origin="upper",
                   interpolation="nearest")
    for b in cluster_boundaries(labels):
        ax.axhline(b, color="white", lw=1.2)
        ax.axvline(b, color="white", lw=1.2)
    ax.set_xlabel("layer j")
    ax.set_ylabel("layer i (white lines: cluster boundaries)")
    integer_ticks(ax)
    ax.set_title(f"{title}\nRLS = {rls:.3f}, K = {k}", fontsize=10)
    divider = make_axes_locatable(ax)
    strip = divider.append_axes("right", size=f"{8 * max(2, len(methods)) * 30 // n}%", pad=0.12, sharey=ax)
    cax = divider.append_axes("right", size="4%", pad=0.5)
    for col, method in enumerate(methods):
        layers = list(pruned[method])
        strip.scatter([col] * len(layers), layers, marker="s", s=22, color=_color(method, col))
    strip.set_xticks(range(len(methods)), methods, rotation=60, ha="right", fontsize=8)
    strip.set_xlim(-0.6, len(methods) - 0.4)
    strip.tick_params(axis="y", labelleft=False)
    strip.grid(axis="y", color="0.9", lw=0.5)
    strip.set_title(f"pruned at\nbudget {budget}", fontsize=9)
    fig.colorbar(im, cax=cax, label="mean cosine similarity")
    _save(fig, path)


def statistics_grid(panels: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, budget: int) -> None:
    """One row of similarity heatmaps per ``model/calib`` label, one column per statistic, each with its
    cluster boundaries, RLS, K, and every method's pruned layers at ``budget`` in its title.

    ``panels`` maps a label to its statistics' entries: ``statistic``, ``matrix``, ``labels`` (the
    clustering), ``rls``, ``k`` and ``pruned`` (method -> pruned layers at ``budget``)."""
    plt = _plt()
    n_rows = len(panels)
    n_cols = max(len(v) for v in panels.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 4.2 * n_rows), dpi=110, squeeze=False,
                             layout="constrained")
    for row, (label, entries) in enumerate(panels.items()):
        for col in range(n_cols):
            ax = axes[row][col]
            if col >= len(entries):
                ax.axis("off")
                continue
            e = entries[col]
            m = np.asarray(e["matrix"])
            ax.imshow(m, cmap="viridis", vmin=min(0.0, float(np.nanmin(m))), vmax=1.0, interpolation="nearest")
            for b in cluster_boundaries(e["labels"]):
                ax.axhline(b, color="white", lw=0.9)
                ax.axvline(b, color="white", lw=0.9)
            integer_ticks(ax)
            ax.tick_params(labelsize=7)
            plans = "\n".join(f"{method}: {' '.join(map(str, sorted(layers)))}" for method, layers in e["pruned"].items())
            ax.set_title(f"{label}\n{e['statistic']}: RLS {e['rls']:.3f}, K {e['k']}", fontsize=8)
            ax.set_xlabel(f"pruned at budget {budget}\n{plans}", fontsize=7)
    fig.suptitle("similarity statistics: the matrix, its clusters (white) and the plans they give", fontsize=10)
    _save(fig, path)


def sensitivity_rls(rows: Sequence[Mapping[str, Any]], path: str | Path, model: str) -> None:
    """RLS of every calibration view against its token count, with the bootstrap interval where one ran,
    each point labelled by its variation; LoRP's default thresholds drawn for reference."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for i, r in enumerate(rows):
        lo, hi = r["rls_low"], r["rls_high"]
        err = None if not np.isfinite(lo) else [[r["rls"] - lo], [hi - r["rls"]]]
        ax.errorbar([r["n_tokens"]], [r["rls"]], yerr=err, fmt="o" if i else "D", color=DENSE_COLOR if not i else f"C{i % 10}",
                    capsize=4, ms=6)
        ax.annotate(f"{r['variation']} (K {r['k']})", (r["n_tokens"], r["rls"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=7)
    for t in (1.0, 0.7):
        ax.axhline(t, color="0.6", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("calibration tokens captured (log scale)")
    ax.set_ylabel("RLS (interval: bootstrap over sequences)")
    ax.set_title(f"{model}: RLS under the calibration variations", fontsize=10)
    ax.grid(color="0.92", lw=0.5)
    fig.tight_layout()
    _save(fig, path)


def sensitivity_stability(rows: Sequence[Mapping[str, Any]], methods: Sequence[str], path: str | Path,
                          model: str) -> None:
    """Per method, the mean Jaccard similarity of each view's plans to the reference's (left) and of the
    bootstrap's plans to the view's own (right, where it ran), against the calibration tokens: the views that
    differ from the reference (``rows[0]``) in size only are joined by a line, the others (seed, corpus,
    statistic) are crosses named along the axis."""
    plt = _plt()
    boot = any(np.isfinite(r[f"bootstrap_jaccard_{m}"]) for r in rows for m in methods)
    fig, axes = plt.subplots(1, 2 if boot else 1, figsize=(11.0 if boot else 6.0, 4.0), dpi=120, squeeze=False)
    ref = rows[0]
    same = ("source", "seed", "statistic")
    sizes = sorted((r for r in rows if all(r[k] == ref[k] for k in same)), key=lambda r: r["n_tokens"])
    others = [r for r in rows if not all(r[k] == ref[k] for k in same)]
    panels = [("jaccard", "Jaccard to the reference calibration's plan")]
    if boot:
        panels.append(("bootstrap_jaccard", "bootstrap: mean Jaccard to the view's own plan"))
    for ax, (key, label) in zip(axes[0], panels):
        for j, method in enumerate(methods):  # the size series joined; other variations as crosses, named
            ax.plot([r["n_tokens"] for r in sizes], [r[f"{key}_{method}"] for r in sizes], "o-", color=_color(method, j),
                    label=method, lw=1.2, ms=4)
            ax.plot([r["n_tokens"] for r in others], [r[f"{key}_{method}"] for r in others], "x", color=_color(method, j),
                    ms=6)
        at: dict[int, list[str]] = {}
        for r in others:
            at.setdefault(r["n_tokens"], []).append(r["variation"])
        for n_tokens, names in at.items():
            ax.annotate(", ".join(names), (n_tokens, 0.02), fontsize=7, rotation=90, color="0.4")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("calibration tokens captured (log scale)")
        ax.set_ylabel(label + "\n(mean over budgets)", fontsize=8)
        ax.grid(color="0.92", lw=0.5)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{model}: plan stability under the calibration", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def selection_map(rows: Sequence[Mapping[str, Any]], methods: Sequence[str], budget: int, path: str | Path,
                  model: str) -> None:
    """One panel per method: variations (rows) x layers (columns), how often each layer is pruned at ``budget``."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    variations = list(dict.fromkeys(r["variation"] for r in rows))
    n_layers = 1 + max(int(r["layer"]) for r in rows)
    fig, axes = plt.subplots(len(methods), 1, figsize=(max(6.0, 0.22 * n_layers + 2.5),
                                                       1.0 + (0.28 * len(variations) + 0.9) * len(methods)),
                             dpi=120, squeeze=False, layout="constrained")
    for ax, method in zip(axes[:, 0], methods):
        grid = np.zeros((len(variations), n_layers))
        for r in rows:
            if r["method"] == method and int(r["budget"]) == budget:
                grid[variations.index(r["variation"]), int(r["layer"])] = r["frequency"]
        im = ax.imshow(grid, cmap="magma_r", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(variations)), variations, fontsize=7)
        ax.set_title(f"{method}, budget {budget}", fontsize=9, loc="left")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel("layer")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="share pruned", shrink=0.8)
    fig.suptitle(f"{model}: how often each layer is pruned", fontsize=10)
    _save(fig, path)


def distance_profile(cosine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean similarity at each layer distance d = 1..N-1, and d normalised by N-1."""
    n = cosine.shape[0]
    d = np.arange(1, n)
    means = np.array([np.diagonal(cosine, offset=k).mean() for k in d])
    return d / (n - 1), means


def locality_curves(curves: Mapping[str, tuple[np.ndarray, float]], path: str | Path, title: str = "") -> None:
    """Mean similarity against normalised layer distance; ``curves`` maps a label to (cosine, RLS)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for i, (label, (cosine, rls)) in enumerate(curves.items()):
        x, y = distance_profile(cosine)
        ax.plot(x, y, marker="o", ms=2.5, lw=1.4, color=f"C{i % 10}", label=f"{label} (RLS = {rls:.3f})")
    ax.set_xlabel("layer distance |i - j| / (N - 1)")
    ax.set_ylabel("mean cosine similarity")
    ax.set_title(title or "Similarity decays with layer distance (higher RLS: more local)")
    ax.set_xlim(0, 1)
    ax.grid(color="0.9")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def pruned_layer_map(pruned: Mapping[int, Mapping[str, Sequence[int]]], n_layers: int, path: str | Path,
                     title: str) -> None:
    """Methods x layers, one panel per budget: a filled cell is a pruned block."""
    plt = _plt()
    budgets = sorted(pruned)
    methods = list(next(iter(pruned.values()))) if budgets else []
    fig, axes = plt.subplots(len(budgets), 1, figsize=(max(6.0, 0.22 * n_layers + 2), 0.9 + 0.32 * len(methods)
                                                       * len(budgets) + 0.35 * len(budgets)),
                             dpi=120, squeeze=False, sharex=True)
    for ax, budget in zip(axes[:, 0], budgets):
        grid = np.zeros((len(methods), n_layers))
        for row, method in enumerate(methods):
            grid[row, list(pruned[budget][method])] = 1
        ax.imshow(grid, cmap="Greys", vmin=0, vmax=1.4, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        ax.set_xticks(np.arange(-0.5, n_layers, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, len(methods), 1), minor=True)
        ax.grid(which="minor", color="white", lw=0.8)
        ax.tick_params(which="minor", length=0)
        ax.set_ylabel(f"budget {budget}", fontsize=9)
    axes[-1, 0].set_xlabel("decoder block (dark: pruned)")
    axes[-1, 0].set_xticks(range(0, n_layers, max(1, n_layers // 15)))
    axes[0, 0].set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def k_ablation(frame: Any, path: str | Path, auto_k: Mapping[str, int] | None = None) -> None:
    """LoRP mean perplexity against K, one panel per model, one line per budget.

    ``frame`` has columns model, k, budget, mean_ppl; ``auto_k`` marks the K that RLS chose per model.
    """
    plt = _plt()
    models = list(dict.fromkeys(frame["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 3.8), dpi=120, squeeze=False)
    for ax, model in zip(axes[0], models):
        sub = frame[frame["model"] == model]
        for i, (budget, group) in enumerate(sub.groupby("budget")):
            group = group.sort_values("k")
            ax.plot(group["k"], group["mean_ppl"], marker="o", color=f"C{i % 10}", label=f"budget {budget}")
        if auto_k and model in auto_k:
            ax.axvline(auto_k[model], color="0.5", ls=":", lw=1, label=f"K chosen by RLS ({auto_k[model]})")
        ax.set_xlabel("number of clusters K")
        ax.set_ylabel("mean perplexity")
        ax.set_xticks(sorted(set(sub["k"])))
        ax.set_title(f"{model}: LoRP K ablation", fontsize=10)
        ax.grid(color="0.9")
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def metric_vs_budget(table: Any, value: str, path: str | Path, ylabel: str, title: str, log: bool = False,
                     xlabel: str = "pruned blocks (budget)", seed_groups: Mapping[str, str] | None = None,
                     errors: str | None = None) -> None:
    """``value`` against budget, one panel per model, one line per method; dense as a dashed line. With
    ``seed_groups`` (view -> calibration entry, :func:`lorp.workflow.config.seed_groups`), the views of an
    entry's seeds are pooled: the line is their mean, the error bars one standard deviation. Otherwise
    ``errors`` names a column of the table whose values are drawn as error bars (none where empty); the
    lines are then set a little apart along the x axis, so that their bars do not hide one another."""
    plt = _plt()
    dodge = errors is not None and not seed_groups  # the seeds' spread is drawn at the budget itself
    if dodge:
        table = table.assign(_std=_numeric(table[errors]))
    if seed_groups:
        table = table.copy()
        table["calib"] = [seed_groups.get(c, c) for c in table["calib"]]
        keys = ["model", "calib", "method", "budget"]
        spread = table.groupby(keys, sort=False)[value].std().fillna(0.0).rename("_std")
        table = table.groupby(keys, sort=False, as_index=False)[value].mean().join(spread, on=keys)
    models = list(dict.fromkeys(table["model"]))
    outside = table["method"].nunique() > 6  # a long legend goes beside the panel, not over its lines
    fig, axes = plt.subplots(1, len(models), figsize=((6.6 if outside else 4.8) * len(models), 3.8), dpi=120,
                             squeeze=False)
    for ax, model in zip(axes[0], models):
        sub = table[table["model"] == model]
        dense = sub[sub["method"] == "dense"]
        methods = list(dict.fromkeys(sub.loc[sub["method"] != "dense", "method"]))
        budgets = sorted(set(sub.loc[sub["method"] != "dense", "budget"]))
        step = 0.012 * ((budgets[-1] - budgets[0]) or 1) if dodge and budgets else 0.0
        for i, method in enumerate(methods):
            rows = sub[sub["method"] == method].sort_values("budget")
            label = method if rows["calib"].nunique() <= 1 else None
            shift = (i - (len(methods) - 1) / 2) * step
            for calib, group in rows.groupby("calib", sort=False):
                ax.errorbar(group["budget"] + shift, group[value], yerr=group["_std"] if "_std" in group else None,
                            marker="o", color=_color(method, i), capsize=3,
                            ls=_linestyle(method),
                            label=label or f"{method} ({calib})")
        if len(dense):
            ax.axhline(float(dense[value].iloc[0]), color="black", ls="--", lw=1, label="dense")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xticks(sorted(set(sub.loc[sub["method"] != "dense", "budget"])))
        ax.set_title(f"{model}: {title}", fontsize=10)
        ax.grid(color="0.9")
        if outside:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        else:
            ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _numeric(values: Any) -> Any:
    """A column as floats, 0.0 where empty or not a number (an error bar of nothing)."""
    import pandas as pd

    return pd.to_numeric(values, errors="coerce").fillna(0.0)


def _linestyle(method: str) -> str:
    """A sparse method's line style by its metric, a recovered model's by its recovery (the registrations'
    ``linestyle``); solid otherwise."""
    from .recovery.registry import RECOVERIES
    from .sparse.metrics import METRICS

    recovery = split_recovered(method)[1]
    if recovery is not None:
        return RECOVERIES[recovery].linestyle
    metric = METRICS.get(method.partition("-")[0])
    return metric.linestyle if metric is not None else "-"


def _sparse_color(method: str, index: int) -> str:
    """A sparse method's colour by its allocation (the metric is told by the line style)."""
    from .sparse.allocation_plans import ALLOCATIONS

    allocation = ALLOCATIONS.get(method.partition("-")[2])
    return allocation.color if allocation is not None and allocation.color else f"C{index % 10}"
