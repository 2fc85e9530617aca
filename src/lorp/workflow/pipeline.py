"""One function per workflow stage: read the stage's inputs, call the pure functions, write outputs.

The Snakemake scripts in ``scripts/`` only adapt the ``snakemake`` object to these calls; the
functions are equally usable from Python or a notebook. Every output is written atomically. The
parameters each stage receives are the config slices of :mod:`lorp.workflow.config`, with every default
filled in by the schema: no stage has defaults of its own.
"""

from __future__ import annotations

import collections.abc
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from .. import data, figures, tables
from ..depth import methods, sensitivity, structure
from ..io import atomic_path, read_json, write_json, write_npy, write_npz, write_text
from ..depth.similarity import STATISTICS, SimilarityResult, open_layers, passes, similarity_from_arrays


def prepare_model(source: str, out_dir: str | Path, storage_dtype: str, key: str = "source") -> dict[str, Any]:
    """Stage 0: convert a GGUF model to safetensors (or just describe a hub/local model) in ``out_dir``;
    ``key`` names the config entry of ``source`` in errors (``models.<name>.source``)."""
    from .. import models

    src = models.resolve_source(source)
    try:
        with atomic_path(out_dir, directory=True) as tmp:
            info = models.prepare_model(src, tmp, storage_dtype)
            write_json(tmp / "model.json", info)
    except models.HubUnavailableError as err:
        raise models.HubUnavailableError(f"{key}: {err}") from None
    return info


def sample_calibration(model_dir: str | Path, spec: Mapping[str, Any], tokens_path: str | Path,
                       meta_path: str | Path) -> dict[str, Any]:
    """Stage 1: calibration windows (int32 [n_samples, seqlen]) and their description."""
    from .. import models

    tokenizer = models.load_tokenizer(models.source_of(model_dir)[0])
    windows, meta = data.calibration_tokens(spec, tokenizer)
    meta.update(shape=list(windows.shape), dtype="int32", spec=dict(spec))
    write_npy(tokens_path, windows)
    write_json(meta_path, meta)
    return meta


def sample_held_out(model_dir: str | Path, spec: Mapping[str, Any], held_out: int, calibration_path: str | Path,
                    tokens_path: str | Path, meta_path: str | Path) -> dict[str, Any]:
    """Stage 1b: ``held_out`` calibration windows no stage has seen, those that follow the calibration's own
    in the same draw (the spec with ``n_samples + held_out``), for the ``auto`` method's choice; the draw's
    first windows must be the calibration tokens at ``calibration_path``, else it stops (the sampling would
    not be the calibration's)."""
    from .. import models

    tokenizer = models.load_tokenizer(models.source_of(model_dir)[0])
    n = int(spec["n_samples"])
    windows, meta = data.calibration_tokens({**spec, "n_samples": n + int(held_out)}, tokenizer)
    if not np.array_equal(windows[:n], np.load(calibration_path)):
        raise RuntimeError(f"the first {n} windows of a draw of {n + held_out} differ from the calibration tokens "
                           f"{calibration_path}; the held-out windows would not be disjoint from them")
    meta = {"held_out_from": dict(spec), "window_index": list(range(n, n + int(held_out))),
            "shape": [int(held_out), int(windows.shape[1])], "dtype": "int32",
            **{k: v[n:] for k, v in meta.items() if k in ("window_starts", "document_indices")}}
    write_npy(tokens_path, windows[n:])
    write_json(meta_path, meta)
    return meta


def choose_auto_plan(model_dir: str | Path, held_out_path: str | Path, candidates: Sequence[Mapping[str, Any]],
                     budget: int, out_path: str | Path, compute: Mapping[str, Any], batch_size: int) -> methods.Plan:
    """Stage 5b: the ``auto`` plan at ``budget``: every candidate plan (``candidates``: ``method``,
    ``statistic`` and ``plan``, a plan JSON path) scored by perplexity on the held-out windows, the best kept
    (:func:`lorp.depth.auto.choose`). The model is loaded once; each distinct pruned set is built in memory
    beside it (shared tensors) and scored."""
    from .. import models
    from ..depth.auto import Candidate, choose
    from ..evaluation.perplexity import perplexity
    from ..evaluation.pruned import build_pruned

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


def capture(model_dir: str | Path, tokens_path: str | Path, out_dir: str | Path, params: Mapping[str, Any],
            compute: Mapping[str, Any], batch_size: int) -> dict[str, Any]:
    """Stage 2: hidden states entering every block, one ``.npy`` per layer (``params``: the
    activation slice, dtype, tokens_per_sequence and seed)."""
    from .. import models
    from ..capture import capture_activations

    model, _, _ = models.load_for(model_dir, compute)
    tokens = np.load(tokens_path)
    start = time.perf_counter()
    with tqdm(total=len(tokens), desc="capture", unit="seq") as bar:
        manifest = capture_activations(model, tokens, out_dir, batch_size=int(batch_size), dtype=params["dtype"],
                                       tokens_per_sequence=params["tokens_per_sequence"], seed=int(params["seed"]),
                                       progress=bar.update)
    print(f"captured {manifest['shape'][0]} tokens x {manifest['n_layers'] + 1} layers in "
          f"{time.perf_counter() - start:.1f} s")
    return manifest


