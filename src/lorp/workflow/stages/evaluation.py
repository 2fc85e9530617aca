"""Stages of the evaluations (``rules/evaluation.smk``): perplexity, zero-shot accuracy and efficiency
of the dense and the pruned models, every pruned model built in memory (:func:`.model.load_evaluated`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm.auto import tqdm

from ... import data, tables
from ...evaluation.reuse import reused_rows
from ...io import write_text
from .model import load_evaluated


def _copied(sources: Mapping[str, str | Path], reuse: Sequence[str | Path], labels: Mapping[str, Any], key: str,
            names: Sequence[str], out_path: str | Path, columns: Sequence[str]) -> list[dict[str, str]] | None:
    """Write the reused rows of an evaluation of the same model to ``out_path`` and return them, if there
    is one (:func:`lorp.evaluation.reuse.reused_rows`)."""
    found = reused_rows(sources, reuse, labels, key, names)
    if found is None:
        if reuse:
            print(f"none of {len(reuse)} candidate evaluations is of this model: evaluating it")
        return None
    rows, origin = found
    print(f"{sources['plan']} removes the blocks of the plan evaluated in {origin}: its {len(rows)} rows, relabelled "
          "(the same model is not evaluated twice)")
    write_text(out_path, tables.rows_csv(rows, columns))
    return rows


def evaluate_perplexity(sources: Mapping[str, str | Path], datasets: Mapping[str, Mapping[str, Any]],
                        out_path: str | Path, labels: Mapping[str, Any], compute: Mapping[str, Any],
                        batch_size: int, reuse: Sequence[str | Path] = ()) -> list[dict]:
    """Stage 7: perplexity of the dense or a pruned model (``sources``, see :func:`.model.load_evaluated`) on
    every configured dataset, as ``ppl.csv``; ``labels`` fills the identifying columns (model, calib,
    method, budget, base_model, plan). Where one of the ``reuse`` evaluations is of the same model
    (:func:`lorp.evaluation.reuse.reused_rows`), its rows are copied instead."""
    from ... import models
    from ...evaluation.perplexity import make_windows, perplexity

    copied = _copied(sources, reuse, labels, "dataset", list(datasets), out_path, tables.PPL_COLUMNS)
    if copied is not None:
        return copied
    model, tokenizer = load_evaluated(sources, compute)
    n_layers = len(models.get_decoder_layers(model))
    rows = []
    for name, spec in datasets.items():
        texts = data.load_texts(spec, "evaluation")
        stream = data.tokenize_stream(texts, tokenizer, spec["join"])
        prefix = data.special_prefix(tokenizer) if spec.get("bos_per_window") else []  # the key exists only when on
        windows = make_windows(stream, int(spec["seqlen"]), spec["max_windows"], prefix=prefix)
        with tqdm(total=len(windows), desc=f"ppl {name}", unit="win") as bar:
            result = perplexity(model, windows, batch_size=batch_size, progress=bar.update,
                                prefix_tokens=len(prefix))
        print(f"{name}: ppl {result.ppl:.3f} over {result.n_windows} x {result.seqlen} tokens")
        rows.append({**labels, "n_layers": n_layers, "dataset": name, **result.as_row()})
    write_text(out_path, tables.rows_csv(rows, tables.PPL_COLUMNS))
    return rows


def evaluate_zeroshot(sources: Mapping[str, str | Path], out_path: str | Path, labels: Mapping[str, Any],
                      compute: Mapping[str, Any], spec: Mapping[str, Any], batch_size: int,
                      reuse: Sequence[str | Path] = ()) -> list[dict]:
    """Stage 7c: zero-shot accuracy of the dense or a pruned model (``sources``, see :func:`.model.load_evaluated`)
    on the configured lm-eval tasks as ``tasks.csv`` (long rows: task, metric, value, stderr, n_examples),
    the model built once for all tasks. Where one of the ``reuse`` evaluations is of the same model
    (:func:`lorp.evaluation.reuse.reused_rows`), its rows are copied instead."""
    from ... import models
    from ...evaluation.zeroshot import evaluate_tasks

    copied = _copied(sources, reuse, labels, "task", list(spec["tasks"]), out_path, tables.TASK_COLUMNS)
    if copied is not None:
        return copied
    model, tokenizer = load_evaluated(sources, compute)
    n_layers = len(models.get_decoder_layers(model))
    rows = evaluate_tasks(model, tokenizer, list(spec["tasks"]), spec["data_dir"], spec["limit"],
                          batch_size=batch_size)
    for row in rows:
        print(f"{row['task']:>14} {row['metric']:<8} {row['value']:.4f} +- {row['stderr'] or float('nan'):.4f} "
              f"({row['n_examples']} examples)")
    write_text(out_path, tables.rows_csv([{**labels, "n_layers": n_layers, **r} for r in rows], tables.TASK_COLUMNS))
    return rows


def measure_efficiency(model_dir: str | Path, entries: Sequence[tuple[Mapping[str, Any], Mapping[str, str | Path]]],
                       out_path: str | Path, model: str, compute: Mapping[str, Any],
                       settings: Mapping[str, Any]) -> list[dict]:
    """Stage 7b: size, memory, prefill throughput and decode latency of the dense model ``model_dir`` and of
    every pruned model of ``entries`` (labels, sources as in :func:`.model.load_evaluated`), as one
    ``efficiency.csv`` per model.

    Each pruned model is built in memory beside the dense one (a depth-pruned one shares its tensors, and so
    does a patched one; a sparse one and a LoRA-recovered one own a copy of their layers) and timed
    alternately with it, two models that share tensors per group with the dense one between them
    (:func:`lorp.evaluation.efficiency.timing_groups`; one that owns a copy alone with it, so that only one
    copy of the layers is ever built), round after round, so
    every speed-up is a median of ratios of adjacent runs from one run, with their spread. (Timing all
    depth-pruned models in one group with a single dense run per round puts up to a group's length of
    time between the runs a ratio compares: on the embedded model it gave prefill ratios from 0.56 to 1.34
    where adjacent runs give 0.9 to 1.1.) Plans that prune the same blocks (``auto`` always repeats one of
    its candidates; methods often agree) are one model, timed once: each of their rows carries its
    timings. The dense model is warmed up once; the dense row pools its rounds of every group."""
    from ... import models
    from ...evaluation.efficiency import EfficiencySettings, result, time_against_dense, timed_runs, timing_groups
    from ...evaluation.pruned import build_pruned, read_plan_sources
    from ...evaluation.reuse import pruned_model_key

    cfg = EfficiencySettings(**{k: int(v) for k, v in settings.items()})
    dense, _, _ = models.load_for(model_dir, compute)
    stored = models.select_dtype(models.stored_dtype(model_dir), next(dense.parameters()).device)
    plans = [read_plan_sources(sources) for _, sources in entries]
    keys = [pruned_model_key(plan, sources) for (plan, *_), (_, sources) in zip(plans, entries)]
    first: dict[Any, int] = {}  # the entry whose plan builds each distinct model
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    groups = timing_groups(keys)
    with tqdm(total=timed_runs(groups, cfg), desc="efficiency", unit="run") as bar:
        pooled, measured = time_against_dense(dense, groups,
                                              lambda key: build_pruned(dense, *plans[first[key]], keep_dense=True,
                                                                       recovery=entries[first[key]][1].get("recovery")),
                                              cfg, stored, progress=bar.update)
    rows = []
    for (labels, _), key in zip(entries, keys):
        r = {**labels, **measured[key]}
        same = entries[first[key]][0]
        also = "" if same is labels else f" (the model of {same['method']}-{same['budget']}, timed once)"
        print(f"{labels['method']}-{labels['budget']}: prefill x{r['prefill_speedup']:.3f} "
              f"[{r['prefill_speedup_min']:.3f}, {r['prefill_speedup_max']:.3f}], decode "
              f"x{r['decode_speedup']:.3f} [{r['decode_speedup_min']:.3f}, {r['decode_speedup_max']:.3f}]{also}")
        rows.append(r)
    one = {f"{k}_speedup{s}": 1.0 for k in ("prefill", "decode") for s in ("", "_min", "_max")}
    dense_row = {"model": model, "calib": "-", "method": "dense", "budget": 0, "base_model": os.fspath(model_dir),
                 "plan": "-", "n_layers": len(models.get_decoder_layers(dense)), **cfg.__dict__,
                 **result(dense, pooled, cfg, stored).as_row(), **one}
    print(f"dense: prefill {dense_row['prefill_tokens_per_s']:.1f} tok/s, decode {dense_row['decode_ms_per_token']:.2f} "
          f"ms/token on {dense_row['device']}; {len(first)} distinct pruned models of {len(entries)} plans")
    out = [dense_row, *rows]
    write_text(out_path, tables.rows_csv(out, tables.EFFICIENCY_COLUMNS))
    return out
