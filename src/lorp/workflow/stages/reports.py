"""Stages of the reports: the summary tables (``rules/summary.smk``, and the sparsity table of
``rules/sparsity.smk``), the figures (``rules/figures.smk`` and the sparse family's), and the analyses across
calibrations (``rules/sensitivity.smk``: the similarity statistics compared, the sensitivity to the
calibration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from ... import figures, tables
from ...depth import sensitivity
from ...sparse import figures as sparse_figures
from ...io import read_json, write_text


def summarise(kind: str, csv_paths: Sequence[str | Path], out_csv: str | Path, out_md: str | Path,
              out_table: str | Path) -> None:
    """Stage 8: every evaluation row of one ``kind`` (``ppl``, ``tasks`` or ``efficiency``) in one long
    CSV, and the paper-style table (dense row, change against it) as CSV and Markdown."""
    frame = tables.long_frame(csv_paths, tables.SUMMARY_ORDER[kind])
    table, markdown = tables.summary_table(kind, frame)
    write_text(out_csv, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out_table, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out_md, markdown)


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


def summarise_k_ablation(ppl_paths: Sequence[str | Path], rls_paths: Mapping[str, str | Path],
                         out_csv: str | Path, out_png: str | Path) -> None:
    """Stage 9: the K ablation, mean perplexity of LoRP per model, K and budget (CSV) and its figure.

    ``rls_paths`` maps ``model/calib`` to the rls.json of its automatic K, marked in the figure.
    """
    from ..config import ablation_k

    frame = tables.long_frame(ppl_paths, ["model", "calib", "method", "budget", "dataset"])
    frame["k"] = [ablation_k(m) for m in frame["method"]]
    table = (frame.groupby(["model", "calib", "k", "budget", "n_layers"], as_index=False)["ppl"].mean()
             .rename(columns={"ppl": "mean_ppl"}).sort_values(["model", "calib", "budget", "k"], kind="stable"))
    write_text(out_csv, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    auto = {label: int(read_json(p)["k"]) for label, p in rls_paths.items()}
    figures.k_ablation(table.assign(model=table["model"] + "/" + table["calib"]), out_png, auto)


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


def draw_locality(entries: Mapping[str, tuple[str | Path, str | Path]], out_path: str | Path) -> None:
    """Stage 9: mean similarity against normalised layer distance; ``entries`` maps a label to (cosine, rls.json)."""
    curves = {label: (np.load(cos), float(read_json(rls)["rls"])) for label, (cos, rls) in entries.items()}
    figures.locality_curves(curves, out_path)


def draw_metric_vs_budget(table_csv: str | Path, kind: str, out_path: str | Path,
                          seed_groups: Mapping[str, str] | None = None) -> None:
    """Stage 9: mean perplexity (``kind='ppl'``) or mean accuracy (``kind='tasks'``, with the standard error
    of the mean as error bars) against the budget, pooled over the calibration seeds of ``seed_groups`` (mean
    and standard deviation) where given."""
    import pandas as pd

    table = pd.read_csv(table_csv, keep_default_na=False)
    table = table[~tables.is_sparse(table["method"])]  # the depth methods: budget in blocks
    if kind == "ppl":
        figures.metric_vs_budget(table, "mean_ppl", out_path, "mean perplexity (log scale)", "perplexity vs budget",
                                 log=True, seed_groups=seed_groups)
    else:
        figures.metric_vs_budget(table, "mean_acc", out_path, "mean zero-shot accuracy (%)", "accuracy vs budget",
                                 seed_groups=seed_groups, errors="mean_acc_stderr")


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
    sparse_figures.sparsity_profiles(profiles, after, out_path, title)


def draw_metric_vs_sparsity(table_csv: str | Path, kind: str, out_path: str | Path) -> None:
    """Sparse figure across models against the target sparsity, one line per metric and allocation, dense
    dashed: mean perplexity (``kind='ppl'``, from the sparsity summary's long CSV) or mean zero-shot accuracy
    with the standard error of the mean as error bars (``kind='tasks'``, the sparse rows of the zero-shot table)."""
    import pandas as pd

    table = pd.read_csv(table_csv, keep_default_na=False)
    if kind == "ppl":
        figures.metric_vs_budget(table.rename(columns={"target": "budget"}), "mean_ppl", out_path,
                                 "mean perplexity (log scale)", "perplexity vs sparsity", log=True,
                                 xlabel="target sparsity (%)")
    else:
        figures.metric_vs_budget(tables.sparse_and_dense(table), "mean_acc", out_path, "mean zero-shot accuracy (%)",
                                 "accuracy vs sparsity", xlabel="target sparsity (%)", errors="mean_acc_stderr")


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
    n_plans = len(methods_) * len(budgets)
    plans = [[read_json(p) for p in inputs["plans"][i * n_plans:(i + 1) * n_plans]] for i in range(len(views))]
    reference = sensitivity.pruned_sets(plans[0])
    stability, rls_rows, selection = [], [], []
    for i, v in enumerate(tqdm(views, desc="sensitivity", unit="view")):
        rls, summary = read_json(inputs["rls"][i]), read_json(inputs["summary"][i])
        with np.load(inputs["per_sequence"][i]) as sums:
            rows = sensitivity.view_rows(sensitivity.view_label(model, v, summary), rls,
                                         sensitivity.pruned_sets(plans[i]), reference, sums, methods_, budgets,
                                         params["structure"], params["bootstrap"])
        stability += rows.stability
        rls_rows.append(rows.rls)
        selection += rows.selection
    import pandas as pd

    for key, table in (("stability", stability), ("rls", rls_rows), ("selection", selection)):
        write_text(outputs[key], pd.DataFrame(table).to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    figures.sensitivity_rls(rls_rows, outputs["rls_png"], model)
    figures.sensitivity_stability(rls_rows, list(methods_), outputs["stability_png"], model)
    figures.selection_map(selection, list(methods_), int(params["budget"]), outputs["selection_png"], model)
