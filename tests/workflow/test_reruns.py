"""What each config change or code edit reruns (the rows of docs/reruns.md), as dry runs against the
session's completed tiny run (read-only); the edits of code are made in a private copy of it. A second run
of the unchanged config does nothing."""

import os
import re

import pytest

from tiny import METHODS, TASKS, ZEROSHOT_DIR, snakemake, tiny_config
from tinyrun import (ALL_FIGURES, PLAN_FIGURES, SUMMARY, age, analysis_jobs, dense_jobs, fetched, figures, job,
                     planned_jobs, planned_jobs_each, pruned_jobs, snapshot, summaries)

pytestmark = pytest.mark.slow


def test_the_completed_run_plans_nothing(completed):
    assert planned_jobs(completed, tiny_config()) == set()


def test_second_run_is_a_no_op(own_copy):
    """A real second run of the same config runs no job and leaves every file of the run as it was."""
    before = snapshot(own_copy / "results")
    out = snakemake(own_copy, tiny_config())
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Nothing to be done" in out.stdout + out.stderr
    assert snapshot(own_copy / "results") == before


# ------------------------------------------------------------------------- minimal invalidation
def test_budget_added(completed):
    assert planned_jobs(completed, tiny_config(budgets=[3, 5])) == pruned_jobs(budgets=(5,)) | SUMMARY | PLAN_FIGURES


def test_lorp_clusters_or_thresholds_changed(completed):
    lorp_only = {job("structure", calib="docs")} | pruned_jobs(methods=["lorp"]) | SUMMARY | ALL_FIGURES
    changes = ({"k": 2}, {"rls_thresholds": [1.2, 0.5]}, {"random_state": 1})
    planned = planned_jobs_each(*((completed, tiny_config(methods={**{m: {} for m in METHODS}, "lorp": lorp}))
                                  for lorp in changes))
    for lorp, jobs in zip(changes, planned):
        assert jobs == lorp_only, lorp


def test_evaluation_dataset_or_seqlen_changed(completed):
    evals = dense_jobs("ppl") | pruned_jobs(kinds=["ppl"], selection=False) | summaries("ppl") | figures("vs_ppl")
    seqlen = tiny_config()
    seqlen["evaluation"]["seqlen"] = 32
    bos = tiny_config(models={"smol": {"source": "embedded", "bos_per_window": True}})
    dataset = tiny_config()
    dataset["evaluation"]["datasets"]["more-docs"] = {"source": "python-docs", "seqlen": 48}
    assert planned_jobs_each((completed, seqlen), (completed, bos), (completed, dataset)) == [evals] * 3


def test_activation_settings_changed(completed):
    expected = analysis_jobs(from_rule="capture_activations") | pruned_jobs() | SUMMARY | ALL_FIGURES
    configs = [tiny_config(activations={"dtype": "float32"}), tiny_config(activations={"tokens_per_sequence": 16}),
               tiny_config(models={"smol": {"source": "embedded", "activations_dtype": "float32"}}),
               # a per-model dtype equal to the global one changes nothing
               tiny_config(models={"smol": {"source": "embedded", "activations_dtype": "float16"}}),
               # the batch size only changes speed: nothing reruns
               tiny_config(activations={"batch_size": 1})]
    assert planned_jobs_each(*((completed, cfg) for cfg in configs)) == [expected] * 3 + [set()] * 2


def test_calibration_changed(completed):
    expected = analysis_jobs() | pruned_jobs() | SUMMARY | ALL_FIGURES  # no prepare_model, no dense evaluation
    changes = ({"n_samples": 5}, {"seqlen": 32}, {"seed": 1}, {"source": "python-docs", "max_documents": 20})
    configs = [tiny_config() for _ in changes]
    for cfg, change in zip(configs, changes):
        cfg["calibration"]["docs"].update(change)
    planned = planned_jobs_each(*((completed, cfg) for cfg in configs))
    for change, jobs in zip(changes[:3], planned):  # how the corpus is sampled: the same source, nothing fetched
        assert jobs == expected, change
    # the last change is a new source (a corpus record names max_documents): checked and fetched, once
    new_source = planned[-1] - expected
    assert len(new_source) == 1 and {r for r, _ in new_source} == {"fetch_source"} and planned[-1] >= expected


def test_method_or_model_added(completed):
    methods = {**{m: {} for m in METHODS}, "last": {}}
    models = {"smol": {"source": "embedded"}, "smol-fp32": {"source": "embedded", "storage_dtype": "float32"}}
    expected = ({job("prepare_model", "smol-fp32")} | dense_jobs(model="smol-fp32")
                | analysis_jobs(model="smol-fp32") | pruned_jobs(model="smol-fp32") | SUMMARY
                | figures("structure", "pruned_layers", model="smol-fp32") | figures("locality", "vs_ppl", "vs_tasks"))
    assert planned_jobs_each((completed, tiny_config(methods=methods)), (completed, tiny_config(models=models))) == [
        pruned_jobs(methods=["last"]) | SUMMARY | PLAN_FIGURES, expected]


