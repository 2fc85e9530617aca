"""Stages of the recovery family (``rules/recovery.smk``): a recovery fitted to a depth plan (the recover
stage), and the reports that compare recovered models with the training-free ones (the recovered fraction
table, the per-model figure of perplexity against budget)."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from ... import tables
from ...io import atomic_path, read_json, write_json, write_text


def _peak_rss_mib() -> float:
    """The job process's peak resident memory (Linux reports kB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def recover(sources: Mapping[str, str | Path], recovery: str, params: Mapping[str, Any], labels: Mapping[str, Any],
            out_dir: str | Path) -> dict:
    """The recover stage: ``recovery`` (a name in :data:`lorp.recovery.registry.RECOVERIES`) fitted to the plan
    ``sources['plan']`` with ``params`` (its config slice, :func:`lorp.workflow.config.recover_params`), from the
    stored activations ``sources['activations']`` or the prepared model ``sources['model']``. Writes into
    ``out_dir`` (atomically) what rebuilds the recovered model (``patches.npz`` or ``adapter/``),
    ``recovery.json`` (the recovery, its parameters and the plan), ``log.csv`` (the fit's residual per span, or
    the loss per step) and ``cost.json`` (``labels``: model and calib, with wall time, tokens and peak memory);
    returns the cost."""
    import torch

    from ...recovery import RECOVERY_RECORD
    from ...recovery.registry import RecoverInputs, get_recovery
    from .model import load_evaluated

    rec = get_recovery(recovery)
    plan = read_json(sources["plan"])
    compute = params.get("compute")
    settings = {k: v for k, v in params.items() if k != "compute"}
    inputs = RecoverInputs(
        activations=Path(sources["activations"]) if sources.get("activations") else None,
        pruned=(lambda: load_evaluated({"model": sources["model"], "plan": sources["plan"]}, compute))
        if sources.get("model") else None,
        data=settings.get("data"))
    cuda = torch.cuda.is_available() and compute is not None and compute.get("device") != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with atomic_path(out_dir, directory=True) as tmp:
        log = rec.fit(inputs, plan, {**rec.defaults(), **settings}, tmp)
        wall = time.perf_counter() - start
        tokens = max((int(r.get("tokens", r.get("n_tokens", 0))) for r in log), default=0)
        cost = {**labels, "recovery": recovery, "method": plan["method"], "budget": int(plan["budget"]), "wall_s": wall,
                "tokens": tokens, "peak_rss_mib": _peak_rss_mib(),
                "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
                "note": "peak_rss_mib is the job process's (with a warm start, the server's imports included)"}
        write_json(tmp / RECOVERY_RECORD, {"recovery": recovery, "parameters": settings, "plan": plan,
                                           "fused": rec.fused})
        columns = list(dict.fromkeys(k for r in log for k in r))
        write_text(tmp / "log.csv", tables.rows_csv(log, columns))
        write_json(tmp / "cost.json", cost)
    print(f"{recovery} on {plan['method']}-{plan['budget']}: {len(log)} log rows, {wall:.1f} s, {tokens} tokens")
    return cost


def summarise_recovery(ppl_table_csv: str | Path, cost_paths: list[str | Path], out_csv: str | Path,
                       out_md: str | Path) -> None:
    """The recovered fraction ``(ppl_pruned - ppl_recovered) / (ppl_pruned - ppl_dense)`` of every recovered
    model (on the mean perplexity of Table 2), with each plan's rank among the methods before and after
    recovery and the recovery's cost."""
    import pandas as pd

    from ...recovery.table import recovery_table

    table = recovery_table(pd.read_csv(ppl_table_csv, keep_default_na=False),
                           pd.DataFrame([read_json(p) for p in cost_paths]))
    write_text(out_csv, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out_md, tables.to_markdown(
        table, "recovery: the recovered fraction of the perplexity lost to pruning",
        "recovered_fraction = (ppl_pruned - ppl_recovered) / (ppl_pruned - ppl_dense) on the mean perplexity over "
        "the evaluation datasets (1: back to dense, 0: no better than pruned, < 0: worse); rank_pruned and "
        "rank_recovered: the plan's rank among the methods at its budget before and after recovery (1 = best); "
        "wall_s, tokens and peak_rss_mib: the recover job's cost."))


def draw_recovery(ppl_table_csv: str | Path, model: str, calib: str, out_png: str | Path) -> None:
    """Mean perplexity against the budget for one model and calibration: every depth method training-free
    (solid) and recovered (each recovery's line style), dense dashed."""
    import pandas as pd

    from ... import figures

    table = pd.read_csv(ppl_table_csv, keep_default_na=False)
    keep = (table["model"] == model) & ((table["calib"] == calib) | (table["method"] == "dense"))
    figures.metric_vs_budget(table[keep & ~tables.is_sparse(table["method"])], "mean_ppl", out_png,
                             "mean perplexity", f"{calib}, training-free and recovered", log=True)
