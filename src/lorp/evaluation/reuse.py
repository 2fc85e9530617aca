"""Which pruned models are the same model, and the evaluation rows one of them can take from another.

Plans of different methods, calibrations or ``auto`` often remove the same blocks from one base model:
they build one model, which is timed once (:mod:`lorp.evaluation.efficiency`) and, for an ``auto`` plan,
evaluated once (:func:`reused_rows`). No model is loaded here: only plan files and evaluation CSVs are read.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

from ..io import read_json


def pruned_model_key(plan: Mapping[str, Any], sources: Mapping[str, str | Path]) -> Hashable:
    """What tells pruned models of one base model apart: a depth plan's removed blocks (plans of different
    methods, calibrations or ``auto`` that remove the same blocks build the same model), as
    ``("depth", n_layers, blocks)``; a sparse model is its own (its plan file, ``sources['plan']``), as
    ``("sparse", path)``; so is a recovered one (its recover stage's output, ``sources['recovery']``), as
    ``("recovered", path, fused)``, ``fused`` telling whether its recovery changes weights (LoRA's merged
    update) rather than adding to the pruned model (the patches)."""
    if sources.get("recovery"):
        from ..recovery import recovery_of

        return ("recovered", os.fspath(sources["recovery"]), recovery_of(sources["recovery"]).fused)
    if plan.get("family") == "sparse":
        return ("sparse", os.fspath(sources["plan"]))
    return ("depth", int(plan["n_layers"]), tuple(sorted(int(b) for b in plan["pruned"])))


def reused_rows(sources: Mapping[str, str | Path], candidates: Sequence[str | Path], labels: Mapping[str, Any],
                key: str, names: Sequence[str]) -> tuple[list[dict[str, str]], str] | None:
    """The rows of an evaluation of the same model, relabelled, and the file they come from; None when
    there is none.

    ``candidates`` are evaluation CSVs of other depth plans (an ``auto`` plan's candidates,
    ``evaluated_model`` in ``rules/evaluation.smk``). The first whose rows name the same prepared model and
    a plan that builds the same model as ``sources['plan']`` (:func:`pruned_model_key`, as efficiency
    times it once), and hold one row or more for every one of
    ``names`` (the datasets or tasks in column ``key``), is the same model evaluated with the same settings
    by the same rule: its rows are returned as written (no number reformatted) with the identifying
    columns of ``labels``. A sparse plan is never reused."""
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
        if pruned_model_key(other, {"plan": rows[0]["plan"]}) == pruned_model_key(plan, sources):
            return [{**row, **{k: str(v) for k, v in labels.items()}} for row in rows], str(path)
    return None
