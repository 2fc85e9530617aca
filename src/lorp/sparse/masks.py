"""Which weights to keep: per output row at a given sparsity, or N:M within groups of M inputs."""

from __future__ import annotations

import math

import torch

COUNT_TOLERANCE = 1e-6
"""How far (in weights) below a whole number ``sparsity * n_inputs`` may fall and still count as it: the
float error of a sparsity and of the product (``0.29 * 100`` is 28.999999999999996), never a real
fraction of a weight (a sparsity with at most 6 decimals times a whole number of inputs is a whole number
or at least 1e-6 away from one)."""


def pruned_per_row(n_inputs: int, sparsity: float) -> int:
    """How many of a row's ``n_inputs`` weights are pruned at ``sparsity``: ``sparsity * n_inputs`` rounded
    down as the Wanda reference does (so a row keeps at most one weight more than the fraction), after
    :data:`COUNT_TOLERANCE` for float error, so that a product that is a whole number in decimals never loses
    a weight (``int(0.29 * 100)`` is 28; this is 29)."""
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    return math.floor(sparsity * n_inputs + COUNT_TOLERANCE)


def row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask ([out, in], True = keep): in every row the :func:`pruned_per_row` lowest scores are
    pruned (ties to the lower input index), so every row has the same sparsity within one weight.

    The mask is that of a stable sort of each row, found without sorting: each row's k-th lowest score
    (``torch.kthvalue``, a selection) is its threshold; every score below it is pruned, and of the scores
    equal to it the lowest-index ones, as many as the row still needs (two to three times faster than
    ``argsort`` on the CPU for Llama-shaped layers)."""
    k = pruned_per_row(scores.shape[1], sparsity)
    if not k:
        return torch.ones_like(scores, dtype=torch.bool)
    threshold = scores.kthvalue(k, dim=1, keepdim=True).values
    below = scores < threshold
    tied = scores == threshold
    still = k - below.sum(dim=1, keepdim=True)  # how many of a row's tied scores are pruned (>= 1)
    return ~(below | (tied & (tied.cumsum(dim=1) <= still)))


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
