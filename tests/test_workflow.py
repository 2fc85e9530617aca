"""The whole workflow on the embedded model with a tiny config: outputs, minimal reruns after a
config change (the README's invalidation table), determinism, the audit, a killed capture job,
and the same workflow on the shared benchmark files.

Tests in this module run in order on one working directory holding a copy of the workflow.
"""

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from lorp.workflow.stages import depth as depth_stages
from tiny import EXPORTED, ROOT, METHODS, TASKS, ZEROSHOT_DIR, copy_workflow, snakemake, snakemake_cmd, tiny_config, write_config
from lorp.workflow.audit import audit
from lorp.workflow.dag import workflow_jobs
from lorp.workflow.config import validate_schema
from lorp.io import read_json
from lorp.depth.methods import METHODS as METHODS_REGISTRY

ALL_METHODS = METHODS + ["last"]

pytestmark = pytest.mark.slow  # (every test uses workdir, which puts no_slurm_controller in place first)


def dry_run(workdir: Path, config: dict, *args: str) -> dict[tuple[str, str], set[str]]:
    """(rule, wildcards) -> outputs of every job a dry run would execute, 'all' excluded."""
    out = snakemake(workdir, config, "-n", *args)
    assert out.returncode == 0, out.stderr[-3000:]
    jobs, rule, outputs = {}, None, set()
    for line in (out.stdout + out.stderr).splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            if rule:
                jobs[(rule, "")] = outputs
            rule, outputs = m.group(1), set()
            continue
        m = re.match(r"^\s+output: (.*)$", line)
        if m and rule:
            outputs = set(m.group(1).split(", "))
        m = re.match(r"^\s+wildcards: (.*)$", line)
        if m and rule:
            jobs[(rule, m.group(1))] = outputs
            rule = None
    if rule:
        jobs[(rule, "")] = outputs
    jobs.pop(("all", ""), None)
    return jobs


def planned_jobs(workdir: Path, config: dict) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would execute, 'all' excluded."""
    return set(dry_run(workdir, config))


def job(rule, model="smol", calib=None, method=None, budget=None):
    parts = [f"model={model}"] if model else []
    parts += [f"calib={calib}"] if calib else []
    parts += [f"method={method}"] if method else []
    parts += [f"budget={budget}"] if budget is not None else []
    return (rule, ", ".join(parts))


def evaluation_rules(kind):
    """The evaluation rules of one kind (ppl, tasks, efficiency) that the tiny config runs."""
    if kind == "tasks" and not ZEROSHOT_DIR.is_dir():
        return []
    return [{"ppl": "evaluate", "tasks": "evaluate_tasks", "efficiency": "efficiency"}[kind]]


def per_plan_rules(kinds):
    """The per-plan evaluation rules of ``kinds`` (efficiency is one job per model)."""
    return [f"{r}_pruned" for k in kinds if k != "efficiency" for r in evaluation_rules(k)]


def summaries(*kinds):
    kinds = kinds or ("ppl", "tasks", "efficiency")
    names = {"ppl": "summary", "tasks": "summary_tasks", "efficiency": "summary_efficiency"}
    return {(names[k], "") for k in kinds if evaluation_rules(k)}


def dense_jobs(*kinds, model="smol"):
    """The dense model's evaluations, and with efficiency the model's efficiency job (which also times
    every pruned model)."""
    kinds = kinds or ("ppl", "tasks", "efficiency")
    dense = {job(f"{r}_dense", model) for k in kinds if k != "efficiency" for r in evaluation_rules(k)}
    return dense | ({job("efficiency", model)} if "efficiency" in kinds else set())


def pruned_jobs(methods=METHODS, budgets=(3,), model="smol", calib="docs", kinds=("ppl", "tasks", "efficiency"),
                selection=True):
    """The jobs of the plans of ``methods`` at ``budgets``: with ``selection`` the plan and, for the exported
    names (tiny.EXPORTED at budget 3), the checkpoint; the per-plan evaluations of ``kinds``, and with
    efficiency the model's efficiency job."""
    out = {job(r, model, calib, m, b) for r in (["plan"] if selection else []) + per_plan_rules(kinds)
           for m in methods for b in budgets}
    if selection:
        out |= {job("prune_checkpoint", model, calib, m, b) for m in methods for b in budgets
                if m in EXPORTED and b == 3}
    return out | ({job("efficiency", model)} if "efficiency" in kinds else set())


def analysis_jobs(model="smol", calib="docs", from_rule="calibration_tokens"):
    order = ["calibration_tokens", "capture_activations", "similarity", "structure"]
    return {job(r, model, calib) for r in order[order.index(from_rule):]}


SUMMARY = summaries()


def figures(*names, model="smol", calib="docs"):
    """Figure jobs: per model and calibration (structure, pruned_layers), across models (locality,
    vs_ppl, vs_tasks)."""
    out = set()
    for name in names:
        if name in ("structure", "pruned_layers"):
            out.add(job(f"figure_{name}", model, calib))
        elif name == "locality":
            out.add(("figure_locality", ""))
        elif name == "vs_ppl" or (name == "vs_tasks" and evaluation_rules("tasks")):
            out.add(("figure_vs_budget", f"kind={name[3:]}"))
    return out


PLAN_FIGURES = figures("structure", "pruned_layers", "vs_ppl", "vs_tasks")  # what a changed plan redraws
ALL_FIGURES = PLAN_FIGURES | figures("locality")


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def workdir(tiny_workdir, no_slurm_controller):
    """The session's private copy of the workflow (tests here may edit its scripts and results)."""
    return tiny_workdir


@pytest.fixture(scope="module")
def tiny_run(tiny_results, workdir):
    return tiny_results


# ----------------------------------------------------------------------------------- outputs
def test_summary_has_dense_and_every_method(tiny_run):
    rows = read_rows(tiny_run / "summary" / "ppl.csv")
    assert sorted((r["method"], r["budget"]) for r in rows) == sorted([("dense", "0")] + [(m, "3") for m in METHODS])
    dense = next(r for r in rows if r["method"] == "dense")
    assert int(dense["n_layers"]) == 30
    for r in rows:
        assert float(r["ppl"]) > 1.0 and r["dataset"] == "python-docs"
    table = {(r["method"], r["budget"]): r for r in read_rows(tiny_run / "summary" / "ppl_table.csv")}
    assert int(table[("lorp", "3")]["n_layers"]) == 27 and float(table[("dense", "0")]["change_%"]) == 0.0
    for key, row in table.items():
        assert float(row["mean_ppl"]) == pytest.approx(float(row["python-docs"]))
        expected = 100 * (float(row["mean_ppl"]) / float(table[("dense", "0")]["mean_ppl"]) - 1)
        assert float(row["change_%"]) == pytest.approx(expected, abs=1e-4)
    md = (tiny_run / "summary" / "ppl.md").read_text()
    assert md.startswith("# Perplexity (paper Table 2)") and md.count("\n| smol") == 5


