"""The paper's tables from the per-model evaluation rows, with the dense row and the change against it.

* Table 2 (:func:`perplexity_table`): perplexity per dataset and their mean, per model x calibration x
  method x budget; ``change_%`` is the relative change of the mean against the same model's dense row.
* Table 3 (:func:`task_table`): zero-shot accuracy per task (``acc_norm`` where the task reports it,
  else ``acc``, as in the paper) and the mean; ``change`` is the difference of the mean against dense,
  in accuracy points.
* Efficiency (:func:`efficiency_table`): parameters, weight bytes, peak memory, prefill throughput
  and decode latency, with ratios against dense.
* Sparsity (:func:`sparsity_long` and :func:`sparsity_table`): mean perplexity of every metric x
  allocation (rows) at every target sparsity (columns), as Wanda's and OWL's papers report it, with the
  measured sparsity and the spread of the blocks' non-outlier ratios after pruning.

Table 2 holds the depth methods; the sparse methods (``<metric>-<allocation>``, budget = target in %)
have the sparsity table. Tables 3 and efficiency hold both, each sparse row's budget being its target.

Every function takes and returns a :class:`pandas.DataFrame`; :func:`to_markdown` renders one.
The columns of the per-job CSV files (``ppl.csv``, ``tasks.csv``, ``efficiency.csv``) and the titles
and notes of the summary tables are declared here too.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .depth.sensitivity import jaccard
from .sparse.names import parse_method

KEYS = ["model", "calib", "method", "budget", "n_layers"]

PPL_COLUMNS = ("model", "calib", "method", "budget", "n_layers", "dataset", "seqlen", "prefix_tokens", "n_windows",
               "n_tokens", "nll", "ppl", "base_model", "plan")
TASK_COLUMNS = ("model", "calib", "method", "budget", "n_layers", "task", "metric", "value", "stderr",
                "n_examples", "n_available", "limit", "base_model", "plan")
EFFICIENCY_COLUMNS = ("model", "calib", "method", "budget", "n_layers", "n_params", "n_nonzero", "weights_bytes", "device",
                      "dtype", "batch_size", "seqlen", "decode_tokens", "warmup", "repeats", "prefill_ms",
                      "prefill_ms_min", "prefill_ms_max", "prefill_tokens_per_s", "decode_ms_per_token",
                      "decode_ms_per_token_min", "decode_ms_per_token_max", "prefill_speedup", "prefill_speedup_min",
                      "prefill_speedup_max", "decode_speedup", "decode_speedup_min", "decode_speedup_max",
                      "peak_memory_mib", "memory_measure", "base_model", "plan")


def rows_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV text of ``rows`` with exactly ``columns`` (floats with six decimals)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def matrix_csv(matrix: np.ndarray) -> str:
    """A layer x layer matrix as CSV text with a header row and a first column of layer indices."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["layer"] + list(range(matrix.shape[1])))
    for i, row in enumerate(matrix):
        writer.writerow([i] + [f"{v:.6f}" for v in row])
    return buf.getvalue()


def long_frame(csv_paths: Sequence[str | Path], order: Sequence[str]) -> pd.DataFrame:
    """The rows of several per-job CSV files in one frame, sorted by ``order`` (dense rows have budget 0)."""
    frame = pd.concat([pd.read_csv(p, keep_default_na=False) for p in csv_paths], ignore_index=True)
    frame["budget"] = pd.to_numeric(frame["budget"], errors="coerce").fillna(0).astype(int)
    return frame.sort_values(list(order), kind="stable").reset_index(drop=True)


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    """Dense first within each model, then by calibration, method (config order kept by stable sort) and budget."""
    frame = frame.copy()
    frame["_dense"] = frame["method"] != "dense"
    frame = frame.sort_values(["model", "_dense", "calib", "method", "budget"], kind="stable")
    return frame.drop(columns="_dense").reset_index(drop=True)


