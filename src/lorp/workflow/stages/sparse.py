"""Stages of the sparse family (``rules/sparsity.smk``): the dense model's input norms and outlier
ratios, the layer-wise sparsity plans (uniform, N:M, OWL, MRP), the pruning and its measurement, the
redundancy left after it and MRP's sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from ...sparse import figures as sparse_figures
from ...io import atomic_path, read_json, write_json, write_npy


def capture_norms(model_dir: str | Path, tokens_path: str | Path, out_dir: str | Path, compute: Mapping[str, Any],
                  batch_size: int, obs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Sparse stage 1: the input norms ``||X_j||_2`` of every linear layer of every block over the
    calibration tokens, from one forward pass of the dense model; one ``.npy`` per layer and a manifest.
    With ``obs`` (``damping``, ``hessian_dtype``), SparseGPT's own saliency factors instead, in the same
    layout (:func:`lorp.sparse.norms.obs_scales`, block by block)."""
    from ... import models
    from ...sparse.norms import dense_input_norms, norm_file, obs_scales
    from ...sparse.sparsegpt import DTYPES

    model, _, _ = models.load_for(model_dir, compute)
    tokens = np.load(tokens_path)
    if obs is None:
        with tqdm(total=len(tokens), desc="input norms", unit="seq") as bar:
            norms = dense_input_norms(model, tokens, batch_size=int(batch_size), progress=bar.update)
    else:
        with tqdm(total=len(models.get_decoder_layers(model)), desc="OBS saliency", unit="block") as bar:
            norms = obs_scales(model, tokens, float(obs["damping"]), DTYPES[obs["hessian_dtype"]],
                               batch_size=int(batch_size), progress=bar.update)
    manifest = {"n_blocks": len(norms), "layers": {name: len(v) for name, v in norms[0].items()},
                "n_tokens": int(tokens.size), "dtype": "float64", "file_pattern": norm_file(0, "<layer>"),
                "kind": "obs" if obs else "input_norms", **({"obs": dict(obs)} if obs else {})}
    with atomic_path(out_dir, directory=True) as tmp:
        for b, block in enumerate(norms):
            for name, values in block.items():
                write_npy(tmp / norm_file(b, name), values)
        write_json(tmp / "manifest.json", manifest)
    return manifest


def _raw_scores(model_dir: str | Path, metric: str, norms_dir: str | Path | None) -> Iterator[dict[str, Any]]:
    """Every block's scores of the dense model, one block at a time (weights as stored; norms for Wanda)."""
    import torch

    from ... import models
    from ...sparse.norms import block_linears, read_norms
    from ...sparse.scores import scores

    model, _, _ = models.load(model_dir, "cpu", "stored")
    norms = read_norms(norms_dir) if norms_dir else None
    for b, block in enumerate(models.get_decoder_layers(model)):
        yield {name: scores(lin.weight, metric, torch.from_numpy(norms[b][name]) if norms else None)
               for name, lin in block_linears(block).items()}


def _block_scores(model_dir: str | Path, metric: str, norms_dir: str | Path | None) -> Any:
    """The blocks' scores of the dense model as a sequence that scores and sorts a block when it is
    accessed (one block's sorted scores in memory at a time)."""
    from ... import models
    from ...sparse.norms import read_norms
    from ...sparse.redundancy import ModelScores

    model, _, _ = models.load(model_dir, "cpu", "stored")
    return ModelScores(models.get_decoder_layers(model), metric, read_norms(norms_dir) if norms_dir else None)


def measure_outliers(model_dir: str | Path, norms_dir: str | Path | None, metric: str, params: Mapping[str, Any],
                     out_path: str | Path) -> dict[str, Any]:
    """Sparse stage 2: every block's outlier and non-outlier ratio on the dense model for one metric
    (``params``: ``outlier_m``, ``count_zeros``), with its parameter count, as ``outliers.json``."""
    from ...sparse.plan import dense_outliers

    blocks = dense_outliers(_raw_scores(model_dir, metric, norms_dir), params["outlier_m"], params["count_zeros"])
    result = {"metric": metric, **params, "n_params": sum(b["n_params"] for b in blocks), "blocks": blocks}
    write_json(out_path, result)
    return result


