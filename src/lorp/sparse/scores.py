"""Pruning metrics and the outlier ratio of a block.

* Wanda: ``S_ij = |W_ij| * ||X_j||_2``, the weight magnitude times the L2 norm of its input feature over
  the calibration tokens; magnitude: ``S_ij = |W_ij|``. Both are compared within each output row.
* The outlier ratio of a block (OWL, and MRP's redundancy measure): the share of its scores above
  ``m`` times the block's mean score; the non-outlier ratio is one minus that.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .metrics import get_metric


def scores(weight: torch.Tensor, metric: str, input_norm: torch.Tensor | None = None) -> torch.Tensor:
    """The pruning score of every weight of a linear layer (``weight`` is [out, in], as nn.Linear's) under a
    registered metric (:mod:`lorp.sparse.metrics`).

    ``input_norm`` ([in]) is the L2 norm of each input feature over the calibration tokens, needed by a
    metric that uses norms (Wanda).
    """
    return get_metric(metric).score(weight.detach().abs().float(), input_norm)


def outlier_ratio(block_scores: Sequence[torch.Tensor], m: float, count_zeros: bool = False) -> float:
    """Share of a block's scores above ``m`` times their mean, over all its linear layers together.

    With ``count_zeros`` false (the default), pruned weights (score 0) are left out of both the mean
    and the count, so the ratio describes the weights the block still has.
    """
    return outlier_share(torch.cat([s.reshape(-1) for s in block_scores]), m, count_zeros)


def outlier_share(kept: torch.Tensor, m: float, count_zeros: bool = False, n_total: int | None = None) -> float:
    """:func:`outlier_ratio` of a block given the scores it keeps, flat (pruned ones as zeros or left out),
    and with ``count_zeros`` its total weight count ``n_total`` (default: ``kept.numel()``). A block with
    no weight left has no outlier (0)."""
    if m <= 1:
        raise ValueError(f"the outlier threshold M must be greater than 1, got {m}")
    nonzero = kept[kept != 0].double()
    if count_zeros:
        n = n_total or kept.numel()
        return float((nonzero > m * nonzero.sum() / n).sum() / n)
    if nonzero.numel() == 0:
        return 0.0
    return float((nonzero > m * nonzero.mean()).double().mean())
