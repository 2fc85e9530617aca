"""The paper's tables from the per-model evaluation rows, with the dense row and the change against it.

* Table 2 (:func:`perplexity_table`): perplexity per dataset and their mean, per model x calibration x
  method x budget; ``change_%`` is the relative change of the mean against the same model's dense row.
* Table 3 (:func:`task_table`): zero-shot accuracy per task (``acc_norm`` where the task reports it,
  else ``acc``, as in the paper) and the mean; ``change`` is the difference of the mean against dense,
  in accuracy points.
* Efficiency (:func:`efficiency_table`): parameters, weight bytes, peak memory, prefill throughput
  and decode latency, with ratios against dense.

Every function takes and returns a :class:`pandas.DataFrame`; :func:`to_markdown` renders one.
"""

from __future__ import annotations

import pandas as pd

KEYS = ["model", "calib", "method", "budget", "n_layers"]


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


def perplexity_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 2 from long perplexity rows (one per model, calib, method, budget, dataset)."""
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
    """Table 3 from long task rows (one per model, calib, method, budget, task, metric); accuracies in %."""
    chosen = []
    for task, group in rows.groupby("task", sort=False):
        chosen.append(group[group["metric"] == primary_metric(set(group["metric"]))])
    picked = pd.concat(chosen, ignore_index=True)
    table = picked.pivot_table(index=KEYS, columns="task", values="value", aggfunc="first") * 100.0
    tasks = [t for t in dict.fromkeys(rows["task"]) if t in table.columns]
    table = table[tasks]
    table["mean_acc"] = table[tasks].mean(axis=1)
    table = _sort(table.reset_index())
    table.columns.name = None
    table["change"] = table["mean_acc"] - _dense_value(table, "mean_acc")
    return table


def efficiency_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Efficiency table: sizes, memory and speed, with ratios against the dense model."""
    cols = KEYS + ["n_params", "weights_bytes", "peak_memory_mib", "prefill_tokens_per_s", "decode_ms_per_token",
                   "device", "dtype"]
    table = _sort(rows[cols])
    table["params_ratio"] = table["n_params"] / _dense_value(table, "n_params")
    table["prefill_speedup"] = table["prefill_tokens_per_s"] / _dense_value(table, "prefill_tokens_per_s")
    table["decode_speedup"] = _dense_value(table, "decode_ms_per_token") / table["decode_ms_per_token"]
    return table


def to_markdown(table: pd.DataFrame, title: str, note: str = "", floatfmt: str = ".3f") -> str:
    """A Markdown section: title, an explanatory note, and the table (GitHub pipe format)."""
    body = table.to_markdown(index=False, floatfmt=floatfmt, tablefmt="pipe")
    parts = [f"# {title}", ""]
    if note:
        parts += [note, ""]
    return "\n".join(parts + [body, ""])
