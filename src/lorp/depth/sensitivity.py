"""How stable the structure and the plans are under the calibration data.

Two sources of evidence, both without a new forward pass:

- **variations** of the calibration (sample count, sequence length, corpus, seed, token subsampling,
  similarity statistic) run through capture, similarity, structure and plans like any calibration; their
  plans are compared with the reference's by Jaccard similarity (:func:`jaccard`);
- a **bootstrap over calibration sequences** (:func:`bootstrap`) resamples the per-sequence similarity sums
  the similarity stage stores (:attr:`lorp.depth.similarity.SimilarityResult.per_sequence`), recomputing
  RLS, K, the clustering and every plan from each resample: a confidence interval for RLS and each
  layer's selection frequency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import methods as registry
from .similarity import resample
from .structure import analyse_structure


@dataclass(frozen=True)
class BootstrapResult:
    """Resampled structure and plans of one calibration.

    Attributes:
        rls: [B] RLS of every resample.
        k: [B] the number of clusters of every resample.
        frequency: (method, budget) -> [N] the share of resamples that prune each block.
        jaccard: (method, budget) -> [B] Jaccard similarity of each resample's pruned set to the plan of
            the whole calibration (where one was given).
    """

    rls: np.ndarray
    k: np.ndarray
    frequency: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    jaccard: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The two-sided percentile interval of ``values`` at ``confidence`` (e.g. 0.9: the 5th and 95th)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    tail = 50.0 * (1.0 - confidence)
    lo, hi = np.percentile(np.asarray(values, dtype=np.float64), [tail, 100.0 - tail])
    return float(lo), float(hi)


def jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """|A ∩ B| / |A ∪ B| of two pruned sets (1 for two empty sets)."""
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def bootstrap(
    per_sequence: np.ndarray,
    per_sequence_last: np.ndarray,
    tokens_per_sequence: int,
    plans: Mapping[str, Mapping[str, Any]],
    budgets: Sequence[int],
    structure_params: Mapping[str, Any],
    resamples: int,
    seed: int = 0,
    reference: Mapping[tuple[str, int], Sequence[int]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> BootstrapResult:
    """Bootstrap over calibration sequences: structure and plans of ``resamples`` draws with replacement.

    Args:
        per_sequence: [S, N+1, N+1] per-sequence similarity sums over all captured tokens.
        per_sequence_last: [S, N+1, N+1] the same over each sequence's last token.
        tokens_per_sequence: the rows each of ``per_sequence``'s sums covers.
        plans: method -> its parameters, for every method whose plans are resampled.
        budgets: the budgets of every method.
        structure_params: ``k``, ``rls_thresholds`` and ``random_state`` of the clustering.
        resamples: the number of draws B (>= 1).
        seed: the draws' random seed.
        reference: (method, budget) -> the pruned set of the whole calibration, for :attr:`BootstrapResult.jaccard`.
        progress: called with 1 after every draw.

    Returns:
        A :class:`BootstrapResult`.
    """
    n_seq = per_sequence.shape[0]
    if n_seq < 2:
        raise ValueError(f"a bootstrap over sequences needs at least 2 sequences, got {n_seq}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    n_blocks = per_sequence.shape[1] - 1
    rng = np.random.default_rng(seed)
    rls, ks = np.zeros(resamples), np.zeros(resamples, dtype=np.int64)
    counts = {(m, int(b)): np.zeros(n_blocks) for m in plans for b in budgets}
    agreement = {key: np.zeros(resamples) for key in counts} if reference else {}
    for draw in range(resamples):
        weights = rng.multinomial(n_seq, np.full(n_seq, 1.0 / n_seq))
        extended = resample(per_sequence, tokens_per_sequence, weights)
        last = resample(per_sequence_last, 1, weights) if len(per_sequence_last) else None
        structure = analyse_structure(extended[:n_blocks, :n_blocks], k=structure_params["k"],
                                      thresholds=structure_params["rls_thresholds"],
                                      random_state=int(structure_params["random_state"]))
        rls[draw], ks[draw] = structure.rls, structure.k
        inputs = registry.PlanInputs(extended=extended, last_token=last, structure=structure)
        for (method, budget), count in counts.items():
            pruned = registry.make_plan(method, budget, inputs, plans[method]).pruned
            count[list(pruned)] += 1
            if reference:
                agreement[(method, budget)][draw] = jaccard(pruned, reference[(method, budget)])
        if progress is not None:
            progress(1)
    return BootstrapResult(rls, ks, {key: c / resamples for key, c in counts.items()}, agreement)


PlanKey = tuple[str, int]
"""A plan of one view: (method, budget)."""


def pruned_sets(plans: Sequence[Mapping[str, Any]]) -> dict[PlanKey, list[int]]:
    """(method, budget) -> the pruned blocks, of a view's plans (their JSON)."""
    return {(p["method"], int(p["budget"])): p["pruned"] for p in plans}


