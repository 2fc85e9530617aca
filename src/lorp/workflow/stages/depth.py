"""Stages of the depth family: the similarity of the blocks and their structure (``rules/analysis.smk``),
and the pruning plans, those that run the model and ``auto``'s included (``rules/pruning.smk``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from ... import figures
from ...depth import methods, structure
from ...depth.similarity import SimilarityResult, open_layers, passes, similarity_from_arrays
from ...depth.statistics import get_statistic
from ...io import read_json, write_json, write_npy, write_npz, write_text


def compute_similarity(activation_dir: str | Path, outputs: Mapping[str, str | Path],
                       params: Mapping[str, Any], title: str = "") -> SimilarityResult:
    """Stage 3: the N x N similarity matrix (and the extended and last-token matrices used by the baselines).

    ``outputs`` maps ``cosine``, ``csv``, ``heatmap``, ``extended``, ``last_token``, ``summary`` (the
    statistic, token counts and excluded dimensions) and ``per_sequence`` (the per-sequence sums a bootstrap
    resamples; empty for ``cka``) to paths; ``params`` holds ``statistic`` and its setting
    (``massive_multiple``, ``cka_batch_tokens``; the registration's ``parameter``); ``title`` prefixes the
    heatmap's title (the model and calibration).
    """
    from ... import tables  # pandas: not imported by the plans' stages

    params = dict(params)
    statistic = params.pop("statistic")
    activation_dir = Path(activation_dir)
    manifest = read_json(activation_dir / "manifest.json")
    n_rows = manifest["shape"][0]
    with tqdm(total=passes(statistic) * n_rows, desc=f"similarity ({statistic})", unit="tok") as bar:
        result = similarity_from_arrays(open_layers(activation_dir, manifest["n_layers"] + 1), statistic,
                                        np.asarray(manifest["last_token_rows"]),
                                        tokens_per_sequence=manifest["tokens_per_sequence"], progress=bar.update,
                                        **params)
    cosine = result.cosine
    write_npy(outputs["cosine"], cosine)
    write_npy(outputs["extended"], result.extended)
    write_npy(outputs["last_token"], result.last_token)
    write_text(outputs["csv"], tables.matrix_csv(cosine))
    if "summary" in outputs:
        write_json(outputs["summary"], {
            "statistic": statistic, "description": get_statistic(statistic).description, **params,
            "n_tokens": result.n_tokens, "n_last_tokens": result.n_last_tokens,
            "tokens_per_sequence": manifest["tokens_per_sequence"],
            "excluded_dimensions": list(result.excluded_dimensions)})
    if "per_sequence" in outputs:
        size = result.extended.shape
        write_npz(outputs["per_sequence"],
                  extended=result.per_sequence if result.per_sequence is not None else np.zeros((0, *size)),
                  last_token=result.per_sequence_last if result.per_sequence_last is not None else np.zeros((0, *size)),
                  tokens_per_sequence=np.int64(manifest["tokens_per_sequence"]))
    label = "cosine similarity" if statistic == "cosine" else get_statistic(statistic).description
    figures.similarity_heatmap(cosine, outputs["heatmap"],
                               f"{title}: {label}" if title else f"inter-layer {label} ({cosine.shape[0]} blocks)")
    return result


def analyse_structure(cosine_path: str | Path, out_path: str | Path,
                      params: Mapping[str, Any]) -> structure.LayerStructure:
    """Stage 4: RLS, K and the spectral clustering of layers (``rls.json``); ``params`` holds ``k``
    and ``random_state``, and ``rls_thresholds`` unless K is fixed (the K ablation's clusterings
    depend on no thresholds, and record none)."""
    thresholds = params["rls_thresholds"] if "rls_thresholds" in params else ()
    result = structure.analyse_structure(np.load(cosine_path), k=params["k"], thresholds=thresholds,
                                         random_state=int(params["random_state"]))
    write_json(out_path, result.to_dict())
    return result


_PLAN_INPUT_READERS = {
    "extended": np.load,
    "last_token": np.load,
    "structure": lambda path: structure.LayerStructure.from_dict(read_json(path)),
    "tokens": np.load,
    "previous": read_json,
}


def make_plan(method: str, budget: int, inputs: Mapping[str, str | Path], out_path: str | Path,
              params: Mapping[str, Any]) -> methods.Plan:
    """Stage 5: a pruning plan for one method and budget; ``inputs`` maps the inputs the method
    declares (:attr:`lorp.depth.methods.Method.inputs`) to their files."""
    loaded = {name: _PLAN_INPUT_READERS[name](path) for name, path in inputs.items()}
    result = methods.make_plan(method, int(budget), methods.PlanInputs(**loaded), params)
    write_json(out_path, result.to_dict())
    return result


def make_model_plan(method: str, budget: int, inputs: Mapping[str, str | Path], out_path: str | Path,
                    params: Mapping[str, Any], compute: Mapping[str, Any], batch_size: int) -> methods.Plan:
    """Stage 5, for a method that runs the model (SLEB): ``inputs`` maps ``model`` (the prepared model,
    loaded with the ``compute`` settings) and the other inputs the method declares to their files; the model
    runs on ``batch_size`` windows at a time."""
    from ... import models

    model, _, _ = models.load_for(inputs["model"], compute)
    loaded = {name: _PLAN_INPUT_READERS[name](path) for name, path in inputs.items() if name != "model"}
    result = methods.make_plan(method, int(budget), methods.PlanInputs(model=model, batch_size=int(batch_size),
                                                                       **loaded), params)
    write_json(out_path, result.to_dict())
    return result


def choose_auto_plan(model_dir: str | Path, held_out_path: str | Path, candidates: Sequence[Mapping[str, Any]],
                     budget: int, out_path: str | Path, compute: Mapping[str, Any], batch_size: int) -> methods.Plan:
    """Stage 5b: the ``auto`` plan at ``budget``: every candidate plan (``candidates``: ``method``,
    ``statistic`` and ``plan``, a plan JSON path) scored by perplexity on the held-out windows, the best kept
    (:func:`lorp.depth.auto.choose`). The model is loaded once; each distinct pruned set is built in memory
    beside it (shared tensors) and scored."""
    from ... import models
    from ...depth.auto import Candidate, choose
    from ...evaluation.perplexity import perplexity
    from ...evaluation.pruned import build_pruned

    model, _, _ = models.load_for(model_dir, compute)
    windows = np.load(held_out_path).astype(np.int64)
    plans = [read_json(c["plan"]) for c in candidates]
    listed = [Candidate(c["method"], c["statistic"], tuple(int(i) for i in p["pruned"]))
              for c, p in zip(candidates, plans, strict=True)]
    n_layers = len(models.get_decoder_layers(model))
    by_set = {tuple(int(i) for i in p["pruned"]): p for p in plans}
    bar = tqdm(total=len(set(by_set)), desc=f"auto-{budget}", unit="plan")

    def score(pruned: tuple[int, ...]) -> float:
        pruned_model = build_pruned(model, by_set[pruned], keep_dense=True)
        result = perplexity(pruned_model, windows, batch_size=batch_size)
        bar.update(1)
        print(f"blocks {list(pruned)}: held-out ppl {result.ppl:.3f}")
        return result.ppl

    plan = choose(listed, score, int(budget), n_layers,
                  {"windows": int(windows.shape[0]), "seqlen": int(windows.shape[1]), "tokens": str(held_out_path)})
    bar.close()
    write_json(out_path, plan.to_dict())
    return plan