def compute_similarity(activation_dir: str | Path, outputs: Mapping[str, str | Path],
                       params: Mapping[str, Any] | None = None, title: str = "") -> SimilarityResult:
    """Stage 3: the N x N similarity matrix (and the extended and last-token matrices used by the baselines).

    ``outputs`` maps ``cosine``, ``csv``, ``heatmap``, ``extended``, ``last_token``, ``summary`` (the
    statistic, token counts and excluded dimensions) and ``per_sequence`` (the per-sequence sums a bootstrap
    resamples; empty for ``cka``) to paths; ``params`` holds ``statistic`` and its setting
    (``massive_multiple``, ``cka_batch_tokens``), the paper's cosine by default; ``title`` prefixes the
    heatmap's title (the model and calibration).
    """
    params = dict(params or {"statistic": "cosine"})
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
            "statistic": statistic, "description": STATISTICS[statistic], **params,
            "n_tokens": result.n_tokens, "n_last_tokens": result.n_last_tokens,
            "tokens_per_sequence": manifest["tokens_per_sequence"],
            "excluded_dimensions": list(result.excluded_dimensions)})
    if "per_sequence" in outputs:
        size = result.extended.shape
        write_npz(outputs["per_sequence"],
                  extended=result.per_sequence if result.per_sequence is not None else np.zeros((0, *size)),
                  last_token=result.per_sequence_last if result.per_sequence_last is not None else np.zeros((0, *size)),
                  tokens_per_sequence=np.int64(manifest["tokens_per_sequence"]))
    label = "cosine similarity" if statistic == "cosine" else STATISTICS[statistic]
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
}


def make_plan(method: str, budget: int, inputs: Mapping[str, str | Path], out_path: str | Path,
              params: Mapping[str, Any]) -> methods.Plan:
    """Stage 5: a pruning plan for one method and budget; ``inputs`` maps the inputs the method
    declares (:attr:`lorp.depth.methods.Method.inputs`) to their files."""
    loaded = {name: _PLAN_INPUT_READERS[name](path) for name, path in inputs.items()}
    result = methods.make_plan(method, int(budget), methods.PlanInputs(**loaded), params)
    write_json(out_path, result.to_dict())
    return result


def load_evaluated(sources: Mapping[str, str | Path], compute: Mapping[str, Any]) -> tuple[Any, Any]:
    """The model an evaluation measures and its tokenizer: the prepared model ``sources['model']`` on the
    compute device and dtype, pruned in memory to ``sources['plan']`` where one is given (a sparse plan
    with the norms its blocks were pruned with, ``sources['pruning']``, and the measurement it must
    reproduce, ``sources['measured']``). No checkpoint is read."""
    from .. import models
    from ..evaluation.pruned import build_pruned

    model, tokenizer, _ = models.load_for(sources["model"], compute)
    if sources.get("plan"):
        plan, norms, measured = _plan_sources(sources)
        build_pruned(model, plan, norms, measured)
    return model, tokenizer


def _plan_sources(sources: Mapping[str, str | Path]) -> tuple[dict, Any, Any]:
    """A plan's JSON and, for a sparse plan, its pruning norms and measurement (None for a depth plan)."""
    from ..sparse.norms import read_pruning_norms

    plan = read_json(sources["plan"])
    if plan.get("family") != "sparse":
        return plan, None, None
    return plan, read_pruning_norms(sources["pruning"]), read_json(sources["measured"])


def reused_rows(sources: Mapping[str, str | Path], candidates: Sequence[str | Path], labels: Mapping[str, Any],
                key: str, names: Sequence[str]) -> tuple[list[dict[str, str]], str] | None:
    """The rows of an evaluation of the same model, relabelled, and the file they come from; None when
    there is none.

    ``candidates`` are evaluation CSVs of other depth plans (an ``auto`` plan's candidates,
    :func:`lorp.workflow.paths.reused_evaluations`). The first whose rows name the same prepared model and
    a plan that builds the same model as ``sources['plan']`` (:func:`_pruned_model_key`, as efficiency
    times it once), and hold one row or more for every one of
    ``names`` (the datasets or tasks in column ``key``), is the same model evaluated with the same settings
    by the same rule: its rows are returned as written (no number reformatted) with the identifying
    columns of ``labels``. A sparse plan is never reused."""
    import csv

    if not candidates or not sources.get("plan"):
        return None
    plan = read_json(sources["plan"])
    if plan.get("family") == "sparse":
        return None
    for path in candidates:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or {r["base_model"] for r in rows} != {str(sources["model"])}:
            continue
        if {r[key] for r in rows} != set(names) or len({r["plan"] for r in rows}) != 1:
            continue
        other = read_json(rows[0]["plan"])
        if _pruned_model_key(other, {"plan": rows[0]["plan"]}) == _pruned_model_key(plan, sources):
            return [{**row, **{k: str(v) for k, v in labels.items()}} for row in rows], str(path)
    return None


def _copied(sources: Mapping[str, str | Path], reuse: Sequence[str | Path], labels: Mapping[str, Any], key: str,
            names: Sequence[str], out_path: str | Path, columns: Sequence[str]) -> list[dict[str, str]] | None:
    """Write the reused rows of an evaluation of the same model to ``out_path`` and return them, if there
    is one (:func:`reused_rows`)."""
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
    """Stage 7: perplexity of the dense or a pruned model (``sources``, see :func:`load_evaluated`) on
    every configured dataset, as ``ppl.csv``; ``labels`` fills the identifying columns (model, calib,
    method, budget, base_model, plan). Where one of the ``reuse`` evaluations is of the same model
    (:func:`reused_rows`), its rows are copied instead."""
    from .. import models
    from ..evaluation.perplexity import make_windows, perplexity

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