def test_efficiency_rows_and_table(tiny_run):
    rows = read_rows(tiny_run / "summary" / "efficiency.csv")
    assert sorted((r["method"], r["budget"]) for r in rows) == sorted([("dense", "0")] + [(m, "3") for m in METHODS])
    dense = next(r for r in rows if r["method"] == "dense")
    for r in rows:
        assert float(r["prefill_tokens_per_s"]) > 0 and float(r["decode_ms_per_token"]) > 0
        assert int(r["repeats"]) == 2 and r["device"] == "cpu" and r["memory_measure"] == "parameters_only"
        assert float(r["prefill_speedup_min"]) <= float(r["prefill_speedup"]) <= float(r["prefill_speedup_max"])
        assert float(r["decode_speedup_min"]) <= float(r["decode_speedup"]) <= float(r["decode_speedup_max"])
        assert int(r["weights_bytes"]) == 2 * int(r["n_params"])  # as stored, in bfloat16
        if r["method"] != "dense":
            assert int(r["n_params"]) < int(dense["n_params"]) and int(r["weights_bytes"]) < int(dense["weights_bytes"])
            assert r["plan"] == f"results/smol/plans/docs/{r['method']}-3.json" and r["base_model"] == "results/smol/model"
    assert float(dense["prefill_speedup"]) == 1.0
    # plans that remove the same blocks are one model, timed once: the same timings in each of their rows
    by_blocks = {}
    for r in rows[1:]:
        blocks = tuple(json.loads((tiny_run.parent / r["plan"]).read_text())["pruned"])
        by_blocks.setdefault(blocks, []).append(r)
    timing = ("prefill_ms", "decode_ms_per_token", "prefill_speedup", "decode_speedup_min")
    for same in by_blocks.values():
        assert len({tuple(r[c] for c in timing) for r in same}) == 1
    assert len({tuple(r[c] for c in timing) for same in by_blocks.values() for r in same[:1]}) == len(by_blocks)
    table = read_rows(tiny_run / "summary" / "efficiency_table.csv")
    assert all(0 < float(r["params_ratio"]) <= 1 for r in table)
    assert {r["prefill_speedup"] for r in table} == {r["prefill_speedup"] for r in rows}


def test_zero_shot_rows_and_table(tiny_run):
    if not ZEROSHOT_DIR.is_dir():
        pytest.skip(f"zero-shot task files not found at {ZEROSHOT_DIR}")
    rows = read_rows(tiny_run / "smol/eval/docs/lorp-3/tasks.csv")
    assert sorted((r["task"], r["metric"]) for r in rows) == [("arc_easy", "acc"), ("arc_easy", "acc_norm"),
                                                              ("copa", "acc")]
    for r in rows:
        assert 0 <= float(r["value"]) <= 1 and r["n_examples"] == "4" and r["limit"] == "4"
        assert r["plan"] == "results/smol/plans/docs/lorp-3.json" and int(r["n_layers"]) == 27
    assert int(read_rows(tiny_run / "smol/eval/docs/lorp-3/tasks.csv")[0]["n_available"]) == 2376
    table = read_rows(tiny_run / "summary" / "tasks_table.csv")
    assert len(table) == 5 and set(table[0]) >= {"arc_easy", "copa", "mean_acc", "change"}
    for r in table:  # arc_easy is reported with acc_norm, in %
        acc_norm = next(x for x in read_rows(tiny_run / "summary" / "tasks.csv")
                        if x["method"] == r["method"] and x["task"] == "arc_easy" and x["metric"] == "acc_norm")
        assert float(r["arc_easy"]) == pytest.approx(100 * float(acc_norm["value"]))


