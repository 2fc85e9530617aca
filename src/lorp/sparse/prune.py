"""Unstructured pruning in place: the lowest-scoring weights of every row set to zero, block by block
or for a whole model to a sparsity plan, and what a pruned model measures against its plan."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..models import get_decoder_layers
from .masks import nm_mask, pruned_per_row, row_mask
from .norms import block_linears, prune_sequentially
from .metrics import get_metric
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


def prune_to_plan(model: torch.nn.Module, plan: Any, norms: Sequence[Mapping[str, np.ndarray]] | None = None,
                  tokens: np.ndarray | None = None, batch_size: int = 8,
                  progress: Callable[[int], None] | None = None,
                  params: Mapping[str, Any] | None = None) -> list[dict[str, np.ndarray] | None]:
    """Prune every decoder block of ``model`` in place to a :class:`lorp.sparse.plan.SparsePlan`.

    Wanda needs input norms: the dense model's (``norms``, ``norms: dense``) or, given calibration
    ``tokens`` instead, Wanda's sequential protocol (each block's norms measured on the blocks before it
    as already pruned). Magnitude needs neither. A metric that reconstructs (SparseGPT) needs the
    ``tokens`` (its Hessians are measured by the same sequential protocol) and its settings ``params``.
    Returns the norms each block was pruned with (None for a block pruned without norms).
    """
    blocks = get_decoder_layers(model)
    if len(blocks) != len(plan.blocks):
        raise ValueError(f"the plan is for {len(plan.blocks)} blocks, the model has {len(blocks)}")
    nm = tuple(plan.settings["nm"]) if "nm" in plan.settings else None  # N:M instead of per-row sparsity
    metric = get_metric(plan.metric)
    if metric.reconstruct is not None:
        if tokens is None or params is None:
            raise ValueError(f"{plan.metric} prunes from the calibration tokens' Hessians with its settings: "
                             "give tokens and params")
        from .sparsegpt import DTYPES

        return prune_sequentially(model, tokens, lambda b, h: metric.reconstruct(blocks[b], plan.linears[b], h, nm, params),
                                  batch_size=batch_size, progress=progress, hessians=DTYPES[params["hessian_dtype"]])
    if not metric.uses_norms or norms is not None:
        for b, block in enumerate(blocks):
            prune_block(block, plan.linears[b], plan.metric, norms[b] if norms is not None else None, nm=nm)
            if progress is not None:
                progress(1)
        return list(norms) if norms is not None else [None] * len(blocks)
    if tokens is None:
        raise ValueError("wanda needs the dense input norms or the calibration tokens (sequential norms)")
    return prune_sequentially(model, tokens, lambda b, n: prune_block(blocks[b], plan.linears[b], plan.metric, n, nm=nm),
                              batch_size=batch_size, progress=progress)


def zeros_fingerprint(weight: torch.Tensor) -> str:
    """SHA-1 of where a weight is exactly zero (its zero mask, bit-packed in row-major order): two layers
    with the same fingerprint have their zeros at the same positions."""
    import hashlib

    return hashlib.sha1(np.packbits((weight == 0).cpu().numpy()).tobytes()).hexdigest()


def measure_pruned(model: torch.nn.Module, plan: Any) -> dict[str, Any]:
    """What a pruned model holds against its plan: each linear layer's measured sparsity, the fingerprint
    of its zeros' positions (:func:`zeros_fingerprint`) and the largest shortfall of any of its rows against
    the planned zeros (:func:`lorp.sparse.masks.pruned_per_row`; 0 when every row has its zeros; more zeros
    than planned are weights the source model had at zero already), per block and for the model
    (parameter-weighted)."""
    out = []
    for b, block in enumerate(get_decoder_layers(model)):
        layers, zeros_total, n = {}, 0, 0
        for name, linear in block_linears(block).items():
            planned = float(plan.linears[b][name])
            zeros = (linear.weight == 0).sum(dim=1)
            shortfall = int((pruned_per_row(linear.in_features, planned) - zeros).max())
            layers[name] = {"planned": planned, "measured": measured_sparsity(linear.weight),
                            "row_shortfall": max(shortfall, 0), "in_features": linear.in_features,
                            "zeros_sha1": zeros_fingerprint(linear.weight)}
            zeros_total += int(zeros.sum())
            n += linear.weight.numel()
        out.append({"block": b, "planned": float(plan.blocks[b]), "measured": zeros_total / n, "n_params": n,
                    "linears": layers})
    total = sum(x["n_params"] for x in out)
    return {"method": plan.method, "budget": plan.percent, "blocks": out,
            "model_sparsity": sum(x["measured"] * x["n_params"] for x in out) / total,
            "planned_sparsity": plan.model_sparsity}