def test_other_method_parameters_changed(completed):
    cfg = tiny_config(methods={**{m: {} for m in METHODS}, "shortgpt": {"protect_first": False}})
    assert planned_jobs(completed, cfg) == pruned_jobs(methods=["shortgpt"]) | SUMMARY | PLAN_FIGURES


def test_compute_precision_changed(completed):
    expected = analysis_jobs(from_rule="capture_activations") | pruned_jobs() | dense_jobs() | SUMMARY | ALL_FIGURES
    assert planned_jobs(completed, tiny_config(compute={"device": "auto", "dtype": "float32"})) == expected


def test_speed_and_disk_settings_change_nothing(completed):
    batch = tiny_config()
    batch["evaluation"]["batch_size"] = 1
    # exports: a name added writes its checkpoint and nothing else; names removed rerun nothing
    more = tiny_config(checkpoints={"export": ["shortgpt-3", "streamline-3", "lorp-3"]})
    configs = [batch, more, tiny_config(checkpoints={"export": "none"})]
    expected = [set(), {job("prune_checkpoint", calib="docs", method="lorp", budget=3)}, set()]
    if ZEROSHOT_DIR.is_dir():
        cfg = tiny_config()
        cfg["zeroshot"]["batch_size"] = 1
        configs, expected = configs + [cfg], expected + [set()]
    assert planned_jobs_each(*((completed, cfg) for cfg in configs)) == expected


def test_zero_shot_tasks_changed(completed):
    if not ZEROSHOT_DIR.is_dir():
        pytest.skip(f"zero-shot task files not found at {ZEROSHOT_DIR}")
    expected = (dense_jobs("tasks") | pruned_jobs(kinds=["tasks"], selection=False) | summaries("tasks")
                | figures("vs_tasks"))
    configs = [tiny_config(), tiny_config()]
    configs[0]["zeroshot"]["tasks"] = TASKS + ["rte"]
    configs[1]["zeroshot"]["limit"] = 5
    assert planned_jobs_each(*((completed, cfg) for cfg in configs)) == [expected] * 2


def test_task_files_count_by_their_bytes(own_copy):
    """The zero-shot task files and lorp's task definitions copied again with the same bytes (every one newer
    than every result, as after a sync of the data or a reinstall of the package) rerun nothing; an edited
    task definition reruns the task evaluations and what shows them."""
    if not ZEROSHOT_DIR.is_dir():
        pytest.skip(f"zero-shot task files not found at {ZEROSHOT_DIR}")
    definitions = own_copy / "src" / "lorp" / "evaluation" / "lm_eval_tasks"
    age(own_copy, before=min(path.stat().st_mtime for path in ZEROSHOT_DIR.rglob("*")))  # the run, code included
    for definition in definitions.iterdir():  # the package installed again
        os.utime(definition)
    assert planned_jobs(own_copy, tiny_config()) == set()
    definition = definitions / "utils.py"
    definition.write_text(definition.read_text() + "\n# edited\n")
    assert planned_jobs(own_copy, tiny_config()) == (dense_jobs("tasks") | pruned_jobs(kinds=["tasks"], selection=False)
                                                     | summaries("tasks") | figures("vs_tasks"))


def test_efficiency_settings_changed(completed):
    expected = {job("efficiency")} | summaries("efficiency")
    cfg = tiny_config()
    cfg["efficiency"]["seqlen"] = 32
    assert planned_jobs(completed, cfg) == expected