def _dense_value(frame: pd.DataFrame, column: str) -> pd.Series:
    dense = frame[frame["method"] == "dense"].set_index("model")[column]
    dense = dense[~dense.index.duplicated()]
    return frame["model"].map(dense)


def is_sparse(methods: pd.Series) -> pd.Series:
    """Which rows are of sparse methods (``wanda-mrp``), not depth methods or dense."""
    return methods.map(lambda m: parse_method(m) is not None).astype(bool)


def sparse_and_dense(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a table (perplexity or zero-shot) of the sparse methods and the dense model: no depth
    method, no recovered model."""
    return table[is_sparse(table["method"]) | (table["method"] == "dense")]


def perplexity_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 2 from long perplexity rows (one per model, calib, method, budget, dataset); the depth
    methods and dense only (the sparse ones are in :func:`sparsity_table`)."""
    rows = rows[~is_sparse(rows["method"])]
    table = rows.pivot_table(index=KEYS, columns="dataset", values="ppl", aggfunc="first")
    datasets = list(table.columns)
    table["mean_ppl"] = table[datasets].mean(axis=1)
    table = _sort(table.reset_index())
    table.columns.name = None
    dense = _dense_value(table, "mean_ppl")
    table["change_%"] = 100.0 * (table["mean_ppl"] / dense - 1.0)
    return table


def primary_metric(metrics: set[str]) -> str:
    """The metric a task is reported with: ``acc_norm`` when the task has it, else ``acc``."""
    return "acc_norm" if "acc_norm" in metrics else "acc"


def task_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 3 from long task rows (one per model, calib, method, budget, task, metric); accuracies in %.

    ``mean_acc_stderr`` is the standard error of the mean accuracy from lm-eval's per-task standard errors
    (``stderr``), the tasks' samples being independent: ``sqrt(sum se_t^2) / n_tasks``; empty where a task has
    none (rows without the column, or lm-eval's bootstrap skipped)."""
    chosen = []
    for task, group in rows.groupby("task", sort=False):
        chosen.append(group[group["metric"] == primary_metric(set(group["metric"]))])
    picked = pd.concat(chosen, ignore_index=True)
    table = picked.pivot_table(index=KEYS, columns="task", values="value", aggfunc="first") * 100.0
    tasks = [t for t in dict.fromkeys(rows["task"]) if t in table.columns]
    table = table[tasks]
    table["mean_acc"] = table[tasks].mean(axis=1)
    errors = picked.assign(stderr=pd.to_numeric(picked.get("stderr", pd.Series(index=picked.index, dtype=float)),
                                                errors="coerce") * 100.0)
    se = errors.pivot_table(index=KEYS, columns="task", values="stderr", aggfunc="first", dropna=False)
    se = se.reindex(index=table.index, columns=tasks)
    table["mean_acc_stderr"] = (se**2).sum(axis=1, min_count=len(tasks)) ** 0.5 / len(tasks)
    table = _sort(table.reset_index())
    table.columns.name = None
    table["change"] = table["mean_acc"] - _dense_value(table, "mean_acc")
    return table


SPEEDUPS = ["prefill_speedup", "prefill_speedup_min", "prefill_speedup_max", "decode_speedup",
            "decode_speedup_min", "decode_speedup_max"]


def efficiency_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Efficiency table: sizes, memory and speed, with ratios against the dense model. The speed-ups are
    the ones each row measured against the dense model in the same job (median of paired rounds, with the
    smallest and largest round), not ratios of the rows' own throughputs, which were timed at other moments."""
    cols = KEYS + ["n_params", "n_nonzero", "weights_bytes", "peak_memory_mib", "prefill_tokens_per_s",
                   "decode_ms_per_token", "device", "dtype"]
    table = _sort(rows.reindex(columns=cols + SPEEDUPS))
    speed = table[SPEEDUPS]
    table = table[cols].copy()
    table["params_ratio"] = table["n_params"] / _dense_value(table, "n_params")
    table["nonzero_ratio"] = pd.to_numeric(table["n_nonzero"], errors="coerce") / pd.to_numeric(
        _dense_value(table, "n_nonzero"), errors="coerce")
    return pd.concat([table, speed], axis=1)


def to_markdown(table: pd.DataFrame, title: str, note: str = "", floatfmt: str = ".3f") -> str:
    """A Markdown section: title, an explanatory note, and the table (GitHub pipe format)."""
    body = table.to_markdown(index=False, floatfmt=floatfmt, tablefmt="pipe")
    parts = [f"# {title}", ""]
    if note:
        parts += [note, ""]
    return "\n".join(parts + [body, ""])


def sparsity_long(ppl_rows: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """One row per model, calib, sparse method and target: metric, allocation, mean perplexity over the
    datasets, its change against dense (%), and from ``measured`` (model, calib, method, budget,
    measured_sparsity, non_outlier_std) what the checkpoint holds; the dense rows first (target 0)."""
    mean = ppl_rows.groupby(["model", "calib", "method", "budget"], sort=False, as_index=False)["ppl"].mean()
    mean = mean.rename(columns={"ppl": "mean_ppl"})
    dense = mean[mean["method"] == "dense"].drop(columns=["calib"])
    sparse = mean[is_sparse(mean["method"])].merge(measured, on=["model", "calib", "method", "budget"], how="left")
    sparse["metric"] = [parse_method(m)[0] for m in sparse["method"]]
    sparse["allocation"] = [parse_method(m)[1] for m in sparse["method"]]
    dense_ppl = dense.set_index("model")["mean_ppl"]
    sparse["change_%"] = 100.0 * (sparse["mean_ppl"] / sparse["model"].map(dense_ppl) - 1.0)
    dense = dense.assign(calib="-", metric="-", allocation="dense", change_=0.0).rename(columns={"change_": "change_%"})
    cols = ["model", "calib", "method", "metric", "allocation", "budget", "mean_ppl", "change_%", "measured_sparsity",
            "non_outlier_std"]
    frame = pd.concat([dense, sparse], ignore_index=True).reindex(columns=cols)
    frame["_dense"] = frame["method"] != "dense"
    return frame.sort_values(["model", "_dense", "calib", "metric", "allocation", "budget"],
                             kind="stable").drop(columns="_dense").rename(columns={"budget": "target"}).reset_index(drop=True)


def sparsity_table(long: pd.DataFrame) -> pd.DataFrame:
    """The sparsity table: per model, calib, metric and allocation (rows; dense first), the mean
    perplexity at every target (``ppl_<t>``) and the spread of the non-outlier ratios (``std_<t>``)."""
    sparse = long[long["method"] != "dense"]
    targets = sorted(int(t) for t in sparse["target"].unique())
    keys = ["model", "calib", "metric", "allocation"]
    ppl = sparse.pivot_table(index=keys, columns="target", values="mean_ppl", aggfunc="first", sort=False)
    std = sparse.pivot_table(index=keys, columns="target", values="non_outlier_std", aggfunc="first", sort=False)
    table = pd.concat([ppl.rename(columns=lambda t: f"ppl_{t}"), std.rename(columns=lambda t: f"std_{t}")], axis=1)
    table = table.reset_index()
    table.columns.name = None
    dense = long[long["method"] == "dense"]
    rows = [{"model": r.model, "calib": "-", "metric": "-", "allocation": "dense", **{f"ppl_{t}": r.mean_ppl for t in targets}}
            for r in dense.itertuples()]
    table = pd.concat([pd.DataFrame(rows), table], ignore_index=True)
    table["_dense"] = table["allocation"] != "dense"
    table = table.sort_values(["model", "_dense"], kind="stable").drop(columns="_dense")
    return table.reindex(columns=keys + [f"ppl_{t}" for t in targets] + [f"std_{t}" for t in targets]).reset_index(drop=True)


SUMMARY_ORDER = {"ppl": ["model", "dataset", "calib", "method", "budget"],
                 "sparsity": ["model", "dataset", "calib", "method", "budget"],
                 "tasks": ["model", "task", "metric", "calib", "method", "budget"],
                 "efficiency": ["model", "calib", "method", "budget"]}
"""The row order of each summary's long CSV."""

SUMMARY_NOTES = {
    "ppl": ("Perplexity (paper Table 2)",
            "Perplexity per dataset (lower is better) and their mean; `change_%` is the relative change of the "
            "mean against the same model's dense row (method `dense`, budget 0)."),
    "tasks": ("Zero-shot accuracy (paper Table 3)",
              "Accuracy in % per task (acc_norm where the task reports it, else acc; lm-evaluation-harness, "
              "0-shot) and their mean; `mean_acc_stderr` is the mean's standard error from lm-eval's per-task "
              "standard errors (sqrt of the sum of their squares over the number of tasks); `change` is the "
              "difference of the mean against the dense row, in points. "
              "A sparse method's budget is its target sparsity (%)."),
    "efficiency": ("Efficiency",
                   "Parameters (and those not zero), weight bytes, peak memory (MiB), prefill throughput (tokens/s) "
                   "and decode latency (ms/token), measured on the device each job ran on; ratios against dense "
                   "(`nonzero_ratio`: nonzero weights against the dense model's). Each pruned model was timed "
                   "alternately with its dense model in one job: a speed-up is the median of the paired rounds' "
                   "ratios, `_min` and `_max` the smallest and largest round. "
                   "A sparse method's budget is its target sparsity (%): its zeros are stored and multiplied "
                   "like any weight, so it is no faster or smaller on dense kernels."),
    "sparsity": ("Unstructured sparsity (Wanda / OWL / MRP)",
                 "Mean perplexity over the evaluation datasets of every pruning metric and layer-wise allocation "
                 "(`ppl_<t>`: at a target sparsity of t% of the weights of the blocks' linear layers; the dense row "
                 "repeats the unpruned model's) and the standard deviation of the blocks' non-outlier ratios after "
                 "pruning (`std_<t>`: MRP's principle is to make it small)."),
}
"""The title and explanatory note of each summary table."""


def summary_table(kind: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The paper-style table of one ``kind`` (``ppl``, ``tasks``, ``efficiency``) from its long rows,
    and the table as a Markdown section with its title and note."""
    make = {"ppl": perplexity_table, "tasks": task_table, "efficiency": efficiency_table}[kind]
    table = make(frame)
    title, note = SUMMARY_NOTES[kind]
    if kind == "ppl" and "prefix_tokens" in frame:
        with_bos = sorted(frame.loc[frame["prefix_tokens"] > 0, "model"].unique())
        if with_bos:
            note += (" Every window starts with the tokenizer's BOS for " + ", ".join(with_bos)
                     + " (`bos_per_window`); the others follow the paper protocol, without special tokens.")
    return table, to_markdown(table, title, note, floatfmt=".3f" if kind != "efficiency" else ".4g")


STATISTICS_COLUMNS = ("model", "calib", "statistic", "rls", "k", "clusters", "excluded_dimensions", "method", "budget",
                      "pruned", "jaccard_to_reference")


def cluster_spans(labels: Sequence[int]) -> str:
    """A layer clustering as its contiguous runs, ``0-3 4-12 13-29`` (a label that recurs gives two runs)."""
    runs, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append(f"{start}-{i - 1}" if i - 1 > start else f"{start}")
            start = i
    return " ".join(runs)


def statistics_table(rows: Sequence[Mapping[str, Any]], reference: str) -> pd.DataFrame:
    """How the structure and the plans move with the similarity statistic: one row per model, calibration,
    statistic, method and budget, with the Jaccard similarity of the pruned set to the one under
    ``reference`` (the configured statistic) for the same model, calibration, method and budget."""
    frame = pd.DataFrame(list(rows))
    ref = {(r["model"], r["calib"], r["method"], r["budget"]): r["pruned"] for r in rows if r["statistic"] == reference}
    frame["jaccard_to_reference"] = [jaccard(r["pruned"], ref[(r["model"], r["calib"], r["method"], r["budget"])])
                                     for r in rows]
    frame["pruned"] = [" ".join(map(str, sorted(p))) for p in frame["pruned"]]
    return frame[list(STATISTICS_COLUMNS)]


AUTO_COLUMNS = ("model", "calib", "budget", "chosen_method", "chosen_statistic", "held_out_ppl",
                "best_single_method", "best_single_held_out_ppl", "candidates", "auto_mean_ppl",
                "best_single_eval_method", "best_single_eval_mean_ppl", "auto_eval_rank")


def auto_table(plans: Sequence[Mapping[str, Any]], labels: Sequence[Mapping[str, Any]],
               ppl_table: pd.DataFrame) -> pd.DataFrame:
    """What ``auto`` picked for every model, calibration and budget, against the single methods: on the
    held-out windows it chose by (where it is no worse than the best single method by construction) and on
    the evaluation sets it never saw (its mean perplexity, the best single method's, and its rank among
    auto and the single methods, 1 = best).

    ``plans`` are the auto plans' JSON, ``labels`` their ``model`` and ``calib``; ``ppl_table`` is Table 2
    (:func:`perplexity_table`)."""
    rows = []
    for plan, label in zip(plans, labels, strict=True):
        cands = plan["candidates"]
        main = cands[0]["statistic"]
        singles = [c for c in cands if c["statistic"] == main]
        best_single = min(singles, key=lambda c: c["held_out_ppl"])
        here = ppl_table[(ppl_table["model"] == label["model"]) & (ppl_table["calib"] == label["calib"])
                         & (ppl_table["budget"] == int(plan["budget"]))]
        means = dict(zip(here["method"], here["mean_ppl"]))
        others = {m: v for m, v in means.items() if m != "auto" and m in {c["method"] for c in cands}}
        best_eval = min(others, key=others.get) if others else ""
        auto_ppl = means["auto"]
        rows.append({
            "model": label["model"], "calib": label["calib"], "budget": int(plan["budget"]),
            "chosen_method": plan["chosen"]["method"], "chosen_statistic": plan["chosen"]["statistic"],
            "held_out_ppl": plan["chosen"]["held_out_ppl"], "best_single_method": best_single["method"],
            "best_single_held_out_ppl": best_single["held_out_ppl"],
            "candidates": " ".join(f"{c['method']}/{c['statistic']}:{c['held_out_ppl']:.3f}" for c in cands),
            "auto_mean_ppl": auto_ppl, "best_single_eval_method": best_eval,
            "best_single_eval_mean_ppl": others[best_eval] if best_eval else float("nan"),
            "auto_eval_rank": 1 + sum(v < auto_ppl for v in others.values()),
        })
    return pd.DataFrame(rows, columns=list(AUTO_COLUMNS))


def seeds_table(table: pd.DataFrame, value: str, groups: Mapping[str, str]) -> pd.DataFrame:
    """``value`` (``mean_ppl`` or ``mean_acc``) of Table 2 or 3 pooled over calibration seeds: per model,
    calibration entry (``groups`` maps each view to its entry), method and budget, the number of seeds,
    the mean, the sample standard deviation, and the extremes."""
    rows = table[table["calib"].isin(list(groups))].copy()
    rows["calib"] = rows["calib"].map(groups)
    pooled = rows.groupby(["model", "calib", "method", "budget"], sort=False)[value]
    out = pooled.agg(n_seeds="count", mean="mean", std="std", min="min", max="max").reset_index()
    return out.rename(columns={k: f"{value}_{k}" for k in ("mean", "std", "min", "max")})
