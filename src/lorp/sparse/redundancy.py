"""The outlier ratios of real blocks at any sparsity, cheaply, for OWL's and MRP's allocations.

A unit's scores (a block's linear layers, or one linear layer) are sorted once per row, with running
sums. Pruning at sparsity s removes the first ``int(s * in)`` entries of every row, so the mean of
what is kept is a difference of sums and the number of scores above ``M`` times that mean is one
``searchsorted`` per row: the ratio at any s costs no new sort and no pass over the scores. With input
norms from the dense model, pruning one unit leaves every other unit's scores as they were, so each
unit's ratios can be measured once, ahead of MRP's loop (:func:`lorp.sparse.plan.measure_units`).
"""

from __future__ import annotations

import collections.abc
from typing import Mapping, Sequence

import numpy as np
import torch

from .masks import pruned_per_row
from .norms import block_linears
from .scores import scores


class _SortedRows:
    """One layer's scores, each row sorted ascending, with per-row running sums and zero counts."""

    def __init__(self, s: torch.Tensor):
        self.sorted = torch.sort(s.detach().float(), dim=1).values
        self.rows, self.cols = self.sorted.shape
        cums = torch.cumsum(self.sorted.double(), dim=1)
        self.prefix = torch.cat([torch.zeros(self.rows, 1, dtype=torch.float64), cums], dim=1)  # [rows, cols + 1]
        self.zeros = (self.sorted == 0).sum(dim=1)  # scores are >= 0: the zeros come first

    def kept(self, sparsity: float) -> tuple[torch.Tensor, float, int]:
        """Where each row's kept nonzero scores start, their sum and their count at ``sparsity``."""
        start = torch.clamp(self.zeros, min=pruned_per_row(self.cols, sparsity))
        total = float((self.prefix[:, -1] - self.prefix.gather(1, start.unsqueeze(1)).squeeze(1)).sum())
        return start, total, int((self.cols - start).sum())

    def above(self, threshold: float, start: torch.Tensor) -> int:
        """How many kept scores exceed ``threshold``."""
        t = torch.full((self.rows, 1), threshold, dtype=self.sorted.dtype)
        first_above = torch.searchsorted(self.sorted, t, right=True).squeeze(1)
        return int((self.cols - torch.maximum(first_above, start)).sum())


class BlockScores:
    """The pruning scores of a unit's linear layers (a decoder block, or one layer), each row sorted once."""

    def __init__(self, unit_scores: Mapping[str, torch.Tensor]):
        self.layers = {name: _SortedRows(s) for name, s in unit_scores.items()}
        self.n_params = sum(r.rows * r.cols for r in self.layers.values())

    @classmethod
    def of_block(cls, block: torch.nn.Module, metric: str, norms: Mapping[str, np.ndarray] | None) -> "BlockScores":
        return cls({name: scores(lin.weight, metric, torch.from_numpy(np.asarray(norms[name])) if norms else None)
                    for name, lin in block_linears(block).items()})

    def split(self) -> dict[str, "BlockScores"]:
        """One unit per linear layer (MRP at ``granularity: linear``), sharing the sorted scores."""
        out = {}
        for name, rows in self.layers.items():
            unit = BlockScores({})
            unit.layers, unit.n_params = {name: rows}, rows.rows * rows.cols
            out[name] = unit
        return out

    def outlier_ratio(self, sparsity: float | Mapping[str, float], m: float, count_zeros: bool = False) -> float:
        """The unit's outlier ratio once pruned per row at ``sparsity`` (one value, or one per layer name): the share of its kept nonzero scores
        above ``m`` times their mean, or with ``count_zeros`` of all its weights above ``m`` times the mean
        over all of them (pruned ones as zeros), as :func:`lorp.sparse.scores.outlier_ratio` on the pruned scores."""
        if m <= 1:
            raise ValueError(f"the outlier threshold M must be greater than 1, got {m}")
        kept = {name: rows.kept(sparsity if isinstance(sparsity, (int, float)) else sparsity[name])
                for name, rows in self.layers.items()}
        total = sum(k[1] for k in kept.values())
        count = sum(k[2] for k in kept.values())
        if count == 0:
            return 0.0
        n = self.n_params if count_zeros else count
        threshold = m * total / n
        return sum(rows.above(threshold, kept[name][0]) for name, rows in self.layers.items()) / n


class ModelScores(collections.abc.Sequence):
    """The blocks' scores of a model as a sequence whose items are scored and sorted when accessed, so a
    pass over the blocks holds one block's sorted scores at a time (an 8B model's would take tens of GB)."""

    def __init__(self, blocks: Sequence[torch.nn.Module], metric: str,
                 norms: Sequence[Mapping[str, np.ndarray]] | None = None):
        self.blocks, self.metric, self.norms = blocks, metric, norms

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, b):  # type: ignore[override]
        if isinstance(b, slice):
            return [self[i] for i in range(*b.indices(len(self)))]
        return BlockScores.of_block(self.blocks[b], self.metric, self.norms[b] if self.norms is not None else None)