def test_plans_match_exported_checkpoints_and_evaluations(tiny_run):
    """Evaluations name the prepared model and the plan they built their model from; only the exported
    names have a checkpoint, and it holds the plan's depth."""
    for m in METHODS:
        plan = read_json(tiny_run / f"smol/plans/docs/{m}-3.json")
        ckpt = tiny_run / f"smol/checkpoints/docs/{m}-3"
        assert ckpt.is_dir() == (m in EXPORTED), m
        if m in EXPORTED:
            assert read_json(ckpt / "config.json")["num_hidden_layers"] == len(plan["kept"]) == 27
            assert read_json(ckpt / "plan.json")["pruned"] == plan["pruned"]
        (row,) = read_rows(tiny_run / f"smol/eval/docs/{m}-3/ppl.csv")
        assert row["plan"] == f"results/smol/plans/docs/{m}-3.json"
        assert row["base_model"] == "results/smol/model"
        assert int(row["n_layers"]) == 27
    rls = read_json(tiny_run / "smol/structure/docs/rls.json")
    assert read_json(tiny_run / "smol/plans/docs/lorp-3.json")["k"] == rls["k"]
    assert (tiny_run / "smol/similarity/docs/heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tiny_run / "smol/activations/docs").glob("layer_*.npy"))) == 31


def test_provenance_records(tiny_run, workdir):
    rec = read_json(tiny_run / "smol/plans/docs/lorp-3.provenance.json")
    assert rec["rule"] == "plan" and rec["wildcards"]["budget"] == "3"
    assert set(rec["inputs"]) == {"results/smol/similarity/docs/cosine_extended.npy",
                                  "results/smol/similarity/docs/cosine_last_token.npy",
                                  "results/smol/structure/docs/rls.json"}
    assert rec["outputs"]["results/smol/plans/docs/lorp-3.json"]["sha256"] == sha(tiny_run / "smol/plans/docs/lorp-3.json")
    assert rec["software"]["torch"].startswith("2.13.0") and "transformers" in rec["software"]
    assert set(rec["git"]) == {"commit", "dirty"} and rec["wall_time_s"] >= 0 and rec["peak_memory_mib"] > 0
    act = read_json(tiny_run / "smol/activations/docs.provenance.json")
    assert act["params"]["activations"] == {"dtype": "float16", "tokens_per_sequence": None, "seed": 0}
    assert set(act["outputs"]["results/smol/activations/docs"]["files"]) >= {"layer_000.npy", "layer_030.npy",
                                                                             "manifest.json"}


def test_second_run_is_a_no_op(workdir, tiny_run):
    start = time.perf_counter()
    out = snakemake(workdir, tiny_config(), "-n")
    assert out.returncode == 0
    assert "Nothing to be done" in out.stdout + out.stderr
    assert time.perf_counter() - start < 60


# ------------------------------------------------------------------------- minimal invalidation
def test_budget_added(workdir, tiny_run):
    assert planned_jobs(workdir, tiny_config(budgets=[3, 5])) == pruned_jobs(budgets=(5,)) | SUMMARY | PLAN_FIGURES


def test_lorp_clusters_or_thresholds_changed(workdir, tiny_run):
    lorp_only = {job("structure", calib="docs")} | pruned_jobs(methods=["lorp"]) | SUMMARY | ALL_FIGURES
    for lorp in ({"k": 2}, {"rls_thresholds": [1.2, 0.5]}, {"random_state": 1}):
        cfg = tiny_config(methods={**{m: {} for m in METHODS}, "lorp": lorp})
        assert planned_jobs(workdir, cfg) == lorp_only, lorp


def test_evaluation_dataset_or_seqlen_changed(workdir, tiny_run):
    evals = dense_jobs("ppl") | pruned_jobs(kinds=["ppl"], selection=False) | summaries("ppl") | figures("vs_ppl")
    cfg = tiny_config()
    cfg["evaluation"]["seqlen"] = 32
    assert planned_jobs(workdir, cfg) == evals
    cfg = tiny_config(models={"smol": {"source": "embedded", "bos_per_window": True}})
    assert planned_jobs(workdir, cfg) == evals
    cfg = tiny_config()
    cfg["evaluation"]["datasets"]["more-docs"] = {"source": "python-docs", "seqlen": 48}
    assert planned_jobs(workdir, cfg) == evals


def test_activation_settings_changed(workdir, tiny_run):
    expected = analysis_jobs(from_rule="capture_activations") | pruned_jobs() | SUMMARY | ALL_FIGURES
    assert planned_jobs(workdir, tiny_config(activations={"dtype": "float32"})) == expected
    assert planned_jobs(workdir, tiny_config(activations={"tokens_per_sequence": 16})) == expected
    per_model = {"smol": {"source": "embedded", "activations_dtype": "float32"}}
    assert planned_jobs(workdir, tiny_config(models=per_model)) == expected
    # a per-model dtype equal to the global one changes nothing
    per_model["smol"]["activations_dtype"] = "float16"
    assert planned_jobs(workdir, tiny_config(models=per_model)) == set()
    # the batch size only changes speed: nothing reruns
    assert planned_jobs(workdir, tiny_config(activations={"batch_size": 1})) == set()


def test_calibration_changed(workdir, tiny_run):
    expected = analysis_jobs() | pruned_jobs() | SUMMARY | ALL_FIGURES  # no prepare_model, no dense evaluation
    for change in ({"n_samples": 5}, {"seqlen": 32}, {"seed": 1}, {"source": "python-docs", "max_documents": 20}):
        cfg = tiny_config()
        cfg["calibration"]["docs"].update(change)
        assert planned_jobs(workdir, cfg) == expected, change


def test_method_or_model_added(workdir, tiny_run):
    methods = {**{m: {} for m in METHODS}, "last": {}}
    assert planned_jobs(workdir, tiny_config(methods=methods)) == pruned_jobs(methods=["last"]) | SUMMARY | PLAN_FIGURES
    models = {"smol": {"source": "embedded"}, "smol-fp32": {"source": "embedded", "storage_dtype": "float32"}}
    expected = ({job("prepare_model", "smol-fp32")} | dense_jobs(model="smol-fp32")
                | analysis_jobs(model="smol-fp32") | pruned_jobs(model="smol-fp32") | SUMMARY
                | figures("structure", "pruned_layers", model="smol-fp32") | figures("locality", "vs_ppl", "vs_tasks"))
    assert planned_jobs(workdir, tiny_config(models=models)) == expected


def test_other_method_parameters_changed(workdir, tiny_run):
    cfg = tiny_config(methods={**{m: {} for m in METHODS}, "shortgpt": {"protect_first": False}})
    assert planned_jobs(workdir, cfg) == pruned_jobs(methods=["shortgpt"]) | SUMMARY | PLAN_FIGURES


def test_compute_precision_changed(workdir, tiny_run):
    expected = analysis_jobs(from_rule="capture_activations") | pruned_jobs() | dense_jobs() | SUMMARY | ALL_FIGURES
    assert planned_jobs(workdir, tiny_config(compute={"device": "auto", "dtype": "float32"})) == expected


def test_speed_and_disk_settings_change_nothing(workdir, tiny_run):
    cfg = tiny_config()
    cfg["evaluation"]["batch_size"] = 1
    assert planned_jobs(workdir, cfg) == set()
    # exports: a name added writes its checkpoint and nothing else; names removed rerun nothing
    more = tiny_config(checkpoints={"export": ["shortgpt-3", "streamline-3", "lorp-3"]})
    assert planned_jobs(workdir, more) == {job("prune_checkpoint", calib="docs", method="lorp", budget=3)}
    assert planned_jobs(workdir, tiny_config(checkpoints={"export": "none"})) == set()
    if ZEROSHOT_DIR.is_dir():
        cfg = tiny_config()
        cfg["zeroshot"]["batch_size"] = 1
        assert planned_jobs(workdir, cfg) == set()


def test_zero_shot_tasks_changed(workdir, tiny_run):
    if not ZEROSHOT_DIR.is_dir():
        pytest.skip(f"zero-shot task files not found at {ZEROSHOT_DIR}")
    expected = (dense_jobs("tasks") | pruned_jobs(kinds=["tasks"], selection=False) | summaries("tasks")
                | figures("vs_tasks"))
    for change in ({"tasks": TASKS + ["rte"]}, {"limit": 5}):
        cfg = tiny_config()
        cfg["zeroshot"].update(change)
        assert planned_jobs(workdir, cfg) == expected, change


def test_efficiency_settings_changed(workdir, tiny_run):
    expected = {job("efficiency")} | summaries("efficiency")
    cfg = tiny_config()
    cfg["efficiency"]["seqlen"] = 32
    assert planned_jobs(workdir, cfg) == expected


def test_script_changed(workdir, tiny_run):
    script = workdir / "scripts" / "structure.py"
    original, stat = script.read_text(), script.stat()
    try:
        script.write_text(original + "\n# edited\n")
        expected = {job("structure", calib="docs")} | pruned_jobs(methods=["lorp"]) | SUMMARY | ALL_FIGURES
        assert planned_jobs(workdir, tiny_config()) == expected
    finally:
        script.write_text(original)
        os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(workdir, tiny_config()) == set()


@pytest.mark.parametrize("module,old,new,expect", [
    ("depth/methods.py", "    starts = n - budget  #", "    starts = n - budget + 0  #", "plans"),
    ("figures.py", 'DENSE_COLOR = "#000000"', 'DENSE_COLOR = "#000001"', "figures"),
    ("depth/methods.py", "def streamline_plan(", "# a comment\n\n\ndef streamline_plan(", "nothing"),
    ("depth/methods.py", "    bi = [1.0 - float(e[i, i + 1]) for i in range(n)]",
     "    bi = [1.0 - float(e[i, i + 1]) + 0.0 for i in range(n)]", "shortgpt"),
])
def test_package_edited(workdir, tiny_run, module, old, new, expect):
    """An edit of the package reruns the stages whose code it changes: a window helper the plans of the
    methods that use it and what follows (not capture, similarity or structure), one method's plan function
    that method's plans and what follows and nothing of the other methods, a figure's colour the figures
    only, a comment nothing."""
    path = workdir / "src" / "lorp" / module
    original, stat = path.read_text(), path.stat()
    try:
        assert old in original
        path.write_text(original.replace(old, new, 1))
        rules = {rule for rule, _ in planned_jobs(workdir, tiny_config())}
        if expect == "plans":
            assert {"plan", "evaluate_pruned", "summary"} <= rules
            assert not rules & {"calibration_tokens", "capture_activations", "similarity", "structure",
                                "evaluate_dense", "prepare_model"}
        elif expect == "figures":
            assert rules and all(r.startswith("figure_") for r in rules), rules
        elif expect == "shortgpt":  # one method's plan function: its plans and what follows, no other method's
            planned = planned_jobs(workdir, tiny_config())
            methods = {re.search(r"method=([\w-]+)", w)[1] for _, w in planned if "method=" in w}
            assert methods == {"shortgpt"} and job("plan", calib="docs", method="shortgpt", budget=3) in planned
            assert not rules & {"capture_activations", "similarity", "structure", "evaluate_dense"}
        else:
            assert rules == set()
    finally:
        path.write_text(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(workdir, tiny_config()) == set()


def test_audit_reports_artifacts_made_by_older_code(workdir, tiny_run):
    path = workdir / "src" / "lorp" / "depth" / "methods.py"
    original, stat = path.read_text(), path.stat()
    try:
        path.write_text(original.replace("    starts = n - budget  #", "    starts = n - budget + 0  #", 1))
        out = subprocess.run([sys.executable, "-m", "lorp.workflow.audit", "--configfile",
                              str(write_config(workdir, tiny_config()))],
                             cwd=workdir, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(workdir / "src")})
        assert out.returncode == 1
        assert "plan was made by older code" in out.stdout and "lorp.depth.methods" in out.stdout
        assert "capture_activations was made by older code" not in out.stdout
    finally:
        path.write_text(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_k_ablation_added(workdir, tiny_run):
    """ablation.lorp_k added: the fixed-K clusterings, their LoRP plans, checkpoints and perplexities, and
    the ablation table and figure; nothing else. Then run it."""
    cfg = tiny_config(ablation={"lorp_k": [2, 3], "budgets": [3]})
    expected = ({("structure_fixed_k", f"model=smol, calib=docs, k={k}") for k in (2, 3)} | {("k_ablation", "")}
                | pruned_jobs(methods=["lorp-k2", "lorp-k3"], kinds=["ppl"]))
    assert planned_jobs(workdir, cfg) == expected
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-4000:]
    rows = read_rows(workdir / "results/summary/k_ablation.csv")
    assert [(r["k"], r["budget"]) for r in rows] == [("2", "3"), ("3", "3")]
    assert read_json(workdir / "results/smol/structure/docs/rls-k3.json")["k"] == 3
    plan = read_json(workdir / "results/smol/plans/docs/lorp-k2-3.json")
    assert plan["method"] == "lorp" and plan["k"] == 2 and len(plan["pruned"]) == 3
    assert (workdir / "results/figures/k_ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert audited(workdir, cfg) == []
    assert planned_jobs(workdir, tiny_config()) == set()  # the ablation's files do not disturb the main run


# ------------------------------------------------------------------------------- sparse family
SPARSE = {"targets": [50], "metrics": ["wanda", "magnitude"], "sweep": {"outlier_m": [3, 5]}}
ALLOCATIONS = ("uniform", "owl", "mrp")
SPARSE_METHODS = [f"{metric}-{allocation}" for metric in ("wanda", "magnitude") for allocation in ALLOCATIONS]


SPARSE_EXPORT = ("wanda-mrp", "magnitude-owl")  # exported at 50% beside the depth exports


def sparse_config(**sparsity):
    """The tiny config with the sparse family at 50% (perplexity only: efficiency and zero-shot tasks
    take the same code path as for the depth methods) and two sparse checkpoints exported."""
    export = [f"{m}-3" for m in EXPORTED] + [f"{m}-50" for m in SPARSE_EXPORT]
    return tiny_config(sparsity={**SPARSE, **sparsity}, zeroshot={"tasks": []}, efficiency={"enabled": False},
                       checkpoints={"export": export})


def sjob(rule, **wildcards):
    return (rule, ", ".join(f"{k}={v}" for k, v in {"model": "smol", "calib": "docs", **wildcards}.items()))


def sparse_jobs(metrics=("wanda", "magnitude"), allocations=ALLOCATIONS, targets=(50,), pruned=True,
                aggregates=True, sweep=True):
    """The sparse jobs of the given plans (plan; with ``pruned`` the pruned model, its perplexity and the
    exported checkpoints), and with ``aggregates`` what gathers them (redundancy, figures, summaries; the
    MRP sweep with ``sweep``)."""
    out = set()
    for metric in metrics:
        for allocation in allocations:
            for t in targets:
                out.add(sjob("sparse_plan", metric=metric, allocation=allocation, target=t))
                if pruned:
                    out.add(sjob("sparse_prune", metric=metric, allocation=allocation, target=t))
                    out.add(job("evaluate_pruned", "smol", "docs", f"{metric}-{allocation}", t))
                    if f"{metric}-{allocation}" in SPARSE_EXPORT and t == 50:
                        out.add(sjob("sparse_checkpoint", metric=metric, allocation=allocation, target=t))
    if aggregates:
        out |= {sjob(rule, metric=metric) for rule in ("redundancy", "mrp_sweep")[:2 if sweep else 1]
                for metric in metrics}
        out |= {sjob("figure_sparsity"), ("summary_sparsity", ""), ("figure_vs_sparsity", "")}
        if pruned:
            out |= summaries("ppl") | figures("vs_ppl")
    return out


def test_sparse_family_added(workdir, tiny_run):
    """sparsity.targets set: norms, outlier ratios, plans, checkpoints and their perplexities, and the
    sparse tables and figures; of the depth family only the perplexity summary gathering them. Then run it."""
    cfg = sparse_config()
    expected = {sjob("input_norms")} | {sjob("outliers", metric=m) for m in ("wanda", "magnitude")} | sparse_jobs()
    assert planned_jobs(workdir, cfg) == expected
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-4000:]
    assert planned_jobs(workdir, cfg) == set()
    assert audited(workdir, cfg) == []


def test_sparse_models_beside_dense_and_depth_in_the_summaries(workdir, tiny_run):
    rows = read_rows(workdir / "results/summary/sparsity.csv")
    assert [(r["method"], r["target"]) for r in rows] == [("dense", "0")] + sorted(
        (m, "50") for m in SPARSE_METHODS)
    dense = float(rows[0]["mean_ppl"])
    for r in rows[1:]:
        assert dense < float(r["mean_ppl"]) < 1e5, r  # finite, and worse than the dense model
        assert float(r["measured_sparsity"]) == pytest.approx(0.5, abs=0.002)
        assert 0 <= float(r["non_outlier_std"]) < 0.5
    table = read_rows(workdir / "results/summary/sparsity_table.csv")
    assert [(r["metric"], r["allocation"]) for r in table][0] == ("-", "dense")
    assert {(r["metric"], r["allocation"]) for r in table[1:]} == {tuple(m.split("-")) for m in SPARSE_METHODS}
    assert set(table[0]) >= {"ppl_50", "std_50"}
    ppl = read_rows(workdir / "results/summary/ppl.csv")
    assert {r["method"] for r in ppl} == {"dense", *METHODS, *SPARSE_METHODS}
    assert not {r["method"] for r in read_rows(workdir / "results/summary/ppl_table.csv")} & set(SPARSE_METHODS)
    for name in ("figures/ppl_vs_sparsity.png", "smol/figures/docs/sparsity.png", "smol/sparsity/docs/wanda/mrp_sweep.png"):
        assert (workdir / "results" / name).read_bytes()[:4] == b"\x89PNG", name


def test_sparse_models_hold_their_plan_and_measured_sparsity(workdir, tiny_run):
    base = workdir / "results/smol/sparsity/docs"
    mrp = read_json(base / "plans/wanda-mrp-50.json")
    assert mrp["model_sparsity"] == pytest.approx(0.5, abs=1e-9) and mrp["trajectory"]
    assert mrp["settings"]["s0"] == pytest.approx(0.3) and min(mrp["blocks"]) >= 0.3 - 1e-9
    owl = read_json(base / "plans/wanda-owl-50.json")
    assert max(owl["blocks"]) - min(owl["blocks"]) == pytest.approx(0.16)
    for name in SPARSE_METHODS:
        measured = read_json(base / f"measured/{name}-50.json")
        checkpoint = base / f"checkpoints/{name}-50"
        assert checkpoint.is_dir() == (name in SPARSE_EXPORT), name
        if name in SPARSE_EXPORT:
            assert read_json(checkpoint / "plan.json")["method"] == name
            assert read_json(checkpoint / "sparsity.json") == measured
        assert measured["norms"] == ("sequential" if name.startswith("wanda") else "none")
        assert measured["dtype"] == "float32"  # scored in the evaluations' dtype, so their rebuild agrees
        norms = np.load(base / f"pruned/{name}-50.npz")
        assert len(norms.files) == (1 + 30 * 7 if name.startswith("wanda") else 1)  # n_blocks and every layer
        for block in measured["blocks"]:
            for layer, m in block["linears"].items():
                assert m["row_shortfall"] == 0, (name, block["block"], layer)
                # within one weight per row of the plan; above it only by weights the GGUF had at zero
                assert m["planned"] - 1 / m["in_features"] <= m["measured"] <= m["planned"] + 0.01, (name, layer)
    assert read_json(base / "wanda/redundancy.json")["count_zeros"] is True


def test_sparse_settings_changed(workdir, tiny_run):
    """M reruns the outlier ratios and what reads them (OWL and MRP), not the norms or uniform plans; the
    step reruns MRP; a target adds its own plans; dense final norms rerun Wanda's checkpoints only."""
    owl_mrp = sparse_jobs(allocations=("owl", "mrp")) | {sjob("outliers", metric=m) for m in ("wanda", "magnitude")}
    assert planned_jobs(workdir, sparse_config(outlier_m=4)) == owl_mrp
    assert planned_jobs(workdir, sparse_config(count_zeros=False)) == owl_mrp
    assert planned_jobs(workdir, sparse_config(mrp={"step": 2})) == sparse_jobs(allocations=("mrp",))
    assert planned_jobs(workdir, sparse_config(mrp={"granularity": "linear"})) == sparse_jobs(allocations=("mrp",))
    assert planned_jobs(workdir, sparse_config(owl_lambda=0.05)) == sparse_jobs(allocations=("owl",), sweep=False)
    assert planned_jobs(workdir, sparse_config(targets=[50, 60])) == sparse_jobs(targets=(60,))
    wanda_pruned = (sparse_jobs(metrics=("wanda",), aggregates=False)
                    - sparse_jobs(metrics=("wanda",), pruned=False, aggregates=False))
    assert planned_jobs(workdir, sparse_config(norms="dense")) == (
        wanda_pruned | {("summary_sparsity", ""), ("figure_vs_sparsity", "")} | summaries("ppl") | figures("vs_ppl"))
    assert planned_jobs(workdir, sparse_config(sweep={"outlier_m": [3, 5, 7]})) == {
        sjob("mrp_sweep", metric=m) for m in ("wanda", "magnitude")}
    two_four = sparse_jobs(allocations=("2of4",), aggregates=False) | {("summary_sparsity", ""), ("figure_vs_sparsity", "")}
    assert planned_jobs(workdir, sparse_config(nm=["2:4"])) == two_four | summaries("ppl") | figures("vs_ppl")
    # back to the depth-only config: only the summary that gathered the sparse rows changes
    assert planned_jobs(workdir, tiny_config()) == summaries("ppl") | figures("vs_ppl")
    out = snakemake(workdir, tiny_config())
    assert out.returncode == 0, out.stderr[-4000:]
    assert planned_jobs(workdir, tiny_config()) == set()


def test_audit_knows_every_job_of_the_workflow(tmp_path):
    """The jobs the audit checks (lorp.workflow.dag, Snakemake's own DAG through its API) are the jobs a dry
    run of a fresh directory lists, with the same outputs and provenance records."""
    d = copy_workflow(tmp_path / "fresh")
    cfg = tiny_config(ablation={"lorp_k": [2], "budgets": [3]}, sparsity=SPARSE)
    dag = dry_run(d, cfg)
    audit_jobs = {(j.rule, ", ".join(f"{k}={v}" for k, v in j.wildcards.items())): {*j.outputs.values(), j.provenance}
                  for j in workflow_jobs(write_config(d, cfg), d, d / "Snakefile")}
    assert dag == audit_jobs
    assert {"plan", "sparse_prune", "structure_fixed_k", "evaluate_pruned"} <= {rule for rule, _ in dag}


def test_a_registered_method_is_a_one_module_change(workdir, tiny_run):
    """A depth-pruning method declared in lorp/depth/methods.py alone (its plan, budget limit and one
    parameter) is accepted by the config check and planned by the rules from the similarity files."""
    methods_py = workdir / "src/lorp/depth/methods.py"
    original, stat = methods_py.read_text(), methods_py.stat()
    toy = """

def _toy(inputs, budget, params):
    n = inputs.extended.shape[0] - 1
    pruned = list(range(params["start"], params["start"] + budget))
    return Plan("toy", budget, n, pruned, [], [None] * n, "none")


register(Method(name="toy", plan=_toy, max_budget=lambda n, params: n - params["start"], inputs=("extended",),
                parameters={"start": {"type": "integer", "minimum": 0, "default": 1}}))
"""
    try:
        methods_py.write_text(original + toy)
        cfg = tiny_config(methods={**{m: {} for m in METHODS}, "toy": {"start": 5}})
        planned = planned_jobs(workdir, cfg)  # methods.py changed: every plan reruns (its code fingerprint)
        assert pruned_jobs(methods=["toy"]) | SUMMARY | PLAN_FIGURES <= planned
        assert not {r for r, _ in planned} & {"calibration_tokens", "capture_activations", "similarity", "structure"}
        bad = snakemake(workdir, tiny_config(methods={"toy": {"begin": 5}}), "-n")
        assert bad.returncode != 0
        assert "methods.toy: unknown key 'begin'; allowed: start" in bad.stdout + bad.stderr
        target = "results/smol/plans/docs/toy-3.json"
        out = snakemake(workdir, cfg, target)
        assert out.returncode == 0, out.stderr[-3000:]
        assert read_json(workdir / target)["pruned"] == [5, 6, 7]
        assert set(read_json(workdir / "results/smol/plans/docs/toy-3.provenance.json")["inputs"]) == {
            "results/smol/similarity/docs/cosine_extended.npy"}
    finally:
        methods_py.write_text(original)
        os.utime(methods_py, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_html_report_holds_the_figures_and_tables(workdir, tiny_run):
    report = workdir / "report.html"
    out = subprocess.run(snakemake_cmd(workdir, tiny_config(), "--report", str(report)), cwd=workdir,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-4000:]
    html = report.read_text(errors="replace")
    assert len(html) > 100_000  # self-contained: the figures are embedded
    for name in ("structure.png", "pruned_layers.png", "locality.png", "ppl_vs_budget.png", "ppl.md",
                 "efficiency.md", "Across models", "Tables", "smol"):
        assert name in html, name
    assert "Representation Locality Score" in html  # a caption
    if evaluation_rules("tasks"):
        assert "tasks_vs_budget.png" in html and "tasks.md" in html


# ------------------------------------------------------------------------------ determinism
def test_deterministic_stages_are_byte_identical(tiny_run, tmp_path):
    sim = tiny_run / "smol/similarity/docs"
    outputs = {k: tmp_path / f"{k}.out" for k in ("cosine", "csv", "heatmap", "extended", "last_token")}
    depth_stages.compute_similarity(tiny_run / "smol/activations/docs", outputs, {"statistic": "cosine"},
                                    title="smol (docs)")  # as scripts/similarity.py calls it
    for key, name in [("cosine", "cosine.npy"), ("csv", "cosine.csv"), ("extended", "cosine_extended.npy"),
                      ("last_token", "cosine_last_token.npy"), ("heatmap", "heatmap.png")]:
        assert sha(outputs[key]) == sha(sim / name), name
    rls = tiny_run / "smol/structure/docs/rls.json"
    depth_stages.analyse_structure(sim / "cosine.npy", tmp_path / "rls.json",
                                   read_json(tiny_run / "smol/structure/docs/provenance.json")["params"]["structure"])
    assert sha(tmp_path / "rls.json") == sha(rls)
    for m in METHODS:
        inputs = {"extended": sim / "cosine_extended.npy", "last_token": sim / "cosine_last_token.npy", "structure": rls}
        params = read_json(tiny_run / f"smol/plans/docs/{m}-3.provenance.json")["params"]["method_params"]
        depth_stages.make_plan(m, 3, {k: inputs[k] for k in METHODS_REGISTRY[m].inputs}, tmp_path / f"{m}.json", params)
        assert sha(tmp_path / f"{m}.json") == sha(tiny_run / f"smol/plans/docs/{m}-3.json"), m


# ------------------------------------------------------------------------------------ audit
def audited(workdir, config=None):
    configfile = write_config(workdir, config or tiny_config())
    return [f for f in audit(configfile, workdir, workdir / "Snakefile") if f.is_problem]


def test_audit_passes_on_a_complete_run(workdir, tiny_run):
    assert audited(workdir) == []
    out = subprocess.run([sys.executable, "-m", "lorp.workflow.audit", "--configfile", str(write_config(workdir, tiny_config()))],
                         cwd=workdir, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 problems" in out.stderr


def artifact_hashes(results: Path) -> dict[str, str]:
    """sha256 of every artifact that a rerun reproduces bit for bit (timings and records excluded)."""
    return {str(p.relative_to(results)): sha(p) for p in sorted(results.rglob("*"))
            if p.is_file() and "logs" not in p.parts and "provenance" not in p.name and not p.name.startswith(".")
            and "efficiency" not in p.name and "tasks" not in p.name and p.suffix != ".png" and "summary" not in p.parts}


def test_audit_finds_damage_snakemake_cannot_see_and_repairs_it(workdir, tiny_run):
    """A corrupted activation file, a deleted checkpoint file, a hand-edited plan and an edited
    evaluation CSV: Snakemake alone sees only the edited files (the other two are inside directory
    outputs); the audit names all four with the command that repairs them, and --repair gives back
    exactly the clean run's artifacts."""
    clean = artifact_hashes(tiny_run)
    layer = tiny_run / "smol/activations/docs/layer_007.npy"
    stat = layer.stat()
    arr = np.load(layer)
    arr[0, 0] += 1
    np.save(layer, arr)
    os.utime(layer, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as a bit flip on disk: same size and time
    (tiny_run / "smol/checkpoints/docs/shortgpt-3/model.safetensors").unlink()
    plan_path = tiny_run / "smol/plans/docs/streamline-3.json"
    plan = read_json(plan_path)
    plan["pruned"][0] -= 1  # now overlaps 'kept' and disagrees with the checkpoint
    plan_path.write_text(json.dumps(plan))
    ppl_path = tiny_run / "smol/eval/docs/lorp-3/ppl.csv"
    ppl_path.write_text(ppl_path.read_text().replace(",python-docs,", ",python-docs-edited,"))

    rerun_by_snakemake = planned_jobs(workdir, tiny_config())  # the edited plan and CSV only
    assert job("prune_checkpoint", calib="docs", method="streamline", budget=3) in rerun_by_snakemake
    assert job("capture_activations", calib="docs") not in rerun_by_snakemake
    assert job("prune_checkpoint", calib="docs", method="shortgpt", budget=3) not in rerun_by_snakemake

    kinds = {(f.kind, f.path) for f in audited(workdir)}
    assert ("modified", "results/smol/activations/docs") in kinds
    assert ("missing", "results/smol/checkpoints/docs/shortgpt-3") in kinds
    assert {("modified", "results/smol/plans/docs/streamline-3.json"),
            ("inconsistent", "results/smol/plans/docs/streamline-3.json"),
            ("inconsistent", "results/smol/checkpoints/docs/streamline-3")} <= kinds
    assert ("modified", "results/smol/eval/docs/lorp-3/ppl.csv") in kinds

    audit_cmd = [sys.executable, "-m", "lorp.workflow.audit", "--configfile", str(write_config(workdir, tiny_config()))]
    out = subprocess.run(audit_cmd, cwd=workdir, capture_output=True, text=True)
    assert out.returncode == 1 and "layer_007.npy" in out.stdout
    (rm_line,) = [line for line in out.stdout.splitlines() if line.startswith("  cd ") and " && rm -rf " in line]
    for damaged in ("results/smol/activations/docs", "results/smol/checkpoints/docs/shortgpt-3",
                    "results/smol/plans/docs/streamline-3.json", "results/smol/checkpoints/docs/streamline-3",
                    "results/smol/eval/docs/lorp-3/ppl.csv"):
        assert f" {damaged} " in rm_line + " ", damaged
    assert f"  snakemake --snakefile {ROOT / 'Snakefile'} --configfile {workdir / 'config.yaml'} --directory" in out.stdout

    out = subprocess.run([*audit_cmd, "--repair", "--snakefile", str(workdir / "Snakefile"), "--cores", "2"],
                         cwd=workdir, capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "repair: 0 problems left" in out.stderr
    assert artifact_hashes(tiny_run) == clean
    assert planned_jobs(workdir, tiny_config()) == set()


def test_audit_reports_stale_and_missing_after_a_config_change(workdir, tiny_run):
    cfg = tiny_config(budgets=[3, 4])
    cfg["evaluation"]["seqlen"] = 32
    problems = audited(workdir, cfg)
    assert any(f.kind == "missing" and f.path == "results/smol/plans/docs/lorp-4.json" for f in problems)
    assert any(f.kind == "stale" and f.path == "results/smol/eval/dense/ppl.csv" for f in problems)


# ------------------------------------------------------------------------------------ faults
def test_killed_capture_job_leaves_nothing_trusted_and_rerun_matches(workdir, tiny_run):
    """SIGKILL the whole run while the capture job writes; rerun; compare with an uninterrupted capture."""
    cfg = tiny_config(activations={"batch_size": 1, "tokens_per_sequence": 32},
                      calibration={"docs": {"source": "python-docs", "n_samples": 48, "seqlen": 64}})
    target = "results/smol/similarity/docs/cosine.npy"
    act_dir = workdir / "results/smol/activations"
    proc = subprocess.Popen(snakemake_cmd(workdir, cfg, target), cwd=workdir, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not any(act_dir.glob(".docs.tmp-*/layer_030.npy")):
            assert proc.poll() is None, "snakemake finished before it could be killed"
            time.sleep(0.2)
        time.sleep(1.0)  # let a few batches land in the memory-mapped files
        assert any(act_dir.glob(".docs.tmp-*")), "capture never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # SIGKILL leaves the run's warm-start server no chance to remove its directory (lorp.workflow.warm)
        for log in Path(tempfile.gettempdir()).glob("lorp-warm-*/server.log"):
            if str(workdir) in log.read_text(errors="replace"):
                shutil.rmtree(log.parent, ignore_errors=True)
    assert not (act_dir / "docs").exists(), "a killed capture left an output that a rerun would trust"

    subprocess.run([sys.executable, "-m", "snakemake", "--directory", str(workdir), "--unlock",
                    "--configfile", str(workdir / "config.yaml")], cwd=workdir, capture_output=True, check=True)
    out = snakemake(workdir, cfg, target)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not list(act_dir.glob(".docs.tmp-*")), "the killed job's temporaries were not cleaned up"
    after_kill = {p.name: sha(p) for p in (act_dir / "docs").iterdir()}
    cosine_after_kill = sha(workdir / target)

    out = snakemake(workdir, cfg, target, "--forcerun", "capture_activations")
    assert out.returncode == 0, out.stderr[-3000:]
    assert {p.name: sha(p) for p in (act_dir / "docs").iterdir()} == after_kill
    assert sha(workdir / target) == cosine_after_kill


# ------------------------------------------------------------------------------- shared data
def test_shared_benchmark_files_as_local_datasets(workdir, tiny_run, shared_data):
    cfg = tiny_config(
        calibration={"c4": {"source": str(shared_data / "c4/c4_validation_2k_sample.jsonl"), "format": "jsonl",
                            "n_samples": 4, "seqlen": 64, "sampling": "document"}},
        methods={"lorp": {}, "last": {}},
        zeroshot={"tasks": []},
        efficiency={"enabled": False},
        evaluation={"seqlen": 64, "max_windows": 2, "batch_size": 2, "datasets": {
            "wikitext2": {"source": str(shared_data / "wikitext-2-raw/wiki.test.raw"), "format": "text"},
            "c4": {"source": str(shared_data / "c4/c4_validation_shard0_part.jsonl"), "format": "jsonl"},
        }},
    )
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-4000:]
    rows = read_rows(workdir / "results/summary/ppl.csv")
    got = sorted((r["calib"], r["method"], r["dataset"]) for r in rows)
    expected = sorted([("-", "dense", d) for d in ("wikitext2", "c4")]
                      + [("c4", m, d) for m in ("lorp", "last") for d in ("wikitext2", "c4")])
    assert got == expected
    meta = read_json(workdir / "results/smol/calib/c4/meta.json")
    assert meta["sampling"] == "document" and len(meta["document_indices"]) == 4
    assert audited(workdir, cfg) == []


# ---------------------------------------------------------------------------- cluster resources
# outputs whose jobs and ancestors cover every rule these tests look at, so the dry runs stay small
RESOURCE_TARGETS = ["results/smol/eval/dense/ppl.csv", "results/smol/eval/docs/lorp-3/ppl.csv",
                    "results/smol/eval/efficiency.csv", "results/smol/checkpoints/docs/lorp-3"]


def job_resources(workdir: Path, config: dict, *args: str) -> dict[str, dict[str, str]]:
    """rule -> resources and threads of its first job in a dry run (with the given profile args)."""
    out = snakemake(workdir, config, "-n", "--forceall", *RESOURCE_TARGETS, *args)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    found, rule = {}, None
    for line in (out.stdout + out.stderr).splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            rule = m.group(1)
            found.setdefault(rule, {})
            continue
        m = re.match(r"^\s+(threads|resources): (.*)$", line)
        if m and rule:
            found[rule].setdefault(m.group(1), m.group(2))
    return found


def test_gpu_only_where_used_and_memory_scales_with_the_model(workdir, tiny_run):
    res = job_resources(workdir, tiny_config(), "--profile", str(workdir / "slurm"), "--cores", "8")
    for rule in ("capture_activations", "prune_checkpoint", "evaluate_dense", "evaluate_pruned", "efficiency"):
        assert "gpu=1" in res[rule]["resources"], rule
        assert "mem_mb=8769" in res[rule]["resources"], rule  # 8000 MB + 6 bytes x 134.5M parameters
    for rule in ("prepare_model", "calibration_tokens", "similarity"):
        assert "gpu=1" not in res[rule]["resources"], rule
    # (that the cheap stages stay local is checked against a real Slurm in test_slurm.py)
    assert res["efficiency"]["threads"] == "4"  # the site profile's, not all 8 cores
    cpu_only = tiny_config(compute={"device": "cpu"},
                           models={"smol": {"source": "embedded", "resources": {"mem_mb": 3000, "runtime": 7}}})
    res = job_resources(workdir, cpu_only)
    assert "gpu=0" in res["capture_activations"]["resources"]
    assert "mem_mb=3000" in res["capture_activations"]["resources"] and "runtime=7" in res["capture_activations"]["resources"]


# ---------------------------------------------------- which method for which model (issue 13)
def test_statistics_and_sensitivity_run_only_their_own_stages(workdir, tiny_run):
    """Comparing similarity statistics adds their similarity, structure and plans and the statistics table,
    reading the stored activations (no capture); a calibration variation captures only what it changes.
    Run: the tables hold every view, the reference's plans agree with themselves, and the bootstrap's
    selection frequencies add up to the budget (every resample prunes exactly that many blocks)."""
    compare = ["centred", "no-massive", "cka"]
    caught_up = snakemake(workdir, tiny_config())  # whatever earlier tests left to redo, so only the new is planned
    assert caught_up.returncode == 0, caught_up.stderr[-3000:]
    cfg = tiny_config(similarity={"compare": ["cka"]})
    view = "docs~cka"
    assert planned_jobs(workdir, cfg) == ({job(r, "smol", view) for r in ("similarity", "structure")}
                                          | {job("plan", "smol", view, m, 3) for m in METHODS} | {("statistics", "")})
    variations = {"n6": {"n_samples": 6}, "sub16": {"tokens_per_sequence": 16}, "lin": {"statistic": "cka"}}
    cfg = tiny_config(sensitivity={"variations": variations})
    jobs = planned_jobs(workdir, cfg)
    assert {w for r, w in jobs if r == "calibration_tokens"} == {"model=smol, calib=docs~n6"}
    assert {w for r, w in jobs if r == "capture_activations"} == {"model=smol, calib=docs~n6",
                                                                   "model=smol, calib=docs~sub16"}
    assert not {r for r, _ in jobs} & {"evaluate_pruned", "prune_checkpoint", "efficiency", "summary"}

    cfg = tiny_config(methods={**{m: {} for m in METHODS}, "auto": {"held_out_samples": 2}})
    rules = {r for r, _ in planned_jobs(workdir, cfg)}
    assert {"held_out_tokens", "auto_plan", "evaluate_pruned", "summary", "summary_auto"} <= rules
    assert not rules & {"plan", "capture_activations", "similarity", "structure", "evaluate_dense"}
    base = tiny_config()
    cfg = tiny_config(evaluation={**base["evaluation"], "seeds": [1]})
    jobs = planned_jobs(workdir, cfg)
    assert {w for r, w in jobs if r == "capture_activations"} == {"model=smol, calib=docs~seed1"}
    assert ("summary_seeds", "") in jobs and not {r for r, _ in jobs} & {"evaluate_dense", "prepare_model"}
    assert all("docs~seed1" in w for r, w in jobs if r in ("plan", "evaluate_pruned"))

    cfg = tiny_config(similarity={"compare": compare, "cka_batch_tokens": 64},
                      sensitivity={"variations": variations, "bootstrap": {"resamples": 8}})
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = read_rows(workdir / "results" / "summary" / "statistics.csv")
    assert [r["statistic"] for r in rows[::len(METHODS)]] == ["cosine", *compare]
    assert all(float(r["jaccard_to_reference"]) == 1.0 for r in rows if r["statistic"] == "cosine")
    reference_plans = {m: json.loads((workdir / f"results/smol/plans/docs/{m}-3.json").read_text())["pruned"]
                       for m in METHODS}
    assert {r["method"]: [int(x) for x in r["pruned"].split()] for r in rows if r["statistic"] == "cosine"} \
        == reference_plans
    sens = workdir / "results" / "smol" / "sensitivity"
    rls = read_rows(sens / "rls.csv")
    assert [r["variation"] for r in rls] == ["reference", "n6", "sub16", "lin"]
    ref = rls[0]
    assert float(ref["rls_low"]) <= float(ref["rls_high"]) and ref["resamples"] == "8"
    assert rls[-1]["statistic"] == "cka" and rls[-1]["rls_low"] == ""  # no bootstrap for CKA
    selection = read_rows(sens / "selection.csv")
    for variation in ("reference", "n6", "sub16"):
        for method in METHODS:
            share = sum(float(r["frequency"]) for r in selection if r["variation"] == variation and r["method"] == method)
            assert share == pytest.approx(3.0), (variation, method)
    for name in ("rls", "stability", "selection"):
        assert (sens / f"{name}.png").stat().st_size > 10_000
    assert planned_jobs(workdir, cfg) == set()
    assert planned_jobs(workdir, tiny_config()) == set()  # the reference calibration's results are untouched


def test_an_auto_plan_is_not_evaluated_twice(workdir, tiny_run):
    """auto removes the blocks of the candidate it chose: its perplexity and zero-shot rows are that
    candidate's, copied (same numbers, auto's labels), and its evaluation jobs load no model."""
    cfg = tiny_config(methods={**{m: {} for m in METHODS}, "auto": {"held_out_samples": 2}},
                      efficiency={"enabled": False})
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    auto = json.loads((workdir / "results/smol/plans/docs/auto-3.json").read_text())
    chosen = auto["chosen"]["method"]
    assert json.loads((workdir / f"results/smol/plans/docs/{chosen}-3.json").read_text())["pruned"] == auto["pruned"]
    labels = {"method", "plan"}
    kinds = ["ppl"] + (["tasks"] if "zeroshot" in cfg else [])
    for kind in kinds:
        mine = read_rows(workdir / f"results/smol/eval/docs/auto-3/{kind}.csv")
        theirs = read_rows(workdir / f"results/smol/eval/docs/{chosen}-3/{kind}.csv")
        assert [{k: v for k, v in r.items() if k not in labels} for r in mine] == \
            [{k: v for k, v in r.items() if k not in labels} for r in theirs]
        assert {(r["method"], r["plan"]) for r in mine} == {("auto", "results/smol/plans/docs/auto-3.json")}
    for kind in kinds:
        log = (workdir / f"results/logs/smol/eval/docs/auto-3{'-tasks' if kind == 'tasks' else ''}.log").read_text()
        assert "the same model is not evaluated twice" in log and "Loading weights" not in log, kind
    assert {r["method"] for r in read_rows(workdir / "results/summary/ppl.csv")} >= {"auto", chosen}


def test_jobs_start_warm_and_give_the_numbers_of_a_cold_start(workdir, tiny_run):
    """A local run forks its model-loading jobs from a server that imported PyTorch (lorp.workflow.warm):
    the evaluations' logs say so, and an evaluation started cold (LORP_WARM_START=0) writes the same file."""
    logs = workdir / "results/logs/smol/eval"
    evaluations = [p for p in logs.rglob("*.log") if "[lorp] rule evaluate" in p.read_text()]
    assert evaluations and all("(warm start" in p.read_text() for p in evaluations), \
        [p.name for p in evaluations if "(warm start" not in p.read_text()]
    target = "results/smol/eval/dense/ppl.csv"
    runs = {}
    for switch in ("1", "0"):
        out = snakemake(workdir, tiny_config(), target, "--forcerun", "evaluate_dense",
                        env={**os.environ, "LORP_WARM_START": switch})
        assert out.returncode == 0, out.stderr[-3000:]
        assert ("(warm start" in (logs / "dense.log").read_text()) == (switch == "1")
        runs[switch] = (workdir / target).read_text()
    assert runs["0"] == runs["1"]
