"""The model an evaluation measures, built in memory from the prepared base model and a plan: no
checkpoint is written or read.

* A depth plan (``lorp.depth.methods.Plan``): the plan's blocks removed, as :func:`lorp.depth.prune.prune_layers`
  does before a checkpoint is saved.
* A sparse plan (``lorp.sparse.plan.SparsePlan``): every linear layer pruned with the input norms each block
  was pruned with when the sparse stage ran (recorded by it: the dense norms, or Wanda's sequential ones,
  or none for magnitude); for a metric that updates the weights it keeps (SparseGPT), the weights the
  sparse stage stored (:mod:`lorp.sparse.stored`). Scores are computed in float32 from the weights and those norms and the masks are
  stable sorts, so the zeros are the sparse stage's exactly; the rebuilt model is checked against the
  stage's measurement before anything is evaluated.
* A recovered model: a depth plan's model, then the recover stage's output applied to it
  (:func:`lorp.recovery.recover_model`: patches attached, or LoRA's adapter merged).

With ``keep_dense``, the pruned model is a copy sharing every tensor it does not change with the dense model,
so both can be measured side by side in one process (:func:`lorp.models.shared_copy`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..io import read_json
from ..models import get_decoder_layers, shared_copy


class RebuildMismatchError(RuntimeError):
    """A sparse model rebuilt in memory does not hold the zeros its sparse stage measured."""


def is_sparse_plan(plan: Mapping[str, Any]) -> bool:
    """Whether a plan's JSON is a sparse plan (per-block sparsities) rather than a depth plan (pruned blocks)."""
    return plan.get("family") == "sparse"


def read_plan_sources(sources: Mapping[str, Any]) -> tuple[dict, Any, Any, Any]:
    """What :func:`build_pruned` rebuilds a model from: the plan's JSON (``sources['plan']``) and, for a
    sparse plan, the norms its blocks were pruned with (``sources['pruning']``), the measurement the
    rebuild must reproduce (``sources['measured']``) and the file of its pruned weights
    (``sources['weights']``, read by :func:`build_pruned` for a metric that updates them); None for the
    three for a depth plan."""
    from ..sparse.norms import read_pruning_norms

    plan = read_json(sources["plan"])
    if plan.get("family") != "sparse":
        return plan, None, None, None
    return plan, read_pruning_norms(sources["pruning"]), read_json(sources["measured"]), sources.get("weights")


def build_pruned(model: torch.nn.Module, plan: Mapping[str, Any],
                 norms: Sequence[Mapping[str, np.ndarray] | None] | None = None,
                 measured: Mapping[str, Any] | None = None, weights: Any = None,
                 keep_dense: bool = False, recovery: Any = None) -> torch.nn.Module:
    """``model`` pruned to ``plan`` (a plan's JSON, depth or sparse), in place unless ``keep_dense``.

    For a sparse plan, ``norms`` are the norms every block was pruned with (None entries, or no
    ``norms``, for magnitude), ``weights`` the file of the pruned weights of a metric that updates them
    (SparseGPT, :mod:`lorp.sparse.stored`: they are loaded instead of pruning again) and ``measured`` the
    sparse stage's measurement, which the rebuilt model must reproduce exactly
    (:class:`RebuildMismatchError` otherwise).

    For a depth plan, ``recovery`` (the recover stage's output directory) makes it the recovered model
    (:func:`lorp.recovery.recover_model`); with ``keep_dense``, one whose recovery updates weights (LoRA
    merged) owns its blocks' parameters, so the dense model is left intact.
    """
    if not is_sparse_plan(plan):
        from ..depth.prune import prune_layers

        layers = get_decoder_layers(model)
        if int(plan["n_layers"]) != len(layers):
            raise ValueError(f"the plan is for a {plan['n_layers']}-block model, the model has {len(layers)} blocks")
        if recovery is None:
            return prune_layers(shared_copy(model) if keep_dense else model, plan["pruned"])
        from pathlib import Path

        from ..recovery import recovery_of

        rec = recovery_of(recovery)  # its recovery.json read once
        removed = {int(b) for b in plan["pruned"]}
        own = ([p for i, block in enumerate(layers) if i not in removed for p in block.parameters()]
               if rec.fused else [])
        target = prune_layers(shared_copy(model, own) if keep_dense else model, plan["pruned"])
        return rec.rebuild(target, plan, Path(recovery))
    if recovery is not None:
        raise ValueError("a recovery follows a depth plan; this plan is sparse")
    from ..sparse.norms import block_linears
    from ..sparse.plan import SparsePlan
    from ..sparse.prune import measure_pruned, prune_to_plan
    from ..sparse.metrics import get_metric

    sparse = SparsePlan.from_dict(dict(plan))
    own = [lin.weight for block in get_decoder_layers(model) for lin in block_linears(block).values()]
    target = shared_copy(model, own) if keep_dense else model
    metric = get_metric(sparse.metric)
    if metric.updates_weights:
        from ..sparse.stored import holds_weights, load_pruned_weights

        if weights is None or not holds_weights(weights):
            raise ValueError(f"a {sparse.metric} model is rebuilt from its stored pruned weights; none were given "
                             "(the sparse stage's .safetensors output)")
        load_pruned_weights(target, weights)
    elif metric.uses_norms and (norms is None or any(n is None for n in norms)):
        raise ValueError(f"a {sparse.metric} plan is rebuilt from the norms its blocks were pruned with; none were given")
    else:
        prune_to_plan(target, sparse, norms=list(norms) if metric.uses_norms else None)
    if measured is not None:
        check_rebuilt(measure_pruned(target, sparse), measured)
    return target


def check_rebuilt(rebuilt: Mapping[str, Any], measured: Mapping[str, Any]) -> None:
    """Every layer of the rebuilt model has its zeros where the sparse stage measured them (the fingerprint
    of their positions, :func:`lorp.sparse.prune.zeros_fingerprint`)."""
    if len(rebuilt["blocks"]) != len(measured["blocks"]):
        raise RebuildMismatchError(f"the rebuilt model has {len(rebuilt['blocks'])} blocks, the measurement "
                                   f"{len(measured['blocks'])}")
    for new, old in zip(rebuilt["blocks"], measured["blocks"]):
        for name, layer in old["linears"].items():
            now = new["linears"][name]
            if (now["zeros_sha1"], now["measured"]) != (layer.get("zeros_sha1"), layer["measured"]):
                raise RebuildMismatchError(
                    f"block {old['block']} {name}: the zeros rebuilt in memory (sparsity {now['measured']:.6f}) are "
                    f"not where the sparse stage measured them (sparsity {layer['measured']:.6f}); the prepared model "
                    "or the recorded norms changed since: rerun the sparse stage (snakemake --forcerun sparse_prune)")
