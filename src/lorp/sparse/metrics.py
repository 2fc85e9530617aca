"""The registered pruning metrics (:mod:`lorp.sparse.registry`): one registration each. Imports no torch: a
score function gets tensors and uses their methods (SparseGPT's reconstruction imports its module when called)."""

from __future__ import annotations

from typing import Any, Mapping

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


def _sparsegpt_params(sparsity: Mapping[str, Any]) -> dict[str, Any]:
    """What SparseGPT's pruning reads of ``sparsity.sparsegpt`` (the schema fills in the defaults; ``scores``
    is the allocations', not the pruning's)."""
    return {k: v for k, v in sparsity["sparsegpt"].items() if k != "scores"}


def _sparsegpt_check(sparsity: Mapping[str, Any], nm: list[tuple[int, int]]) -> list[str]:
    blocksize = _sparsegpt_params(sparsity)["blocksize"]
    return [f"sparsity.sparsegpt.blocksize: {blocksize} is not a multiple of M={m}, so the {n}:{m} pattern of "
            f"sparsity.nm cannot be chosen group by group within its column blocks; set it to a multiple of {m} "
            f"(128 is) or drop sparsegpt from sparsity.metrics" for n, m in nm if blocksize % m]


def _sparsegpt_block(block: Any, sparsity: Mapping[str, float], hessians: Mapping[str, Any],
                     nm: tuple[int, int] | None, params: Mapping[str, Any]) -> None:
    from .norms import block_linears
    from .sparsegpt import prune_linears_sparsegpt

    prune_linears_sparsegpt(block_linears(block), sparsity, hessians, nm, params)


register_metric(Metric(
    name="sparsegpt",
    score=_wanda,  # |W| times per-input factors: Wanda's norms (OWL's choice for SparseGPT) or SparseGPT's own
    uses_norms=True,
    score_norms=lambda sparsity: "obs_norms" if sparsity["sparsegpt"]["scores"] == "obs" else "input_norms",
    reconstruct=_sparsegpt_block,
    params=_sparsegpt_params,
    check=_sparsegpt_check,
    linestyle=":",
    summary="SparseGPT: the mask by reconstruction error w^2 / [H^-1]_jj per column block and the kept weights "
            "updated (its allocations read Wanda's scores, or with sparsity.sparsegpt.scores: obs its own saliency)",
))