class _PlanInputs:
    """What an allocation's plan reads (:class:`lorp.sparse.registry.AllocationInputs`), loaded when asked for:
    the layers' shapes (the model on the meta device), the dense outlier ratios, the blocks' scores."""

    def __init__(self, model_dir: str | Path | None, metric: str, outliers_path: str | Path | None,
                 norms_dir: str | Path | None) -> None:
        self.model_dir, self.metric, self.outliers_path, self.norms_dir = model_dir, metric, outliers_path, norms_dir

    def shapes(self) -> list[dict[str, tuple[int, int]]]:
        from ... import models
        from ...sparse.norms import block_shapes

        return block_shapes(models.meta_model(self.model_dir))

    def outliers(self) -> list[dict[str, Any]]:
        return read_json(self.outliers_path)["blocks"]

    def scores(self) -> Any:
        return _block_scores(self.model_dir, self.metric, self.norms_dir)


def make_sparse_plan(metric: str, allocation: str, target_percent: int, model_dir: str | Path | None,
                     out_path: str | Path, params: Mapping[str, Any], outliers_path: str | Path | None = None,
                     norms_dir: str | Path | None = None) -> Any:
    """Sparse stage 3: per-block and per-linear sparsity of one metric, allocation and target (percent).
    An N:M pattern (``2of4``) needs only the layers' shapes; a registered allocation
    (:mod:`lorp.sparse.allocation_plans`) gets the inputs it declares (the shapes from ``model_dir``, the dense
    outlier ratios from ``outliers_path``, the blocks' scores from ``model_dir`` and, for a metric that uses
    them, ``norms_dir``) and its config slice ``params``."""
    from ...sparse import plan as sp
    from ...sparse.allocation_plans import get_allocation

    target = int(target_percent) / 100
    inputs = _PlanInputs(model_dir, metric, outliers_path, norms_dir)
    nm = sp.parse_nm(allocation)
    if nm:
        result = sp.nm_plan(metric, *nm, inputs.shapes())
    else:
        result = get_allocation(allocation).plan(inputs, metric, target, params)
    print(f"{result.method} at {target:.0%}: block sparsities {min(result.blocks):.3f}..{max(result.blocks):.3f}, "
          f"model {result.model_sparsity:.6f}" + (f", {len(result.trajectory)} MRP steps" if result.trajectory else ""))
    write_json(out_path, result.to_dict())
    return result