def measure_efficiency(model_dir: str | Path, entries: Sequence[tuple[Mapping[str, Any], Mapping[str, str | Path]]],
                       out_path: str | Path, model: str, compute: Mapping[str, Any],
                       settings: Mapping[str, Any]) -> list[dict]:
    """Stage 7b: size, memory, prefill throughput and decode latency of the dense model ``model_dir`` and of
    every pruned model of ``entries`` (labels, sources as in :func:`load_evaluated`), as one
    ``efficiency.csv`` per model.

    Each pruned model is built in memory beside the dense one (a depth-pruned one shares its tensors, a
    sparse one owns a copy of the linear layers) and timed alternately with it, two depth-pruned models per
    group with the dense one between them (:func:`lorp.evaluation.efficiency.trios`; a sparse one alone
    with it, so that only one copy of the linear layers is ever built), round after round, so
    every speed-up is a median of ratios of adjacent runs from one run, with their spread. (Timing all
    depth-pruned models in one group with a single dense run per round puts up to a group's length of
    time between the runs a ratio compares: on the embedded model it gave prefill ratios from 0.56 to 1.34
    where adjacent runs give 0.9 to 1.1.) Plans that prune the same blocks (``auto`` always repeats one of
    its candidates; methods often agree) are one model, timed once: each of their rows carries its
    timings. The dense model is warmed up once; the dense row pools its rounds of every group."""
    from .. import models
    from ..evaluation.efficiency import EfficiencySettings, Timings, interleaved, result, speedups, trios
    from ..evaluation.pruned import build_pruned

    cfg = EfficiencySettings(**{k: int(v) for k, v in settings.items()})
    dense, _, _ = models.load_for(model_dir, compute)
    stored = models.select_dtype(_stored_dtype(model_dir), _device(dense))
    plans = [_plan_sources(sources) for _, sources in entries]
    keys = [_pruned_model_key(plan, sources) for (plan, _, _), (_, sources) in zip(plans, entries)]
    first: dict[Any, int] = {}  # the entry whose plan builds each distinct model
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    # depth-pruned models share the dense model's tensors: two per group; a sparse one owns a copy of its
    # linear layers, so it is timed beside the dense one alone (a 14B model's three copies would not fit a GPU)
    groups = trios([k for k in keys if k[0] == "depth"]) + [[k] for k in dict.fromkeys(keys) if k[0] == "sparse"]
    pooled = Timings([], [])
    measured: dict[Any, dict] = {}
    warm: set[str] = set()
    runs = sum(len(g) + 1 for g in groups) if groups else 1
    with tqdm(total=runs * cfg.repeats, desc="efficiency", unit="run") as bar:
        for group in groups or [[]]:
            pruned = {str(i): build_pruned(dense, *plans[first[key]], keep_dense=True) for i, key in enumerate(group)}
            order = dict(list(pruned.items())[:1] + [("dense", dense)] + list(pruned.items())[1:])
            timings = interleaved(order, cfg, progress=bar.update, warm=warm)
            warm.add("dense")
            pooled.prefill += timings["dense"].prefill
            pooled.decode += timings["dense"].decode
            pooled.activation_bytes = max(pooled.activation_bytes, timings["dense"].activation_bytes)
            for i, key in enumerate(group):
                m = pruned[str(i)]
                measured[key] = {"n_layers": len(models.get_decoder_layers(m)), **cfg.__dict__,
                                 **result(m, timings[str(i)], cfg, stored).as_row(),
                                 **speedups(timings["dense"], timings[str(i)])}
            del pruned, order
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


def _pruned_model_key(plan: Mapping[str, Any], sources: Mapping[str, str | Path]) -> Any:
    """What tells pruned models of one base model apart: a depth plan's removed blocks (plans of different
    methods, calibrations or ``auto`` that remove the same blocks build the same model); a sparse model is
    its own (its plan file)."""
    if plan.get("family") == "sparse":
        return ("sparse", os.fspath(sources["plan"]))
    return ("depth", int(plan["n_layers"]), tuple(sorted(int(b) for b in plan["pruned"])))


def _stored_dtype(model_dir: str | Path) -> str:
    """The dtype a prepared model's weights are stored in (``model.json``), as a config dtype name."""
    manifest = read_json(Path(model_dir) / "model.json")
    stored = str(manifest.get("storage_dtype", "")).removeprefix("torch.")
    return stored if stored in ("float32", "float16", "bfloat16") else "auto"


def _device(model: Any) -> Any:
    """The device of a model's first parameter (its inputs go there)."""
    return next(model.parameters()).device


def evaluate_zeroshot(sources: Mapping[str, str | Path], out_path: str | Path, labels: Mapping[str, Any],
                      compute: Mapping[str, Any], spec: Mapping[str, Any], batch_size: int,
                      reuse: Sequence[str | Path] = ()) -> list[dict]:
    """Stage 7c: zero-shot accuracy of the dense or a pruned model (``sources``, see :func:`load_evaluated`)
    on the configured lm-eval tasks as ``tasks.csv`` (long rows: task, metric, value, stderr, n_examples),
    the model built once for all tasks. Where one of the ``reuse`` evaluations is of the same model
    (:func:`reused_rows`), its rows are copied instead."""
    from .. import models
    from ..evaluation.zeroshot import evaluate_tasks

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


def summarise(kind: str, csv_paths: Sequence[str | Path], out_csv: str | Path, out_md: str | Path,
              out_table: str | Path) -> None:
    """Stage 8: every evaluation row of one ``kind`` (``ppl``, ``tasks`` or ``efficiency``) in one long
    CSV, and the paper-style table (dense row, change against it) as CSV and Markdown."""
    frame = tables.long_frame(csv_paths, tables.SUMMARY_ORDER[kind])
    table, markdown = tables.summary_table(kind, frame)
    write_text(out_csv, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out_table, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out_md, markdown)


