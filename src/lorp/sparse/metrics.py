"""The registered pruning metrics (:mod:`lorp.sparse.registry`): one registration each. Imports no torch: a
score function gets tensors and uses their methods."""

from __future__ import annotations

from typing import Any

from .registry import METRICS, Metric, register_metric


def get_metric(name: str) -> Metric:
    """The registered metric ``name``, or an error listing the metrics there are."""
    return METRICS.lookup(name)


def _wanda(weight: Any, input_norm: Any) -> Any:
    if input_norm is None:
        raise ValueError("the wanda metric needs the input norms of the layer")
    norm = input_norm.detach().float().to(weight.device)
    if norm.shape != (weight.shape[1],):
        raise ValueError(f"input norms of shape {tuple(norm.shape)} do not match a weight of shape "
                         f"{tuple(weight.shape)}")
    return weight * norm.unsqueeze(0)


register_metric(Metric(
    name="wanda",
    score=_wanda,
    uses_norms=True,
    summary="Wanda: |W_ij| * ||X_j||_2, the weight's magnitude times its input feature's norm over the calibration",
))
register_metric(Metric(
    name="magnitude",
    score=lambda weight, input_norm: weight,
    linestyle="--",
    summary="|W_ij|, the weight's magnitude",
))