def prune_sparse(model_dir: str | Path, plan_path: str | Path, norms_out: str | Path, measured_path: str | Path,
                 pruning: Mapping[str, Any], labels: Mapping[str, Any], norms_dir: str | Path | None = None,
                 tokens_path: str | Path | None = None, batch_size: int | None = None,
                 weights_out: str | Path | None = None) -> dict[str, Any]:
    """Sparse stage 4: prune the model in memory to a plan, each linear layer's lowest-scoring weights of
    every row set to zero, and write what any later stage needs to rebuild it exactly: the norms each block
    was pruned with (``norms_out``, :func:`lorp.sparse.norms.write_pruning_norms`), the pruned weights of a
    metric that updates them (``weights_out``, :mod:`lorp.sparse.stored`; no tensor for one that masks) and
    the measured sparsity of every layer (``measured_path``). ``pruning['norms']`` is ``dense`` (the norms
    stage's, from ``norms_dir``), ``sequential`` (Wanda's protocol on ``tokens_path``) or ``none``
    (magnitude; SparseGPT, whose ``hessians: sequential`` are measured on ``tokens_path`` and whose settings
    are ``pruning[<metric>]``); the model is pruned on ``pruning['compute']``, in the dtype the evaluations
    run in, so that their rebuild scores the same weights. ``labels`` (model, calib) name the model in
    ``measured_path``. No checkpoint is written (that is :func:`.model.export_checkpoint`)."""
    from ... import models
    from ...sparse.norms import read_norms, write_pruning_norms
    from ...sparse.plan import SparsePlan
    from ...sparse.prune import measure_pruned, prune_to_plan
    from ...sparse.metrics import get_metric
    from ...sparse.stored import write_pruned_weights

    plan = SparsePlan.from_dict(read_json(plan_path))
    sequential = pruning["norms"] == "sequential" or pruning.get("hessians") == "sequential"
    compute = pruning["compute"]
    model, _, _ = models.load_for(model_dir, compute)
    dense_norms = read_norms(norms_dir) if pruning["norms"] == "dense" else None
    with tqdm(total=len(plan.blocks), desc=f"prune {plan.method} {plan.percent}%", unit="block") as bar:
        used = prune_to_plan(model, plan, norms=dense_norms, tokens=np.load(tokens_path) if sequential else None,
                             batch_size=int(batch_size), progress=bar.update, params=pruning.get(plan.metric))
    measured = {**labels, **measure_pruned(model, plan), "norms": pruning["norms"],
                "dtype": models.dtype_name(next(model.parameters()).dtype)}
    short = [(x["block"], name) for x in measured["blocks"] for name, v in x["linears"].items() if v["row_shortfall"]]
    if short:
        raise RuntimeError(f"rows of {short[:3]} have fewer zeros than planned: the masks did not apply")
    print(f"measured sparsity {measured['model_sparsity']:.6f} (planned {measured['planned_sparsity']:.6f})")
    write_pruning_norms(norms_out, used)
    if weights_out is not None:
        write_pruned_weights(weights_out, model if get_metric(plan.metric).updates_weights else None, len(plan.blocks))
    write_json(measured_path, measured)
    return measured


def assess_redundancy(model_dir: str | Path, norms_dir: str | Path | None, metric: str,
                      plan_paths: Sequence[str | Path], params: Mapping[str, Any], out_path: str | Path,
                      labels: Mapping[str, Any]) -> list[dict]:
    """Sparse stage 5: every plan's per-block non-outlier ratio after pruning, with the dense norms, and
    its standard deviation (``params``: outlier_m, count_zeros), as ``redundancy.json`` (``labels``:
    model and calib)."""
    from ...sparse.plan import SparsePlan, redundancy_after

    plans = [SparsePlan.from_dict(read_json(p)) for p in plan_paths]
    rows = redundancy_after(plans, _block_scores(model_dir, metric, norms_dir), params["outlier_m"],
                            params["count_zeros"])
    for row in rows:
        print(f"{row['method']} {row['budget']}%: non-outlier ratio std {row['non_outlier_std']:.4f}")
    write_json(out_path, {**labels, "metric": metric, **params, "plans": rows})
    return rows


def sweep_mrp(model_dir: str | Path, norms_dir: str | Path | None, metric: str, targets: Sequence[int],
              params: Mapping[str, Any], sweep: Mapping[str, Sequence[float]], out_json: str | Path,
              out_png: str | Path, title: str) -> list[dict]:
    """Sparse stage 6: MRP's allocation for every M and step of ``sweep`` (the configured value where a
    list is empty) at every target: per-block sparsities, steps taken and the spread of the non-outlier
    ratios, with uniform's spread at the same M for reference (:func:`lorp.sparse.sweep.mrp_sweep`);
    ``sweep.json`` and its figure."""
    from ...sparse.sweep import mrp_sweep

    blocks = _block_scores(model_dir, metric, norms_dir)
    with tqdm(total=len(blocks), desc="MRP sweep: ratios", unit="block") as bar:
        rows = mrp_sweep(metric, blocks, targets, params, sweep, progress=bar.update)
    configured = {"outlier_m": params["outlier_m"], "step": params["mrp"]["step"]}
    write_json(out_json, {"metric": metric, "configured": configured, "runs": rows})
    sparse_figures.mrp_sweep(rows, configured["outlier_m"], configured["step"], out_png, title)
    return rows
