"""Stages of the model itself: prepared from its source (``rules/model.smk``), loaded as an evaluation
measures it (pruned in memory to a plan) and exported as a pruned checkpoint on request
(``prune_checkpoint`` and ``sparse_checkpoint``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ...io import atomic_path, read_json, write_json


def prepare_model(source: str, out_dir: str | Path, storage_dtype: str, key: str = "source") -> dict[str, Any]:
    """Stage 0: convert a GGUF model to safetensors (or just describe a hub/local model) in ``out_dir``;
    ``key`` names the config entry of ``source`` in errors (``models.<name>.source``)."""
    from ... import models

    src = models.resolve_source(source)
    try:
        with atomic_path(out_dir, directory=True) as tmp:
            info = models.prepare_model(src, tmp, storage_dtype)
            write_json(tmp / "model.json", info)
    except models.HubUnavailableError as err:
        raise models.HubUnavailableError(f"{key}: {err}") from None
    return info


def load_evaluated(sources: Mapping[str, str | Path], compute: Mapping[str, Any]) -> tuple[Any, Any]:
    """The model an evaluation measures and its tokenizer: the prepared model ``sources['model']`` on the
    compute device and dtype, pruned in memory to ``sources['plan']`` where one is given (a sparse plan
    with the norms its blocks were pruned with, ``sources['pruning']``, and the measurement it must
    reproduce, ``sources['measured']``, and SparseGPT's stored weights, ``sources['weights']``:
    :func:`lorp.evaluation.pruned.read_plan_sources`), and recovered by
    ``sources['recovery']`` where given (:func:`lorp.recovery.recover_model`). No checkpoint is read."""
    from ... import models
    from ...evaluation.pruned import build_pruned, read_plan_sources

    model, tokenizer, _ = models.load_for(sources["model"], compute)
    if sources.get("plan"):
        model = build_pruned(model, *read_plan_sources(sources), recovery=sources.get("recovery"))
    return model, tokenizer


def _updates_weights(plan: Mapping[str, Any]) -> bool:
    from ...sparse.metrics import get_metric

    return plan.get("family") == "sparse" and get_metric(plan["metric"]).updates_weights


def export_checkpoint(sources: Mapping[str, str | Path], out_dir: str | Path, compute: Mapping[str, Any]) -> None:
    """Stage 6 (on request, ``checkpoints.export``): the pruned model as a Hugging Face directory in the dtype
    the prepared model is stored in (for a metric that updates weights, SparseGPT, or a recovered model, the
    dtype it is evaluated in, which holds its new weights exactly), with its plan (``plan.json``) and, for a
    sparse plan, its measured sparsity (``sparsity.json``), for a recovered model ``recovery.json`` and its
    patches (reload it with :func:`lorp.recovery.load_recovered`). The model is the one the evaluations measure
    (:func:`load_evaluated`): reloading the directory gives the same logits."""
    from ... import models
    from ...evaluation.pruned import read_plan_sources

    model, tokenizer = load_evaluated(sources, compute)
    manifest = read_json(Path(sources["model"]) / "model.json")
    plan, _, measured, _ = read_plan_sources(sources)
    if not sources.get("recovery") and not _updates_weights(plan):  # new weights (LoRA's merged ones,
        # SparseGPT's) keep the dtype they were made in; zeros in place of stored weights fit the stored dtype
        model.to(models.select_dtype(models.stored_dtype(sources["model"]), next(model.parameters()).device))
    records = {"plan.json": {**plan, "source_model": manifest["source"]}}
    if measured is not None:
        records["sparsity.json"] = measured
    files = {}
    if sources.get("recovery"):
        from ...recovery import recovery_records

        more, files = recovery_records(plan, sources["recovery"])
        records.update(more)
    models.save_checkpoint(model, tokenizer, out_dir, records, files)
