"""Which weights to keep: per output row at a given sparsity, or N:M within groups of M inputs."""

from __future__ import annotations

import torch


def pruned_per_row(n_inputs: int, sparsity: float) -> int:
    """How many of a row's ``n_inputs`` weights are pruned at ``sparsity``: ``int(sparsity * n_inputs)``,
    rounded down as the Wanda reference does (so a row keeps at most one weight more than the fraction)."""
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    return int(sparsity * n_inputs)


def row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask ([out, in], True = keep): in every row the ``int(sparsity * in)`` lowest scores are
    pruned (ties to the lower input index), so every row has the same sparsity within one weight."""
    k = pruned_per_row(scores.shape[1], sparsity)
    keep = torch.ones_like(scores, dtype=torch.bool)
    if k:
        order = torch.argsort(scores, dim=1, stable=True)
        keep.scatter_(1, order[:, :k], False)
    return keep


def nm_mask(scores: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Boolean N:M mask: in every group of ``m`` consecutive inputs of a row, the ``n`` highest scores
    are kept (2:4 is the pattern that sparse tensor cores accelerate)."""
    rows, cols = scores.shape
    if not 0 < n < m or cols % m:
        raise ValueError(f"an {n}:{m} mask needs 0 < n < m and inputs divisible by m, got {cols} inputs")
    groups = scores.reshape(rows, cols // m, m)
    order = torch.argsort(groups, dim=2, descending=True, stable=True)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, order[..., :n], True)
    return keep.reshape(rows, cols)
