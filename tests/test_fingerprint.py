"""The code fingerprint of each job follows the package code its script reaches, and a registered method,
metric or allocation counts only for the jobs that name it (issues 14 and 23)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lorp.workflow import fingerprint
from lorp.workflow.dag import workflow_jobs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from tiny import METHODS, copy_workflow, tiny_config  # noqa: E402

EVERY_RULE_CONFIG = tiny_config(
    methods={m: {} for m in [*METHODS, "last", "sleb", "auto"]},
    ablation={"lorp_k": [2]},
    similarity={"compare": ["cka"]},
    sensitivity={"bootstrap": {"resamples": 2}},
    evaluation={"seqlen": 64, "max_windows": 2, "batch_size": 2, "seeds": [1],
                "datasets": {"python-docs": {"source": "python-docs"}}},
    sparsity={"targets": [50], "metrics": ["wanda", "magnitude", "sparsegpt"], "allocations": ["uniform", "owl", "mrp"],
              "nm": ["2:4"], "sweep": {"step": [0.01]}, "sparsegpt": {"scores": "obs"}},
    checkpoints={"export": ["shortgpt-3", "wanda-mrp-50", "shortgpt-3+patch"]},
    recovery={"methods": {"patch": {}}, "plans": ["shortgpt-3"]},
)
"""A tiny config under which every rule of the workflow has at least one job."""


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Every job of :data:`EVERY_RULE_CONFIG` in a private copy of the workflow, from Snakemake's DAG."""
    root = copy_workflow(tmp_path_factory.mktemp("fingerprint"))
    configfile = root / "config.yaml"
    configfile.write_text(yaml.safe_dump(EVERY_RULE_CONFIG, sort_keys=False))
    return root, workflow_jobs(configfile, root, root / "Snakefile")


@pytest.fixture(scope="module")
def baseline(jobs):
    """The fingerprint of every job on the unedited package (a fresh :func:`copy` has the same)."""
    return codes(jobs, jobs[0])


@pytest.fixture()
def copy(tmp_path, jobs):
    """A private copy of ``src/lorp`` and ``scripts/`` beside the jobs' copy (edits stay in this test)."""
    for name in ("scripts", "src"):
        shutil.copytree(jobs[0] / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def codes(jobs, root):
    """(rule, wildcards) -> fingerprint of every job, computed on the package under ``root``."""
    fingerprint.clear_caches()
    out = {}
    for job in jobs[1]:
        script = root / "scripts" / Path(job.script).name
        out[(job.rule, tuple(sorted(job.wildcards.items())))] = fingerprint.job_code(script, job.wildcards, root, job.rule)
    return out


def edit(root, module, old, new):
    path = root / "src" / "lorp" / module
    text = path.read_text()
    assert old in text, (module, old)
    path.write_text(text.replace(old, new, 1))


def changed(before, after):
    return {key for key in before if before[key] != after[key]}


def rules(keys):
    return {rule for rule, _ in keys}


DENSE = {"evaluate_dense", "evaluate_tasks_dense"}
"""The dense model's evaluations: no registration counts for them."""

UPSTREAM = {"capture_activations", "similarity", "structure", "structure_fixed_k", "input_norms", *DENSE}
"""Rules no depth method's code reaches."""


def moved_by_editing(jobs, copy, baseline, module, old, new):
    """The jobs whose fingerprint an edit changes, as (rule, method) where the job has a method; and the rules."""
    edit(copy, module, old, new)
    moved = changed(baseline, codes(jobs, copy))
    return {(rule, dict(w)["method"]) for rule, w in moved if "method" in dict(w)}, rules(moved)


def test_every_rule_with_a_script_has_a_fingerprint_from_snakemakes_rules(jobs):
    """Every rule Snakemake lists (but ``all``) has jobs here, each with a script and the ``code`` param its
    script's fingerprint gives; but ``fetch_source``, which runs only when its record is missing (a source
    is named by its record, rules/common.smk)."""
    root, dag = jobs
    listed = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules", "--configfile",
                             str(root / "config.yaml")], cwd=root, capture_output=True, text=True, check=True)
    declared = set(re.findall(r"^(\w+)(?: \(|$)", listed.stdout, flags=re.M)) - {"all"}
    assert declared and declared == {job.rule for job in dag}
    for job in dag:
        if job.rule == "fetch_source":
            assert job.script and "code" not in job.params
            continue
        assert job.script and job.params["code"] == fingerprint.job_code(job.script, job.wildcards, root, job.rule), job.rule
    plan = next(j for j in dag if j.rule == "plan" and j.wildcards["method"] == "shortgpt")
    assert any(d.endswith(":make_plan") for d in fingerprint.definitions(plan.script, plan.wildcards, root))
    assert not any(d.endswith(":capture") for d in fingerprint.definitions(plan.script, plan.wildcards, root))