def test_statistics_sensitivity_auto_and_seeds_plan_only_their_own_stages(completed):
    """Comparing similarity statistics adds their similarity, structure and plans and the statistics table,
    reading the stored activations (no capture); a calibration variation captures only what it changes;
    auto adds its held-out tokens, its plan and evaluations, and no other plan or analysis; a seed adds
    its own calibration's analysis and plans, and no dense evaluation. (They are run in
    test_extensions.py.)"""
    variations = {"n6": {"n_samples": 6}, "sub16": {"tokens_per_sequence": 16}, "lin": {"statistic": "cka"}}
    statistics, sensitivity, auto, seeds = planned_jobs_each(
        (completed, tiny_config(similarity={"compare": ["cka"]})),
        (completed, tiny_config(sensitivity={"variations": variations})),
        (completed, tiny_config(methods={**{m: {} for m in METHODS}, "auto": {"held_out_samples": 2}})),
        (completed, tiny_config(evaluation={**tiny_config()["evaluation"], "seeds": [1]})))
    view = "docs~cka"
    assert statistics == ({job(r, "smol", view) for r in ("similarity", "structure")}
                          | {job("plan", "smol", view, m, 3) for m in METHODS} | {("statistics", "")})
    jobs = sensitivity
    assert {w for r, w in jobs if r == "calibration_tokens"} == {"model=smol, calib=docs~n6"}
    assert {w for r, w in jobs if r == "capture_activations"} == {"model=smol, calib=docs~n6",
                                                                   "model=smol, calib=docs~sub16"}
    assert not {r for r, _ in jobs} & {"evaluate_pruned", "prune_checkpoint", "efficiency", "summary"}

    rules = {r for r, _ in auto}
    assert {"held_out_tokens", "auto_plan", "evaluate_pruned", "summary", "summary_auto"} <= rules
    assert not rules & {"plan", "capture_activations", "similarity", "structure", "evaluate_dense"}
    jobs = seeds
    assert {w for r, w in jobs if r == "capture_activations"} == {"model=smol, calib=docs~seed1"}
    assert ("summary_seeds", "") in jobs and not {r for r, _ in jobs} & {"evaluate_dense", "prepare_model"}
    for rule in ("plan", "evaluate_pruned"):  # the seed's plans, evaluated like its entry's
        assert {w for r, w in jobs if r == rule} == {job(rule, "smol", "docs~seed1", m, 3)[1] for m in METHODS}


# ------------------------------------------------------------------------------- code edits
def test_script_changed(own_copy):
    """An edited stage script reruns its stage and what follows; the original put back (content and
    mtime) reruns nothing."""
    script = own_copy / "scripts" / "structure.py"
    original, stat = script.read_text(), script.stat()
    script.write_text(original + "\n# edited\n")
    expected = {job("structure", calib="docs")} | pruned_jobs(methods=["lorp"]) | SUMMARY | ALL_FIGURES
    assert planned_jobs(own_copy, tiny_config()) == expected
    script.write_text(original)
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(own_copy, tiny_config()) == set()


@pytest.mark.parametrize("module,old,new,expect", [
    ("depth/methods.py", "    best = 0\n", "    best = 0 + 0\n", "plans"),  # _best_window: streamline's and angular's
    ("figures.py", 'DENSE_COLOR = "#000000"', 'DENSE_COLOR = "#000001"', "figures"),
    ("depth/methods.py", "def streamline_plan(", "# a comment\n\n\ndef streamline_plan(", "nothing"),
    ("depth/methods.py", "    bi = [1.0 - float(e[i, i + 1]) for i in range(n)]",
     "    bi = [1.0 - float(e[i, i + 1]) + 0.0 for i in range(n)]", "shortgpt"),
    ("workflow/stages/sources.py", "mend the file, or point", "mend the file, or else point", "sources"),
])
def test_package_edited(own_copy, module, old, new, expect):
    """An edit of the package reruns the stages whose code it changes: a window helper the plans of the
    methods that use it and what follows (not capture, similarity or structure), one method's plan function
    that method's plans and what follows and nothing of the other methods, a figure's colour the figures
    only, a comment nothing, and the source check's code nothing (a source is checked once, when its record
    is missing). The original put back reruns
    nothing."""
    path = own_copy / "src" / "lorp" / module
    original, stat = path.read_text(), path.stat()
    assert old in original
    path.write_text(original.replace(old, new, 1))
    planned = planned_jobs(own_copy, tiny_config())
    rules = {rule for rule, _ in planned}
    if expect == "plans":  # the window helper: the plans of the two methods that call it, no other method's
        methods = {re.search(r"method=([\w-]+)", w)[1] for _, w in planned if "method=" in w}
        assert methods == {"streamline", "angular"} and {"plan", "evaluate_pruned", "summary"} <= rules
        assert not rules & {"calibration_tokens", "capture_activations", "similarity", "structure",
                            "evaluate_dense", "prepare_model"}
    elif expect == "figures":
        assert rules and all(r.startswith("figure_") for r in rules), rules
    elif expect == "sources":  # the source check's code: no record is missing, so nothing (rules/common.smk)
        assert rules == set(), rules
    elif expect == "shortgpt":  # one method's plan function: its plans and what follows, no other method's
        methods = {re.search(r"method=([\w-]+)", w)[1] for _, w in planned if "method=" in w}
        assert methods == {"shortgpt"} and job("plan", calib="docs", method="shortgpt", budget=3) in planned
        assert not rules & {"capture_activations", "similarity", "structure", "evaluate_dense"}
    else:
        assert rules == set()
    path.write_text(original)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(own_copy, tiny_config()) == set()
