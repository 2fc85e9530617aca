"""The recovery table: how much of the perplexity lost to pruning each recovery wins back, and whether the
methods' ranking survives it."""

from __future__ import annotations

import pandas as pd

from .registry import split_recovered

RECOVERY_COLUMNS = ("model", "calib", "method", "recovery", "budget", "ppl_dense", "ppl_pruned", "ppl_recovered",
                    "recovered_fraction", "rank_pruned", "rank_recovered", "wall_s", "tokens", "peak_rss_mib")


def recovered_fraction(ppl_dense: float, ppl_pruned: float, ppl_recovered: float) -> float:
    """``(ppl_pruned - ppl_recovered) / (ppl_pruned - ppl_dense)``: 1 back to dense, 0 no gain (NaN where
    pruning lost nothing)."""
    lost = ppl_pruned - ppl_dense
    return (ppl_pruned - ppl_recovered) / lost if lost != 0 else float("nan")


def recovery_table(ppl_table: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """One row per recovered model of Table 2 (``ppl_table``: model, calib, method, budget, mean_ppl; a
    recovered model's method is ``<method>+<recovery>``), with its training-free plan's and the dense model's
    mean perplexity, the recovered fraction, the ranks among the methods at the same model, calibration and
    budget before and after (1 = lowest perplexity), and the cost of its recover job (``costs``: method,
    calib, method, budget, recovery, wall_s, tokens, peak_rss_mib; may be empty)."""
    frame = ppl_table[["model", "calib", "method", "budget", "mean_ppl"]].copy()
    split = [split_recovered(m) for m in frame["method"]]
    frame["base"] = [b for b, _ in split]
    frame["recovery"] = [r for _, r in split]
    dense = frame[frame["method"] == "dense"].drop_duplicates("model").set_index("model")["mean_ppl"]
    plain = frame[frame["recovery"].isna() & (frame["method"] != "dense")]
    pruned = plain.set_index(["model", "calib", "base", "budget"])["mean_ppl"]
    rows = []
    for _, r in frame[frame["recovery"].notna()].iterrows():
        key = (r["model"], r["calib"], r["base"], r["budget"])
        if key not in pruned.index:
            continue
        same = (plain["model"] == r["model"]) & (plain["calib"] == r["calib"]) & (plain["budget"] == r["budget"])
        peers = frame[(frame["model"] == r["model"]) & (frame["calib"] == r["calib"]) & (frame["budget"] == r["budget"])
                      & (frame["recovery"] == r["recovery"])]
        rows.append({"model": r["model"], "calib": r["calib"], "method": r["base"], "recovery": r["recovery"],
                     "budget": int(r["budget"]), "ppl_dense": float(dense[r["model"]]), "ppl_pruned": float(pruned[key]),
                     "ppl_recovered": float(r["mean_ppl"]),
                     "recovered_fraction": recovered_fraction(float(dense[r["model"]]), float(pruned[key]),
                                                              float(r["mean_ppl"])),
                     "rank_pruned": int((plain.loc[same, "mean_ppl"] < pruned[key]).sum()) + 1,
                     "rank_recovered": int((peers["mean_ppl"] < r["mean_ppl"]).sum()) + 1})
    out = pd.DataFrame(rows, columns=[c for c in RECOVERY_COLUMNS if c not in ("wall_s", "tokens", "peak_rss_mib")])
    if len(costs):
        keys = ["model", "calib", "method", "budget", "recovery"]
        out = out.merge(costs[keys + ["wall_s", "tokens", "peak_rss_mib"]].drop_duplicates(keys), on=keys, how="left")
    return out.reindex(columns=list(RECOVERY_COLUMNS))