def draw_structure(cosine_path: str | Path, rls_path: str | Path, plan_paths: Mapping[str, str | Path],
                   budget: int, out_path: str | Path, title: str) -> None:
    """Stage 9: the similarity heatmap with cluster boundaries and each method's pruned layers at ``budget``."""
    rls = read_json(rls_path)
    pruned = {method: read_json(p)["pruned"] for method, p in plan_paths.items()}
    figures.heatmap_with_plans(np.load(cosine_path), rls["labels"], rls["rls"], rls["k"], pruned, budget, out_path,
                               title)


def draw_pruned_layers(plan_paths: Sequence[str | Path], names: Sequence[str], out_path: str | Path,
                       title: str) -> None:
    """Stage 9: methods x layers, one panel per budget, from plan files labelled by ``names``."""
    by_budget: dict[int, dict[str, list[int]]] = {}
    n_layers = 0
    for name, path in zip(names, plan_paths, strict=True):
        plan = read_json(path)
        by_budget.setdefault(int(plan["budget"]), {})[name] = plan["pruned"]
        n_layers = int(plan["n_layers"])
    figures.pruned_layer_map(by_budget, n_layers, out_path, title)


def compare_statistics(views: Sequence[Mapping[str, str]], inputs: Mapping[str, Sequence[str | Path]],
                       methods_: Sequence[str], budgets: Sequence[int], budget: int,
                       out_csv: str | Path, out_png: str | Path) -> None:
    """Stage 9: how RLS, K, the clusters and the plans move with the similarity statistic (issue 13 §2).

    ``views`` lists the compared views (``model``, ``calib``, ``statistic``, ``view``; each model and
    calibration's statistics in a row, the reference first), ``inputs`` their ``rls``, ``cosine`` and
    ``summary`` files in that order and their ``plans`` (``methods_`` x ``budgets`` per view). Writes the
    long table (:func:`lorp.tables.statistics_table`) and a grid of heatmaps with the plans at ``budget``.
    """
    n_plans = len(methods_) * len(budgets)
    rows: list[dict[str, Any]] = []
    panels: dict[str, list[dict[str, Any]]] = {}
    for i, v in enumerate(views):
        rls, summary = read_json(inputs["rls"][i]), read_json(inputs["summary"][i])
        plans = [read_json(p) for p in inputs["plans"][i * n_plans:(i + 1) * n_plans]]
        common = {"model": v["model"], "calib": v["calib"], "statistic": v["statistic"], "rls": float(rls["rls"]),
                  "k": int(rls["k"]), "clusters": tables.cluster_spans(rls["labels"]),
                  "excluded_dimensions": len(summary["excluded_dimensions"])}
        rows += [{**common, "method": p["method"], "budget": int(p["budget"]), "pruned": p["pruned"]} for p in plans]
        panels.setdefault(f"{v['model']}/{v['calib']}", []).append({
            "statistic": v["statistic"], "matrix": np.load(inputs["cosine"][i]), "labels": rls["labels"],
            "rls": float(rls["rls"]), "k": int(rls["k"]),
            "pruned": {p["method"]: p["pruned"] for p in plans if int(p["budget"]) == budget}})
    table = tables.statistics_table(rows, views[0]["statistic"])
    write_text(out_csv, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    figures.statistics_grid(panels, out_png, budget)


def analyse_sensitivity(params: Mapping[str, Any], inputs: Mapping[str, Sequence[str | Path]],
                        outputs: Mapping[str, str | Path], model: str) -> None:
    """Stage 9: how stable the structure and the plans of ``model`` are under the calibration (issue 13 §1).

    ``params`` is :func:`lorp.workflow.config.sensitivity_params`; ``inputs`` holds, view by view (the reference
    first), the ``rls``, ``summary`` and ``per_sequence`` files and the ``plans`` (methods x budgets per view).
    Writes ``stability`` (every plan of every view and its Jaccard similarity to the reference's), ``rls`` (RLS
    and K per view, with the bootstrap's interval and mean Jaccard where it ran), ``selection`` (how often each
    layer is pruned, per view, method and budget) and their figures.
    """
    views, methods_, budgets = params["views"], params["methods"], [int(b) for b in params["budgets"]]
    boot = params["bootstrap"]
    n_plans = len(methods_) * len(budgets)
    plans = [[read_json(p) for p in inputs["plans"][i * n_plans:(i + 1) * n_plans]] for i in range(len(views))]
    reference = {(p["method"], int(p["budget"])): p["pruned"] for p in plans[0]}
    stability, rls_rows, selection = [], [], []
    for i, v in enumerate(tqdm(views, desc="sensitivity", unit="view")):
        rls, summary = read_json(inputs["rls"][i]), read_json(inputs["summary"][i])
        label = {"model": model, "variation": v["variation"], "calib": v["view"], "n_samples": v["n_samples"],
                 "seqlen": v["seqlen"], "n_tokens": summary["n_tokens"], "source": v["source"], "seed": v["seed"],
                 "tokens_per_sequence": v["tokens_per_sequence"] or "all", "statistic": v["statistic"]}
        own = {(p["method"], int(p["budget"])): p["pruned"] for p in plans[i]}
        for (method, budget), pruned in own.items():
            stability.append({**label, "rls": float(rls["rls"]), "k": int(rls["k"]), "method": method,
                              "budget": budget, "pruned": " ".join(map(str, pruned)),
                              "jaccard_to_reference": sensitivity.jaccard(pruned, reference[(method, budget)])})
        sums = np.load(inputs["per_sequence"][i])
        result = None
        if boot["resamples"] and len(sums["extended"]):
            result = sensitivity.bootstrap(sums["extended"], sums["last_token"], int(sums["tokens_per_sequence"]),
                                           methods_, budgets, params["structure"], boot["resamples"], boot["seed"],
                                           reference=own)
        lo, hi = sensitivity.percentile_interval(result.rls, boot["confidence"]) if result else (np.nan, np.nan)
        row = {**label, "rls": float(rls["rls"]), "k": int(rls["k"]), "rls_low": lo, "rls_high": hi,
               "confidence": boot["confidence"] if result else np.nan, "resamples": boot["resamples"] if result else 0,
               "k_values": " ".join(f"{k}:{c}" for k, c in zip(*np.unique(result.k, return_counts=True)))
               if result else str(rls["k"])}
        for method in methods_:
            row[f"jaccard_{method}"] = float(np.mean([sensitivity.jaccard(own[(method, b)], reference[(method, b)])
                                                      for b in budgets]))
            row[f"bootstrap_jaccard_{method}"] = (float(np.mean([result.jaccard[(method, b)].mean() for b in budgets]))
                                                  if result else np.nan)
        rls_rows.append(row)
        n_blocks = len(rls["labels"])
        for (method, budget), pruned in own.items():
            freq = result.frequency[(method, budget)] if result else np.isin(np.arange(n_blocks), pruned).astype(float)
            selection += [{"model": model, "variation": v["variation"], "calib": v["view"], "method": method,
                           "budget": budget, "layer": layer, "frequency": float(freq[layer]),
                           "from": "bootstrap" if result else "plan"} for layer in range(n_blocks)]
    import pandas as pd

    for key, rows in (("stability", stability), ("rls", rls_rows), ("selection", selection)):
        write_text(outputs[key], pd.DataFrame(rows).to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    figures.sensitivity_rls(rls_rows, outputs["rls_png"], model)
    figures.sensitivity_stability(rls_rows, list(methods_), outputs["stability_png"], model)
    figures.selection_map(selection, list(methods_), int(params["budget"]), outputs["selection_png"], model)


def summarise_auto(plan_paths: Sequence[str | Path], labels: Sequence[Mapping[str, Any]], ppl_table_csv: str | Path,
                   out_csv: str | Path, out_md: str | Path) -> None:
    """Stage 8: which candidate ``auto`` picked for every model, calibration and budget, and how it fares on
    the held-out windows and on the evaluation sets (:func:`lorp.tables.auto_table`)."""
    import pandas as pd

    table = tables.auto_table([read_json(p) for p in plan_paths], labels,
                              pd.read_csv(ppl_table_csv, keep_default_na=False))
    write_text(out_csv, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    shown = table.drop(columns=["candidates"])
    write_text(out_md, tables.to_markdown(
        shown, "auto: the plan of lowest held-out perplexity",
        "held_out_ppl: on calibration windows no other stage saw, where auto is no worse than the best single "
        "method (best_single_*) by construction; auto_mean_ppl: on the evaluation sets, which it never saw, with "
        "the best single method there and auto's rank among them (1 = best). Every candidate's score: auto.csv."))


def summarise_seeds(table_paths: Mapping[str, str | Path], groups: Mapping[str, str], out_csv: str | Path,
                    out_md: str | Path) -> None:
    """Stage 8: Table 2's mean perplexity (and Table 3's mean accuracy, where ``table_paths`` has ``tasks``)
    pooled over the calibration seeds (:func:`lorp.tables.seeds_table`), per model, entry, method and budget."""
    import pandas as pd

    frames = []
    for kind, value in (("ppl", "mean_ppl"), ("tasks", "mean_acc")):
        if kind in table_paths:
            table = pd.read_csv(table_paths[kind], keep_default_na=False)
            frames.append(tables.seeds_table(table[table["method"] != "dense"], value, groups))
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame, on=["model", "calib", "method", "budget", "n_seeds"], how="outer")
    write_text(out_csv, merged.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out_md, tables.to_markdown(
        merged, "over calibration seeds",
        "Every calibration entry run with its own seed and evaluation.seeds: the mean of each plan's mean perplexity "
        "(and accuracy) over the seeds, its sample standard deviation, and the extremes."))


def draw_locality(entries: Mapping[str, tuple[str | Path, str | Path]], out_path: str | Path) -> None:
    """Stage 9: mean similarity against normalised layer distance; ``entries`` maps a label to (cosine, rls.json)."""
    curves = {label: (np.load(cos), float(read_json(rls)["rls"])) for label, (cos, rls) in entries.items()}
    figures.locality_curves(curves, out_path)


def draw_metric_vs_budget(table_csv: str | Path, kind: str, out_path: str | Path,
                          seed_groups: Mapping[str, str] | None = None) -> None:
    """Stage 9: mean perplexity (``kind='ppl'``) or mean accuracy (``kind='tasks'``) against the budget,
    pooled over the calibration seeds of ``seed_groups`` (mean and standard deviation) where given."""
    import pandas as pd

    table = pd.read_csv(table_csv, keep_default_na=False)
    table = table[~tables.is_sparse(table["method"])]  # the depth methods: budget in blocks
    if kind == "ppl":
        figures.metric_vs_budget(table, "mean_ppl", out_path, "mean perplexity (log scale)", "perplexity vs budget",
                                 log=True, seed_groups=seed_groups)
    else:
        figures.metric_vs_budget(table, "mean_acc", out_path, "mean zero-shot accuracy (%)", "accuracy vs budget",
                                 seed_groups=seed_groups)


def summarise_k_ablation(ppl_paths: Sequence[str | Path], rls_paths: Mapping[str, str | Path],
                         out_csv: str | Path, out_png: str | Path) -> None:
    """Stage 9: the K ablation, mean perplexity of LoRP per model, K and budget (CSV) and its figure.

    ``rls_paths`` maps ``model/calib`` to the rls.json of its automatic K, marked in the figure.
    """
    from .config import ablation_k

    frame = tables.long_frame(ppl_paths, ["model", "calib", "method", "budget", "dataset"])
    frame["k"] = [ablation_k(m) for m in frame["method"]]
    table = (frame.groupby(["model", "calib", "k", "budget", "n_layers"], as_index=False)["ppl"].mean()
             .rename(columns={"ppl": "mean_ppl"}).sort_values(["model", "calib", "budget", "k"], kind="stable"))
    write_text(out_csv, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    auto = {label: int(read_json(p)["k"]) for label, p in rls_paths.items()}
    figures.k_ablation(table.assign(model=table["model"] + "/" + table["calib"]), out_png, auto)


# ------------------------------------------------------------------------------- sparse family (MRP)
def capture_norms(model_dir: str | Path, tokens_path: str | Path, out_dir: str | Path, compute: Mapping[str, Any],
                  batch_size: int) -> dict[str, Any]:
    """Sparse stage 1: the input norms ``||X_j||_2`` of every linear layer of every block over the
    calibration tokens, from one forward pass of the dense model; one ``.npy`` per layer and a manifest."""
    from .. import models
    from ..sparse.norms import dense_input_norms, norm_file

    model, _, _ = models.load_for(model_dir, compute)
    tokens = np.load(tokens_path)
    with tqdm(total=len(tokens), desc="input norms", unit="seq") as bar:
        norms = dense_input_norms(model, tokens, batch_size=int(batch_size), progress=bar.update)
    manifest = {"n_blocks": len(norms), "layers": {name: len(v) for name, v in norms[0].items()},
                "n_tokens": int(tokens.size), "dtype": "float64", "file_pattern": norm_file(0, "<layer>")}
    with atomic_path(out_dir, directory=True) as tmp:
        for b, block in enumerate(norms):
            for name, values in block.items():
                write_npy(tmp / norm_file(b, name), values)
        write_json(tmp / "manifest.json", manifest)
    return manifest


def _raw_scores(model_dir: str | Path, metric: str, norms_dir: str | Path | None) -> Iterator[dict[str, Any]]:
    """Every block's scores of the dense model, one block at a time (weights as stored; norms for Wanda)."""
    import torch

    from .. import models
    from ..sparse.norms import block_linears, read_norms
    from ..sparse.scores import scores

    model, _, _ = models.load(model_dir, "cpu", "stored")
    norms = read_norms(norms_dir) if norms_dir else None
    for b, block in enumerate(models.get_decoder_layers(model)):
        yield {name: scores(lin.weight, metric, torch.from_numpy(norms[b][name]) if norms else None)
               for name, lin in block_linears(block).items()}


def _block_scores(model_dir: str | Path, metric: str, norms_dir: str | Path | None) -> Any:
    """The blocks' scores of the dense model as a sequence that scores and sorts a block when it is
    accessed (one block's sorted scores in memory at a time)."""
    from .. import models
    from ..sparse.norms import read_norms
    from ..sparse.redundancy import ModelScores

    model, _, _ = models.load(model_dir, "cpu", "stored")
    return ModelScores(models.get_decoder_layers(model), metric, read_norms(norms_dir) if norms_dir else None)


def measure_outliers(model_dir: str | Path, norms_dir: str | Path | None, metric: str, params: Mapping[str, Any],
                     out_path: str | Path) -> dict[str, Any]:
    """Sparse stage 2: every block's outlier and non-outlier ratio on the dense model for one metric
    (``params``: ``outlier_m``, ``count_zeros``), with its parameter count, as ``outliers.json``."""
    from ..sparse.plan import dense_outliers

    blocks = dense_outliers(_raw_scores(model_dir, metric, norms_dir), params["outlier_m"], params["count_zeros"])
    result = {"metric": metric, **params, "n_params": sum(b["n_params"] for b in blocks), "blocks": blocks}
    write_json(out_path, result)
    return result


def make_sparse_plan(metric: str, allocation: str, target_percent: int, model_dir: str | Path, out_path: str | Path,
                     params: Mapping[str, Any], outliers_path: str | Path | None = None,
                     norms_dir: str | Path | None = None) -> Any:
    """Sparse stage 3: per-block and per-linear sparsity of one metric, allocation and target (percent).
    ``uniform`` and N:M (``2of4``) need only the layers' shapes (the model on the meta device), ``owl`` the dense outlier
    ratios (``outliers_path``, with ``params['owl_lambda']``), and ``mrp`` runs its loop on the blocks'
    scores (``model_dir``, and ``norms_dir`` for Wanda) with ``params``: outlier_m, count_zeros and mrp."""
    from .. import models
    from ..sparse import plan as sp
    from ..sparse.norms import block_shapes

    target = int(target_percent) / 100
    nm = sp.parse_nm(allocation)
    if nm:
        result = sp.nm_plan(metric, *nm, block_shapes(models.meta_model(model_dir)))
    elif allocation == "uniform":
        result = sp.uniform_plan(metric, target, block_shapes(models.meta_model(model_dir)))
    elif allocation == "owl":
        result = sp.owl_plan(metric, target, read_json(outliers_path)["blocks"], params["owl_lambda"])
    else:
        mrp = params["mrp"]
        settings = sp.MRPSettings(mrp["start_below"] / 100, mrp["step"] / 100, mrp["upper"] / 100, mrp["granularity"])
        result = sp.mrp_plan(metric, target, _block_scores(model_dir, metric, norms_dir), params["outlier_m"],
                             params["count_zeros"], settings)
    print(f"{result.method} at {target:.0%}: block sparsities {min(result.blocks):.3f}..{max(result.blocks):.3f}, "
          f"model {result.model_sparsity:.6f}" + (f", {len(result.trajectory)} MRP steps" if result.trajectory else ""))
    write_json(out_path, result.to_dict())
    return result


def prune_sparse(model_dir: str | Path, plan_path: str | Path, norms_out: str | Path, measured_path: str | Path,
                 pruning: Mapping[str, Any], labels: Mapping[str, Any], norms_dir: str | Path | None = None,
                 tokens_path: str | Path | None = None, batch_size: int = 8) -> dict[str, Any]:
    """Sparse stage 4: prune the model in memory to a plan, each linear layer's lowest-scoring weights of
    every row set to zero, and write what any later stage needs to rebuild it exactly: the norms each block
    was pruned with (``norms_out``, :func:`lorp.sparse.norms.write_pruning_norms`) and the measured
    sparsity of every layer (``measured_path``). ``pruning['norms']`` is ``dense`` (the norms stage's, from
    ``norms_dir``), ``sequential`` (Wanda's protocol on ``tokens_path``) or ``none`` (magnitude); the
    model is pruned on ``pruning['compute']``, in the dtype the evaluations run in, so that their rebuild
    scores the same weights. ``labels`` (model, calib) name the model in ``measured_path``. No checkpoint
    is written (that is :func:`export_sparse_checkpoint`)."""
    from .. import models
    from ..sparse.norms import read_norms, write_pruning_norms
    from ..sparse.plan import SparsePlan
    from ..sparse.prune import measure_pruned, prune_to_plan

    plan = SparsePlan.from_dict(read_json(plan_path))
    sequential = pruning["norms"] == "sequential"
    compute = pruning["compute"]
    model, _, _ = models.load_for(model_dir, compute)
    dense_norms = read_norms(norms_dir) if pruning["norms"] == "dense" else None
    with tqdm(total=len(plan.blocks), desc=f"prune {plan.method} {plan.percent}%", unit="block") as bar:
        used = prune_to_plan(model, plan, norms=dense_norms, tokens=np.load(tokens_path) if sequential else None,
                             batch_size=int(batch_size), progress=bar.update)
    measured = {**labels, **measure_pruned(model, plan), "norms": pruning["norms"],
                "dtype": models.dtype_name(next(model.parameters()).dtype)}
    short = [(x["block"], name) for x in measured["blocks"] for name, v in x["linears"].items() if v["row_shortfall"]]
    if short:
        raise RuntimeError(f"rows of {short[:3]} have fewer zeros than planned: the masks did not apply")
    print(f"measured sparsity {measured['model_sparsity']:.6f} (planned {measured['planned_sparsity']:.6f})")
    write_pruning_norms(norms_out, used)
    write_json(measured_path, measured)
    return measured


def export_checkpoint(sources: Mapping[str, str | Path], out_dir: str | Path, compute: Mapping[str, Any]) -> None:
    """Stage 6 (on request, ``checkpoints.export``): the pruned model as a Hugging Face directory in the dtype
    the prepared model is stored in, with its plan (``plan.json``) and, for a sparse plan, its measured
    sparsity (``sparsity.json``). The model is the one the evaluations measure (:func:`load_evaluated`):
    reloading the directory gives the same logits."""
    from .. import models

    model, tokenizer = load_evaluated(sources, compute)
    manifest = read_json(Path(sources["model"]) / "model.json")
    plan, _, measured = _plan_sources(sources)
    model.to(models.select_dtype(_stored_dtype(sources["model"]), _device(model)))
    records = {"plan.json": {**plan, "source_model": manifest["source"]}}
    if measured is not None:
        records["sparsity.json"] = measured
    models.save_checkpoint(model, tokenizer, out_dir, records)


def assess_redundancy(model_dir: str | Path, norms_dir: str | Path | None, metric: str,
                      plan_paths: Sequence[str | Path], params: Mapping[str, Any], out_path: str | Path,
                      labels: Mapping[str, Any]) -> list[dict]:
    """Sparse stage 5: every plan's per-block non-outlier ratio after pruning, with the dense norms, and
    its standard deviation (``params``: outlier_m, count_zeros), as ``redundancy.json`` (``labels``:
    model and calib)."""
    from ..sparse.plan import SparsePlan, redundancy_after

    plans = [SparsePlan.from_dict(read_json(p)) for p in plan_paths]
    rows = redundancy_after(plans, _block_scores(model_dir, metric, norms_dir), params["outlier_m"],
                            params["count_zeros"])
    for row in rows:
        print(f"{row['method']} {row['budget']}%: non-outlier ratio std {row['non_outlier_std']:.4f}")
    write_json(out_path, {**labels, "metric": metric, **params, "plans": rows})
    return rows


class _Progress(collections.abc.Sequence):
    """A sequence that reports each item it hands out (a progress bar over a lazy pass)."""

    def __init__(self, items: Sequence, update: Any):
        self.items, self.update = items, update

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: Any) -> Any:
        item = self.items[i]
        self.update(1)
        return item


def sweep_mrp(model_dir: str | Path, norms_dir: str | Path | None, metric: str, targets: Sequence[int],
              params: Mapping[str, Any], sweep: Mapping[str, Sequence[float]], out_json: str | Path,
              out_png: str | Path, title: str) -> list[dict]:
    """Sparse stage 6: MRP's allocation for every M and step of ``sweep`` (the configured value where a
    list is empty) at every target: per-block sparsities, steps taken and the spread of the non-outlier
    ratios, with uniform's spread at the same M for reference; ``sweep.json`` and its figure."""
    from ..sparse import plan as sp

    blocks = _block_scores(model_dir, metric, norms_dir)
    mrp, count_zeros = params["mrp"], params["count_zeros"]
    ms = list(sweep["outlier_m"]) or [params["outlier_m"]]
    steps = list(sweep["step"]) or [mrp["step"]]
    targets = sorted(int(t) for t in targets)

    def settings(step: float) -> Any:
        return sp.MRPSettings(mrp["start_below"] / 100, step / 100, mrp["upper"] / 100, mrp["granularity"])

    grid = {0.0, *(t / 100 for t in targets)}
    grid |= {s for t in targets for step in steps for s in sp.mrp_grid(t / 100, settings(step))}
    with tqdm(total=len(blocks), desc="MRP sweep: ratios", unit="block") as bar:
        units = sp.measure_units(_Progress(blocks, bar.update), mrp["granularity"], {m: grid for m in ms}, count_zeros)
    runs = [(t, m, step, sp.mrp_plan(metric, t / 100, blocks, m, count_zeros, settings(step), units=units))
            for t in targets for m in ms for step in steps]
    after: list[list[float]] = [[] for _ in runs]  # every run's block ratios after pruning, in one pass
    for b in range(len(blocks)):
        block = blocks[b]
        for i, (_, m, _, plan) in enumerate(runs):
            after[i].append(1.0 - block.outlier_ratio(plan.linears[b], m, count_zeros))
    rows = []
    for (t, m, step, plan), ratios in zip(runs, after):
        uniform = [1.0 - curve[round(t / 100, 9)] for curve in units.block_curves[m]]
        rows.append({"target": t, "outlier_m": m, "step": step, "iterations": len(plan.trajectory),
                     "sparsities": plan.blocks, "non_outlier_std": float(np.std(ratios)),
                     "uniform_non_outlier_std": float(np.std(uniform))})
    write_json(out_json, {"metric": metric, "configured": {"outlier_m": params["outlier_m"], "step": mrp["step"]},
                          "runs": rows})
    figures.mrp_sweep(rows, params["outlier_m"], mrp["step"], out_png, title)
    return rows


def summarise_sparsity(ppl_paths: Sequence[str | Path], measured_paths: Sequence[str | Path],
                       redundancy_paths: Sequence[str | Path], out_csv: str | Path, out_table: str | Path,
                       out_md: str | Path) -> None:
    """Sparse stage 7: the sparsity table (metric x allocation by target) from the dense and sparse
    ``ppl.csv`` files, the measured sparsity of every checkpoint and the spread of its non-outlier ratios."""
    import pandas as pd

    rows = []
    for path in measured_paths:
        m = read_json(path)
        rows.append({"model": m["model"], "calib": m["calib"], "method": m["method"], "budget": int(m["budget"]),
                     "measured_sparsity": m["model_sparsity"]})
    stds = {}
    for path in redundancy_paths:
        r = read_json(path)
        stds.update({(r["model"], r["calib"], p["method"], int(p["budget"])): p["non_outlier_std"] for p in r["plans"]})
    measured = pd.DataFrame(rows, columns=["model", "calib", "method", "budget", "measured_sparsity"])
    measured["non_outlier_std"] = [stds.get(k) for k in zip(measured["model"], measured["calib"], measured["method"],
                                                             measured["budget"])]
    long = tables.sparsity_long(tables.long_frame(ppl_paths, tables.SUMMARY_ORDER["sparsity"]), measured)
    table = tables.sparsity_table(long)
    title, note = tables.SUMMARY_NOTES["sparsity"]
    write_text(out_csv, long.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out_table, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out_md, tables.to_markdown(table, title, note))


def draw_sparsity(plan_paths: Sequence[str | Path], redundancy_paths: Sequence[str | Path], out_path: str | Path,
                  title: str) -> None:
    """Sparse figure per model: every plan's per-block sparsity and non-outlier ratio after pruning."""
    profiles: dict[str, dict[int, list[float]]] = {}
    for path in plan_paths:
        plan = read_json(path)
        profiles.setdefault(plan["method"], {})[int(plan["budget"])] = plan["blocks"]
    after: dict[str, dict[int, tuple[list[float], float]]] = {}
    for path in redundancy_paths:
        for p in read_json(path)["plans"]:
            after.setdefault(p["method"], {})[int(p["budget"])] = (p["non_outlier_ratio"], p["non_outlier_std"])
    figures.sparsity_profiles(profiles, after, out_path, title)


def draw_metric_vs_sparsity(long_csv: str | Path, out_path: str | Path) -> None:
    """Sparse figure across models: mean perplexity against the target sparsity, one line per metric and
    allocation, dense dashed."""
    import pandas as pd

    frame = pd.read_csv(long_csv, keep_default_na=False).rename(columns={"target": "budget"})
    figures.metric_vs_budget(frame, "mean_ppl", out_path, "mean perplexity (log scale)", "perplexity vs sparsity",
                             log=True, xlabel="target sparsity (%)")