def test_one_methods_plan_function_reruns_its_plans_and_nothing_of_another_method(jobs, copy, baseline):
    methods, moved = moved_by_editing(jobs, copy, baseline, "depth/methods.py",
                                      "    pruned = list(range(n_layers - 1 - budget, n_layers - 1))",
                                      "    pruned = list(range(n_layers - budget - 1, n_layers - 1))")
    # the jobs of one method that change are its plans; the tables and figures that draw every method
    # (by the registry's colours) follow, as they follow from its plans anyway
    assert methods == {("plan", "last")}
    assert not moved & (UPSTREAM | {"sparse_plan", "sparse_prune", "auto_plan"})


def test_sleb_search_edited_reruns_sleb_plans_only(jobs, copy, baseline):
    """SLEB's module is reached only through its registration: an edit reruns its plans (rule model_plan), no
    other method's plan or evaluation (the jobs that select no method, the figures', count it as every
    registration)."""
    methods, moved = moved_by_editing(jobs, copy, baseline, "depth/sleb.py", "key=lambda c: (sums[c], c))",
                                      "key=lambda c: (sums[c], -c))")
    assert methods == {("model_plan", "sleb")} and not moved & (UPSTREAM | {"plan", "auto_plan", "evaluate_pruned"})


def test_a_shared_window_function_reruns_the_methods_that_use_it(jobs, copy, baseline):
    methods, _ = moved_by_editing(jobs, copy, baseline, "depth/methods.py", "    best = 0\n    for s in range(1, len(scores)):",
                                  "    best = int(0)\n    for s in range(1, len(scores)):")
    assert methods == {("plan", "streamline"), ("plan", "angular")}


def test_a_registration_counts_for_its_method_only(jobs, copy, baseline):
    """A method's registration (its parameters' defaults) counts for the jobs that name the method."""
    methods, moved = moved_by_editing(jobs, copy, baseline, "depth/methods.py",
                                      '"protect_first": {"type": "boolean", "default": True,',
                                      '"protect_first": {"type": "boolean", "default": False,')
    assert methods == {("plan", "shortgpt")} and not moved & UPSTREAM


def test_a_recovery_registration_counts_for_its_recovery_only(jobs, copy, baseline):
    """An edit of LoRA's registration moves no job of the patch; the patch's moves its recovered model's jobs
    and the reports that draw every recovery, no plan, no pruned or dense model's evaluation (the dense
    model's share their script with the recovered ones)."""
    edit(copy, "recovery/registry.py", '"steps": {"type": "integer", "minimum": 1, "default": 100,',
         '"steps": {"type": "integer", "minimum": 1, "default": 101,')
    moved = changed(baseline, codes(jobs, copy))
    assert not any("recovery" in dict(w) for _, w in moved)
    edit(copy, "recovery/registry.py", '"default": 0.01,', '"default": 0.02,')
    moved = rules(changed(baseline, codes(jobs, copy)))
    assert {"recover", "evaluate_recovered", "recovered_checkpoint"} <= moved
    assert not moved & (UPSTREAM | {"plan", "evaluate_pruned", "prune_checkpoint", "sparse_prune"})


def test_a_metric_registration_reruns_its_pruned_models_and_no_dense_evaluation(jobs, copy, baseline):
    """SparseGPT's registration moves its own jobs (plans, pruned models, their evaluations) and the tables and
    figures that draw every metric; not Wanda's or magnitude's jobs, and not the dense model's evaluations,
    whose script reaches every metric through the pruned model's rebuild but whose jobs run none."""
    edit(copy, "sparse/metrics.py", 'linestyle=":"', 'linestyle="-."')
    moved = changed(baseline, codes(jobs, copy))
    metrics = {dict(w).get("metric", dict(w).get("method", "").split("-")[0]) for _, w in moved} - {""}
    assert {"sparse_plan", "sparse_prune", "evaluate_pruned"} <= rules(moved) and metrics == {"sparsegpt"}
    assert not rules(moved) & DENSE


def test_a_method_body_reruns_plans_not_capture_or_similarity(jobs, copy, baseline):
    methods, moved = moved_by_editing(
        jobs, copy, baseline, "depth/methods.py", "def lorp_plan(s: np.ndarray, structure: LayerStructure, budget: int) -> Plan:\n",
        "def lorp_plan(s: np.ndarray, structure: LayerStructure, budget: int) -> Plan:\n    budget = int(budget)\n")
    assert methods == {("plan", "lorp"), ("plan", "lorp-k2")} and not moved & UPSTREAM


def test_a_figure_colour_reruns_figures_only(jobs, copy, baseline):
    edit(copy, "figures.py", 'DENSE_COLOR = "#000000"', 'DENSE_COLOR = "#000001"')
    moved = rules(changed(baseline, codes(jobs, copy)))
    assert moved and all(r.startswith("figure_") or r in ("k_ablation", "sensitivity", "statistics", "mrp_sweep")
                         for r in moved), moved


def test_comments_docstrings_and_formatting_rerun_nothing(jobs, copy, baseline):
    edit(copy, "depth/methods.py", "def streamline_plan(", "# a comment\n\n\ndef streamline_plan(")
    edit(copy, "depth/methods.py", '"""Streamline: remove', '"""Streamline (reworded): remove')
    edit(copy, "depth/similarity.py", "    s = gram / count", "    s = (gram / count)  # parentheses")
    assert changed(baseline, codes(jobs, copy)) == set()
