"""Unstructured pruning of a decoder block in place: the lowest-scoring weights of every row set to zero."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from .masks import nm_mask, row_mask
from .norms import block_linears
from .scores import scores


@torch.no_grad()
def prune_block(block: torch.nn.Module, sparsity: float | Mapping[str, float], metric: str,
                norms: Mapping[str, np.ndarray] | None = None, nm: tuple[int, int] | None = None) -> dict[str, float]:
    """Zero the weights of every linear layer of ``block``: per row at ``sparsity`` (one value, or one per
    layer name), or with an ``nm`` = (N, M) mask. Returns each layer's measured sparsity."""
    measured = {}
    for name, linear in block_linears(block).items():
        norm = torch.from_numpy(np.asarray(norms[name])) if norms is not None else None
        s = scores(linear.weight, metric, norm)
        target = sparsity if isinstance(sparsity, (int, float)) else sparsity[name]
        keep = nm_mask(s, *nm) if nm else row_mask(s, float(target))
        linear.weight.masked_fill_(~keep.to(linear.weight.device), 0)
        measured[name] = measured_sparsity(linear.weight)
    return measured


def measured_sparsity(weight: torch.Tensor) -> float:
    """The share of a weight's entries that are exactly zero."""
    return float((weight == 0).double().mean())
