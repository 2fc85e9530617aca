"""Layer-selection methods: LoRP and the depth-pruning baselines it is compared with.

Every method is a pure function of its stored inputs and returns a :class:`Plan`: the similarity
methods read similarity matrices computed once from stored activations (never a second forward
pass); SLEB (:mod:`lorp.depth.sleb`) runs the prepared model on the calibration tokens. Layer indices are 0-based decoder
blocks; ``h_i`` is the hidden state entering block i and ``h_N`` the output of the last block, so
the extended (N+1) x (N+1) matrix ``E`` gives ``E[i, i+1]`` = cos(input, output) of block i.

Ties are always broken towards the shallower layer (the lower index), so plans are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .registry import INPUT_FILES, METHODS, SIMILARITY_INPUTS, Method, PlanInputs, get_method, register
from .structure import LayerStructure, check_similarity_matrix

__all__ = [  # the registry (lorp.depth.registry) is re-exported: methods are looked up here
    "AUTO", "Plan", "angular_plan", "cluster_redundancy", "eligible_count", "last_plan", "lorp_plan", "make_plan",
    "shortgpt_plan", "streamline_plan", "INPUT_FILES", "METHODS", "SIMILARITY_INPUTS", "Method", "PlanInputs",
    "get_method", "register",
]


@dataclass
class Plan:
    """Which decoder blocks to remove, and why (the content of a plan JSON)."""

    method: str
    budget: int
    n_layers: int
    pruned: list[int]
    protected: list[int]
    scores: list[float | None]
    score_name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pruned = sorted(int(i) for i in self.pruned)
        if len(set(self.pruned)) != len(self.pruned):
            raise ValueError(f"duplicate layers in plan: {self.pruned}")
        if len(self.pruned) != self.budget:
            raise ValueError(f"plan prunes {len(self.pruned)} layers, budget is {self.budget}")
        if any(not 0 <= i < self.n_layers for i in self.pruned):
            raise ValueError(f"pruned layers {self.pruned} out of range for {self.n_layers} layers")
        if set(self.pruned) & set(self.protected):
            raise ValueError(f"plan prunes protected layers {sorted(set(self.pruned) & set(self.protected))}")

    @property
    def kept(self) -> list[int]:
        removed = set(self.pruned)
        return [i for i in range(self.n_layers) if i not in removed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "budget": self.budget,
            "n_layers": self.n_layers,
            "pruned": self.pruned,
            "kept": self.kept,
            "n_kept": len(self.kept),
            "protected": sorted(self.protected),
            "score_name": self.score_name,
            "scores": [None if s is None or not math.isfinite(s) else float(s) for s in self.scores],
            "parameters": self.parameters,
            **self.details,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Plan":
        known = {"method", "budget", "n_layers", "pruned", "kept", "n_kept", "protected", "score_name",
                 "scores", "parameters"}
        plan = cls(
            method=data["method"],
            budget=int(data["budget"]),
            n_layers=int(data["n_layers"]),
            pruned=list(data["pruned"]),
            protected=list(data["protected"]),
            scores=list(data["scores"]),
            score_name=data["score_name"],
            parameters=dict(data.get("parameters", {})),
            details={k: v for k, v in data.items() if k not in known},
        )
        if "kept" in data and list(data["kept"]) != plan.kept:
            raise ValueError("plan is inconsistent: 'kept' is not the complement of 'pruned'")
        return plan


def eligible_count(method: str, n_layers: int, params: Mapping[str, Any] | None = None) -> int:
    """How many blocks ``method`` may remove from an ``n_layers`` model (the largest valid budget)."""
    m = get_method(method)
    return m.max_budget(n_layers, {**m.defaults(), **(params or {})})


def _check_budget(method: str, budget: int, n_layers: int, params: Mapping[str, Any] | None = None) -> None:
    limit = eligible_count(method, n_layers, params)
    if not 1 <= budget <= limit:
        raise ValueError(
            f"budget {budget} is invalid for method {method!r} on a {n_layers}-layer model: "
            f"it must be between 1 and {limit} (the layers this method may remove)"
        )


def _check_extended(e: np.ndarray) -> tuple[np.ndarray, int]:
    e = np.asarray(e, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] != e.shape[1] or e.shape[0] < 2:
        raise ValueError(f"extended similarity must be (N+1) x (N+1), got {e.shape}")
    return e, e.shape[0] - 1


# --------------------------------------------------------------------------------------------- LoRP
def cluster_redundancy(s: np.ndarray, members: Sequence[int]) -> dict[int, float]:
    """Redundancy of each member: mean similarity to the other members of its cluster (NaN if alone)."""
    out: dict[int, float] = {}
    for layer in members:
        others = [m for m in members if m != layer]
        out[layer] = float(np.mean([s[layer, m] for m in others])) if others else math.nan
    return out


def _rank_in_cluster(redundancy: Mapping[int, float], members: Sequence[int]) -> list[int]:
    """Members by decreasing redundancy (undefined redundancy last), ties to the shallower layer."""
    def key(layer: int) -> tuple[float, int]:
        r = redundancy[layer]
        return (math.inf if math.isnan(r) else -r, layer)

    return sorted(members, key=key)


def _mean_pairwise(s: np.ndarray, members: Sequence[int]) -> float:
    if len(members) < 2:
        return -math.inf
    idx = np.asarray(members)
    sub = s[np.ix_(idx, idx)]
    iu = np.triu_indices(len(idx), k=1)
    return float(sub[iu].mean())


def lorp_plan(s: np.ndarray, structure: LayerStructure, budget: int) -> Plan:
    """Locality-Aware Redundancy Pruning.

    Blocks 0 and N-1 are protected. Stage 1 visits clusters in depth order and prunes the most
    redundant eligible layer of each while budget remains. Stage 2 then repeatedly picks, among
    clusters with an eligible layer left, the one whose not-yet-pruned members are most similar
    to each other (mean pairwise S; fewer than two such members counts as minus infinity; if all
    do, the first cluster with an eligible layer) and prunes its next most redundant eligible layer.
    """
    s = check_similarity_matrix(s)
    n = s.shape[0]
    if structure.n_layers != n:
        raise ValueError(f"structure covers {structure.n_layers} layers but S is {n} x {n}")
    _check_budget("lorp", budget, n)
    protected = {0, n - 1}
    redundancy: dict[int, float] = {}
    ranked: list[list[int]] = []
    for members in structure.members:
        r = cluster_redundancy(s, members)
        redundancy.update(r)
        ranked.append([m for m in _rank_in_cluster(r, members) if m not in protected])

    pruned: list[int] = []
    stages: dict[int, int] = {}
    cursor = [0] * len(ranked)  # next candidate in each cluster's ranking

    for c, order in enumerate(ranked):  # stage 1
        if len(pruned) == budget:
            break
        if order:
            pruned.append(order[0])
            stages[order[0]] = 1
            cursor[c] = 1

    while len(pruned) < budget:  # stage 2
        open_clusters = [c for c, order in enumerate(ranked) if cursor[c] < len(order)]
        if not open_clusters:  # unreachable with a validated budget
            raise ValueError("no eligible layer left")
        removed = set(pruned)
        cohesion = {c: _mean_pairwise(s, [m for m in structure.members[c] if m not in removed])
                    for c in open_clusters}
        best = max(open_clusters, key=lambda c: (cohesion[c], -c))
        if cohesion[best] == -math.inf:
            best = open_clusters[0]
        layer = ranked[best][cursor[best]]
        cursor[best] += 1
        pruned.append(layer)
        stages[layer] = 2

    return Plan(
        method="lorp",
        budget=budget,
        n_layers=n,
        pruned=pruned,
        protected=sorted(protected),
        scores=[redundancy[i] for i in range(n)],
        score_name="redundancy (mean similarity to the other members of its cluster)",
        parameters={"k": structure.k, "k_source": structure.k_source,
                    "rls_thresholds": structure.thresholds, "random_state": structure.random_state},
        details={
            "rls": structure.rls,
            "k": structure.k,
            "labels": structure.labels,
            "clusters": [list(m) for m in structure.members],
            "pick_order": pruned,
            "stage": {str(layer): stages[layer] for layer in sorted(stages)},
        },
    )


# ------------------------------------------------------------------------------------ baselines
def shortgpt_plan(extended: np.ndarray, budget: int, protect_first: bool = True) -> Plan:
    """ShortGPT: prune the ``budget`` blocks with the lowest Block Influence BI_i = 1 - cos(h_i, h_{i+1})."""
    e, n = _check_extended(extended)
    params = {"protect_first": protect_first}
    _check_budget("shortgpt", budget, n, params)
    bi = [1.0 - float(e[i, i + 1]) for i in range(n)]
    protected = [0] if protect_first else []
    candidates = sorted((i for i in range(n) if i not in protected), key=lambda i: (bi[i], i))
    return Plan("shortgpt", budget, n, candidates[:budget], protected, bi,
                "block influence BI = 1 - cos(input, output)", params)


def _best_window(scores: Sequence[float], better: Callable[[float, float], bool]) -> int:
    best = 0
    for s in range(1, len(scores)):
        if better(scores[s], scores[best]):
            best = s
    return best


def streamline_plan(extended: np.ndarray, budget: int) -> Plan:
    """Streamline: remove the contiguous blocks [s, s+n) maximising cos(h_s, h_{s+n}); the last block is kept."""
    e, n = _check_extended(extended)
    _check_budget("streamline", budget, n)
    starts = n - budget  # s in [0, n-1-budget]: s + budget <= n - 1 keeps the last block
    window = [float(e[s, s + budget]) for s in range(starts)]
    best = _best_window(window, lambda a, b: a > b)
    scores: list[float | None] = window + [None] * (n - starts)
    return Plan("streamline", budget, n, list(range(best, best + budget)), [n - 1], scores,
                f"cos(h_s, h_(s+{budget})) for a window starting at s", {},
                {"window_start": best})


def angular_plan(extended: np.ndarray, budget: int, last_token_only: bool = True) -> Plan:
    """Gromov et al.: remove [s, s+n) minimising the angular distance arccos(cos(h_s, h_{s+n})) / pi.

    ``extended`` should be the matrix over the last token of each sequence when ``last_token_only``
    is set (the paper's default); the flag is recorded in the plan.
    """
    e, n = _check_extended(extended)
    _check_budget("angular", budget, n)
    dist = [float(np.arccos(np.clip(e[s, s + budget], -1.0, 1.0)) / np.pi) for s in range(n - budget + 1)]
    best = _best_window(dist, lambda a, b: a < b)
    scores: list[float | None] = dist + [None] * (budget - 1)
    return Plan("angular", budget, n, list(range(best, best + budget)), [], scores,
                f"angular distance arccos(cos(h_s, h_(s+{budget})))/pi for a window starting at s",
                {"last_token_only": last_token_only}, {"window_start": best})


def last_plan(n_layers: int, budget: int) -> Plan:
    """Drop the ``budget`` deepest blocks before the final one."""
    _check_budget("last", budget, n_layers)
    pruned = list(range(n_layers - 1 - budget, n_layers - 1))
    return Plan("last", budget, n_layers, pruned, [n_layers - 1], [float(i) for i in range(n_layers)],
                "depth (deeper blocks are dropped first)")


# ------------------------------------------------------------------------------------- registrations
def make_plan(method: str, budget: int, inputs: PlanInputs, params: Mapping[str, Any] | None = None) -> Plan:
    """The plan of ``method`` at ``budget`` from its stored inputs and its parameters (defaults filled in)."""
    m = get_method(method)
    return m.plan(inputs, int(budget), {**m.defaults(), **(params or {})})


def _lorp(inputs: PlanInputs, budget: int, params: Mapping[str, Any]) -> Plan:
    e, n = _check_extended(inputs.require("extended", "lorp"))
    return lorp_plan(e[:n, :n], inputs.require("structure", "lorp"), budget)


def _angular(inputs: PlanInputs, budget: int, params: Mapping[str, Any]) -> Plan:
    last_only = bool(params["last_token_only"])
    matrix = inputs.require("last_token", "angular") if last_only else inputs.require("extended", "angular")
    return angular_plan(matrix, budget, last_token_only=last_only)


register(Method(
    name="lorp",
    plan=_lorp,
    max_budget=lambda n, params: max(0, n - 2),
    parameters={
        "k": {"type": ["integer", "null"], "minimum": 2, "default": None,
              "description": "fixed number of clusters; null chooses it from RLS"},
        "rls_thresholds": {"type": "array", "items": {"type": "number"}, "minItems": 1, "default": [1.0, 0.7],
                           "description": "strictly descending; K = 2 + the number of thresholds RLS falls below"},
        "random_state": {"type": "integer", "minimum": 0, "default": 0,
                         "description": "seed of the k-means label assignment of the spectral clustering"},
    },
    inputs=SIMILARITY_INPUTS + ("structure",),
    plan_parameters=False,
    color="#d62728",
    summary="Locality-Aware Redundancy Pruning: clusters of layers from RLS, the most redundant member of each",
))
register(Method(
    name="shortgpt",
    plan=lambda inputs, budget, params: shortgpt_plan(inputs.require("extended", "shortgpt"), budget,
                                                      bool(params["protect_first"])),
    max_budget=lambda n, params: n - (1 if params["protect_first"] else 0),
    parameters={"protect_first": {"type": "boolean", "default": True, "description": "never prune block 0"}},
    color="#1f77b4",
    summary="ShortGPT: the blocks of lowest Block Influence 1 - cos(input, output)",
))
register(Method(
    name="streamline",
    plan=lambda inputs, budget, params: streamline_plan(inputs.require("extended", "streamline"), budget),
    max_budget=lambda n, params: n - 1,
    color="#2ca02c",
    summary="Streamline: the contiguous blocks whose input and output are most similar",
))
register(Method(
    name="angular",
    plan=_angular,
    max_budget=lambda n, params: n,
    parameters={"last_token_only": {"type": "boolean", "default": True,
                                    "description": "angular distance over the last token of each sequence"}},
    color="#9467bd",
    summary="Gromov et al.: the contiguous blocks of least angular distance between input and output",
))
register(Method(
    name="last",
    plan=lambda inputs, budget, params: last_plan(_check_extended(inputs.require("extended", "last"))[1], budget),
    max_budget=lambda n, params: n - 1,
    color="#7f7f7f",
    summary="the deepest blocks before the final one",
))



def _sleb(inputs: PlanInputs, budget: int, params: Mapping[str, Any]) -> Plan:
    from .sleb import block_count, search  # torch: imported only where a SLEB plan is made

    model, tokens = inputs.require("model", "sleb"), inputs.require("tokens", "sleb")
    n = block_count(model)
    _check_budget("sleb", budget, n)
    found = search(model, tokens, budget, params["n_windows"], int(inputs.batch_size), previous=inputs.previous)
    return Plan("sleb", budget, n, found.removal_order, [0, n - 1], found.first_step_scores(n),
                "mean calibration NLL per token with this block alone removed (SLEB's first step)",
                {"n_windows": params["n_windows"]}, found.details())


register(Method(
    name="sleb",
    plan=_sleb,
    max_budget=lambda n, params: max(0, n - 2),
    parameters={"n_windows": {"type": ["integer", "null"], "minimum": 1, "default": 8,
                              "description": "the first calibration windows the NLL is measured on (null: all)"}},
    inputs=("model", "tokens", "previous"),
    color="#8c564b",
    summary="SLEB: one block at a time, the block whose removal raises the calibration NLL least "
            "(first and last blocks kept; runs the model)",
))


AUTO = "auto"
"""The validation-guided method: its plans are chosen by held-out perplexity (:mod:`lorp.depth.auto`)."""


def _chosen_by_held_out_perplexity(inputs: PlanInputs, budget: int, params: Mapping[str, Any]) -> Plan:
    raise ValueError("auto plans are not made from the similarity alone: the auto_plan stage scores the other "
                     "methods' plans by held-out perplexity (lorp.workflow.stages.depth.choose_auto_plan)")


register(Method(
    name=AUTO,
    plan=_chosen_by_held_out_perplexity,
    max_budget=lambda n, params: n - 1,
    parameters={"held_out_samples": {"type": "integer", "minimum": 1, "default": 4,
                                     "description": "held-out calibration windows (those that follow the "
                                                    "calibration's own in the same draw) the candidates are "
                                                    "scored on"}},
    inputs=(),
    color="#e377c2",
    summary="validation-guided: of every other method's plan under every compared statistic, the one of lowest "
            "perplexity on held-out calibration windows",
))
