"""Representation Locality Score (RLS) and spectral clustering of layers.

RLS summarises how quickly representations drift with depth: with ``s`` the mean of the
cosine matrix above its diagonal, ``RLS = -log2(s)``. A model whose layers all look alike
(s near 1) has RLS near 0; strongly local models have large RLS. The number of clusters K
follows from RLS through descending thresholds (paper defaults 1.0 and 0.7): K = 2 when
RLS >= 1.0, K = 3 when 0.7 <= RLS < 1.0, K = 4 otherwise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

DEFAULT_RLS_THRESHOLDS: tuple[float, ...] = (1.0, 0.7)


def check_similarity_matrix(s: np.ndarray) -> np.ndarray:
    """Return ``s`` as float64 after checking it is a square, symmetric matrix with values in [-1, 1]."""
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity matrix must be square, got shape {s.shape}")
    if s.shape[0] < 2:
        raise ValueError("similarity matrix must cover at least 2 layers")
    if not np.all(np.isfinite(s)):
        raise ValueError("similarity matrix contains NaN or infinite values")
    if not np.allclose(s, s.T, atol=1e-6):
        raise ValueError("similarity matrix is not symmetric")
    if s.min() < -1 - 1e-6 or s.max() > 1 + 1e-6:
        raise ValueError("similarity values must lie in [-1, 1]")
    return s


def off_diagonal_mean(s: np.ndarray) -> float:
    """Mean of the entries strictly above the diagonal."""
    s = np.asarray(s, dtype=np.float64)
    iu = np.triu_indices(s.shape[0], k=1)
    return float(s[iu].mean())


def representation_locality_score(s: np.ndarray) -> float:
    """RLS = -log2(mean of S above the diagonal).

    Raises:
        ValueError: if the mean similarity is not positive (RLS undefined).
    """
    mean = off_diagonal_mean(s)
    if mean <= 0:
        raise ValueError(
            f"mean off-diagonal similarity is {mean:.4f} <= 0, so RLS = -log2(s) is undefined; "
            "check the activations (all-zero or sign-flipped hidden states?) or fix K in the config"
        )
    return -math.log2(mean)


def k_from_rls(rls: float, thresholds: Sequence[float] = DEFAULT_RLS_THRESHOLDS) -> int:
    """Number of clusters for a given RLS: 2 plus the number of thresholds that RLS falls below.

    ``thresholds`` must be strictly descending; with the defaults (1.0, 0.7) this gives 2 for
    RLS >= 1.0, 3 for 0.7 <= RLS < 1.0 and 4 below 0.7.
    """
    thresholds = list(thresholds)
    if any(b >= a for a, b in zip(thresholds, thresholds[1:])):
        raise ValueError(f"RLS thresholds must be strictly descending, got {thresholds}")
    return 2 + sum(1 for t in thresholds if rls < t)


def renumber_by_depth(labels: Sequence[int]) -> np.ndarray:
    """Relabel clusters 0, 1, ... in the order of the depth of their first layer."""
    labels = np.asarray(labels)
    mapping: dict[int, int] = {}
    for lab in labels.tolist():
        if lab not in mapping:
            mapping[lab] = len(mapping)
    return np.array([mapping[lab] for lab in labels.tolist()], dtype=np.int64)


def spectral_cluster_layers(s: np.ndarray, k: int, random_state: int = 0) -> np.ndarray:
    """Spectral clustering of layers on the affinity A = (S + 1) / 2.

    Uses scikit-learn's ``SpectralClustering`` with a precomputed affinity and k-means label
    assignment; labels are renumbered by the depth of each cluster's first layer.
    """
    from sklearn.cluster import SpectralClustering

    s = check_similarity_matrix(s)
    n = s.shape[0]
    if not 2 <= k <= n:
        raise ValueError(f"number of clusters K must be in [2, {n}] for {n} layers, got {k}")
    affinity = (s + 1.0) / 2.0
    model = SpectralClustering(
        n_clusters=k, affinity="precomputed", assign_labels="kmeans", random_state=random_state
    )
    with warnings.catch_warnings():
        # sklearn warns when the graph is not fully connected; affinities here are all > 0.
        warnings.simplefilter("ignore", UserWarning)
        labels = model.fit_predict(affinity)
    return renumber_by_depth(labels)


@dataclass(frozen=True)
class LayerStructure:
    """RLS, the chosen K and the clustering of N layers (the content of ``rls.json``)."""

    n_layers: int
    mean_similarity: float
    rls: float
    k: int
    k_source: str
    labels: list[int]
    thresholds: list[float]
    random_state: int
    members: list[list[int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "n_layers": self.n_layers,
            "mean_similarity": self.mean_similarity,
            "rls": self.rls,
            "k": self.k,
            "k_source": self.k_source,
            "rls_thresholds": self.thresholds,
            "random_state": self.random_state,
            "labels": self.labels,
            "clusters": [
                {"cluster": c, "members": m, "first": m[0], "last": m[-1], "size": len(m)}
                for c, m in enumerate(self.members)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "LayerStructure":
        return cls(
            n_layers=int(data["n_layers"]),
            mean_similarity=float(data["mean_similarity"]),
            rls=float(data["rls"]),
            k=int(data["k"]),
            k_source=str(data["k_source"]),
            labels=[int(x) for x in data["labels"]],
            thresholds=[float(x) for x in data["rls_thresholds"]],
            random_state=int(data["random_state"]),
            members=[list(map(int, c["members"])) for c in data["clusters"]],
        )


def analyse_structure(
    s: np.ndarray,
    k: int | None = None,
    thresholds: Sequence[float] = DEFAULT_RLS_THRESHOLDS,
    random_state: int = 0,
) -> LayerStructure:
    """Compute RLS, choose K (fixed ``k`` or from RLS) and cluster the layers.

    Args:
        s: N x N cosine similarity matrix.
        k: fixed number of clusters; ``None`` chooses it from RLS via ``thresholds``.
        thresholds: strictly descending RLS thresholds (see :func:`k_from_rls`).
        random_state: seed of the k-means label assignment.
    """
    s = check_similarity_matrix(s)
    n = s.shape[0]
    mean = off_diagonal_mean(s)
    rls = representation_locality_score(s)
    if k is None:
        chosen, source = min(k_from_rls(rls, thresholds), n), "rls"
    else:
        chosen, source = int(k), "config"
    labels = spectral_cluster_layers(s, chosen, random_state)
    members = [sorted(np.flatnonzero(labels == c).tolist()) for c in range(int(labels.max()) + 1)]
    return LayerStructure(
        n_layers=n,
        mean_similarity=mean,
        rls=rls,
        k=chosen,
        k_source=source,
        labels=labels.tolist(),
        thresholds=[float(t) for t in thresholds],
        random_state=random_state,
        members=members,
    )