def view_label(model: str, view: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    """The identifying columns of a view's rows: ``model``, the variation and its calibration settings
    (``view``: an entry of :func:`lorp.workflow.config.sensitivity_params`' views) and the token count of its
    similarity (``summary``, the similarity stage's)."""
    return {"model": model, "variation": view["variation"], "calib": view["view"], "n_samples": view["n_samples"],
            "seqlen": view["seqlen"], "n_tokens": summary["n_tokens"], "source": view["source"],
            "seed": view["seed"], "tokens_per_sequence": view["tokens_per_sequence"] or "all",
            "statistic": view["statistic"]}


@dataclass(frozen=True)
class ViewRows:
    """The sensitivity rows of one view.

    Attributes:
        stability: one row per plan: its pruned blocks and their Jaccard similarity to the reference's.
        rls: RLS and K, the bootstrap's interval and K values where it ran, and per method the mean
            Jaccard similarity to the reference (and the bootstrap's, where it ran) over the budgets.
        selection: one row per plan and layer: how often the layer is pruned (``from`` the bootstrap's
            resamples, or 0/1 from the plan where it did not run).
    """

    stability: list[dict[str, Any]]
    rls: dict[str, Any]
    selection: list[dict[str, Any]]


def view_rows(label: Mapping[str, Any], rls: Mapping[str, Any], own: Mapping[PlanKey, Sequence[int]],
              reference: Mapping[PlanKey, Sequence[int]], per_sequence: Mapping[str, np.ndarray],
              methods: Mapping[str, Mapping[str, Any]], budgets: Sequence[int], structure_params: Mapping[str, Any],
              boot: Mapping[str, Any]) -> ViewRows:
    """The rows of one view of the calibration (:class:`ViewRows`).

    Args:
        label: the view's identifying columns (:func:`view_label`).
        rls: its structure (``rls.json``: ``rls``, ``k``, ``labels``).
        own: its plans (:func:`pruned_sets`), every method of ``methods`` at every budget.
        reference: the reference view's plans.
        per_sequence: its per-sequence similarity sums (the similarity stage's ``per_sequence.npz``:
            ``extended``, ``last_token``, ``tokens_per_sequence``); empty ``extended`` where none were kept.
        methods: method -> its parameters.
        budgets: the budgets of every method.
        structure_params: the clustering's ``k``, ``rls_thresholds`` and ``random_state``.
        boot: the bootstrap's ``resamples`` (0: none), ``seed`` and ``confidence``.
    """
    stability = [{**label, "rls": float(rls["rls"]), "k": int(rls["k"]), "method": method, "budget": budget,
                  "pruned": " ".join(map(str, pruned)),
                  "jaccard_to_reference": jaccard(pruned, reference[(method, budget)])}
                 for (method, budget), pruned in own.items()]
    result = None
    if boot["resamples"] and len(per_sequence["extended"]):
        result = bootstrap(per_sequence["extended"], per_sequence["last_token"],
                           int(per_sequence["tokens_per_sequence"]), methods, budgets, structure_params,
                           boot["resamples"], boot["seed"], reference=own)
    lo, hi = percentile_interval(result.rls, boot["confidence"]) if result else (np.nan, np.nan)
    row = {**label, "rls": float(rls["rls"]), "k": int(rls["k"]), "rls_low": lo, "rls_high": hi,
           "confidence": boot["confidence"] if result else np.nan, "resamples": boot["resamples"] if result else 0,
           "k_values": " ".join(f"{k}:{c}" for k, c in zip(*np.unique(result.k, return_counts=True)))
           if result else str(rls["k"])}
    for method in methods:
        row[f"jaccard_{method}"] = float(np.mean([jaccard(own[(method, b)], reference[(method, b)]) for b in budgets]))
        row[f"bootstrap_jaccard_{method}"] = (float(np.mean([result.jaccard[(method, b)].mean() for b in budgets]))
                                              if result else np.nan)
    n_blocks = len(rls["labels"])
    selection = []
    for (method, budget), pruned in own.items():
        freq = result.frequency[(method, budget)] if result else np.isin(np.arange(n_blocks), pruned).astype(float)
        selection += [{"model": label["model"], "variation": label["variation"], "calib": label["calib"],
                       "method": method, "budget": budget, "layer": layer, "frequency": float(freq[layer]),
                       "from": "bootstrap" if result else "plan"} for layer in range(n_blocks)]
    return ViewRows(stability, row, selection)
