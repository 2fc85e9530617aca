"""The outlier ratios of real blocks at any sparsity, cheaply, for OWL's and MRP's allocations.

A block's scores are sorted once per row; pruning at sparsity s removes the first ``int(s * in)``
entries of every row, so the ratio at any s is a slice, not a new sort. With input norms from the
dense model (``norms: dense``), pruning one block leaves every other block's scores as they were, so
MRP's loop only ever measures the block it has just raised.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from . import allocations
from .masks import pruned_per_row
from .norms import block_linears
from .scores import outlier_share, scores


class BlockScores:
    """The pruning scores of one block's linear layers, each row sorted once."""

    def __init__(self, block_scores: Mapping[str, torch.Tensor]):
        self.sorted = {name: torch.sort(s.float(), dim=1).values for name, s in block_scores.items()}
        self.n_params = sum(s.numel() for s in self.sorted.values())

    @classmethod
    def of_block(cls, block: torch.nn.Module, metric: str, norms: Mapping[str, np.ndarray] | None) -> "BlockScores":
        return cls({name: scores(lin.weight, metric, torch.from_numpy(np.asarray(norms[name])) if norms else None)
                    for name, lin in block_linears(block).items()})

    def outlier_ratio(self, sparsity: float, m: float, count_zeros: bool = False) -> float:
        """The block's outlier ratio once pruned per row at ``sparsity`` (as :func:`lorp.sparse.scores.outlier_ratio`
        on the pruned scores)."""
        kept = torch.cat([v[:, pruned_per_row(v.shape[1], sparsity):].reshape(-1) for v in self.sorted.values()])
        return outlier_share(kept, m, count_zeros, n_total=self.n_params)


def owl_sparsities(blocks: Sequence[BlockScores], target: float, m: float, lam: float) -> tuple[list[float], list[float]]:
    """OWL's per-block sparsities and the dense outlier ratios they come from."""
    ratios = [b.outlier_ratio(0.0, m) for b in blocks]
    return allocations.owl(ratios, target, lam), ratios


def mrp_sparsities(blocks: Sequence[BlockScores], target: float, m: float, s0: float, step: float,
                   upper: float = 0.95, count_zeros: bool = False) -> allocations.MRPResult:
    """MRP's loop on real blocks: the redundancy of a block is its non-outlier ratio at its current sparsity."""
    return allocations.mrp([b.n_params for b in blocks],
                           lambda b, s: 1.0 - blocks[b].outlier_ratio(s, m, count_zeros), target, s0, step, upper)
