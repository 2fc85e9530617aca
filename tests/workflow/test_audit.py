"""The audit (lorp.workflow.audit): its job list equal to Snakemake's DAG; it passes on the completed run,
finds damage that Snakemake cannot see and repairs it (in a private copy), names what a config change left
stale or missing, and names the artifacts made by older code."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from lorp.io import read_json
from lorp.workflow.dag import workflow_jobs
from tiny import ROOT, copy_workflow, tiny_config, write_config
from tinyrun import SPARSE, artifact_hashes, audited, dry_run, job, planned_jobs

pytestmark = pytest.mark.slow


def audit_cmd(configfile):
    return [sys.executable, "-m", "lorp.workflow.audit", "--configfile", str(configfile)]


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


def test_audit_passes_on_a_complete_run(completed, tmp_path):
    assert audited(completed) == []
    out = subprocess.run(audit_cmd(write_config(completed, tiny_config(), tmp_path / "config.yaml")),
                         cwd=completed, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 problems" in out.stderr


def test_audit_finds_damage_snakemake_cannot_see_and_repairs_it(own_copy):
    """A corrupted activation file, a deleted checkpoint file, a hand-edited plan and an edited
    evaluation CSV: Snakemake alone sees only the edited files (the other two are inside directory
    outputs); the audit names all four with the command that repairs them, and --repair gives back
    exactly the clean run's artifacts. (The activation file is put back before the repair, which would
    otherwise rerun the whole run from the capture: a capture's rerun is test_faults.py's.)"""
    workdir, results = own_copy, own_copy / "results"
    clean = artifact_hashes(results)
    layer = results / "smol/activations/docs/layer_007.npy"
    stat, original = layer.stat(), layer.read_bytes()
    arr = np.load(layer)
    arr[0, 0] += 1
    np.save(layer, arr)
    os.utime(layer, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as a bit flip on disk: same size and time
    (results / "smol/checkpoints/docs/shortgpt-3/model.safetensors").unlink()
    plan_path = results / "smol/plans/docs/streamline-3.json"
    plan = read_json(plan_path)
    plan["pruned"][0] -= 1  # now overlaps 'kept' and disagrees with the checkpoint
    plan_path.write_text(json.dumps(plan))
    ppl_path = results / "smol/eval/docs/lorp-3/ppl.csv"
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

    cmd = audit_cmd(write_config(workdir, tiny_config()))
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    assert out.returncode == 1 and "layer_007.npy" in out.stdout
    (rm_line,) = [line for line in out.stdout.splitlines() if line.startswith("  cd ") and " && rm -rf " in line]
    for damaged in ("results/smol/activations/docs", "results/smol/checkpoints/docs/shortgpt-3",
                    "results/smol/plans/docs/streamline-3.json", "results/smol/checkpoints/docs/streamline-3",
                    "results/smol/eval/docs/lorp-3/ppl.csv"):
        assert f" {damaged} " in rm_line + " ", damaged
    assert f"  snakemake --snakefile {ROOT / 'Snakefile'} --configfile {workdir / 'config.yaml'} --directory" in out.stdout

    layer.write_bytes(original)
    os.utime(layer, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    out = subprocess.run([*cmd, "--repair", "--snakefile", str(workdir / "Snakefile"), "--cores", "2"],
                         cwd=workdir, capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "repair: 0 problems left" in out.stderr
    assert artifact_hashes(results) == clean
    assert planned_jobs(workdir, tiny_config()) == set()


def test_audit_reports_stale_and_missing_after_a_config_change(completed):
    cfg = tiny_config(budgets=[3, 4])
    cfg["evaluation"]["seqlen"] = 32
    problems = audited(completed, cfg)
    assert any(f.kind == "missing" and f.path == "results/smol/plans/docs/lorp-4.json" for f in problems)
    assert any(f.kind == "stale" and f.path == "results/smol/eval/dense/ppl.csv" for f in problems)


def test_audit_reports_artifacts_made_by_older_code(own_copy):
    workdir = own_copy
    path = workdir / "src" / "lorp" / "depth" / "methods.py"
    path.write_text(path.read_text().replace("    starts = n - budget  #", "    starts = n - budget + 0  #", 1))
    out = subprocess.run(audit_cmd(write_config(workdir, tiny_config())), cwd=workdir, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(workdir / "src")})
    assert out.returncode == 1
    assert "plan was made by older code" in out.stdout and "lorp.depth.methods" in out.stdout
    assert "capture_activations was made by older code" not in out.stdout


def test_audit_lists_staging_leftovers_with_their_size_and_repair_removes_them(own_copy):
    """What a killed job leaves (a staging directory of the capture, a staging file of a plan) is listed with
    the space it takes; --repair leaves it while a Snakemake run holds its lock here (a job may be writing
    it), deletes it otherwise, and nothing else changes."""
    workdir, results = own_copy, own_copy / "results"
    clean = artifact_hashes(results)
    staged_dir = results / "smol/activations/.docs.tmp-k3j2h1g0"
    staged_dir.mkdir()
    np.save(staged_dir / "layer_000.npy", np.random.default_rng(0).random((1000, 250), dtype=np.float32))  # 1 MB
    staged_file = results / "smol/plans/docs/.lorp-3.json.tmp-a1b2c3d4"
    staged_file.write_text("{")
    lock = workdir / ".snakemake/locks/0.input.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("results/smol/activations/docs\n")

    cmd = [*audit_cmd(write_config(workdir, tiny_config())), "--repair", "--snakefile", str(workdir / "Snakefile")]
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    assert out.returncode == 1, out.stdout + out.stderr
    assert ("leftover     results/smol/activations/.docs.tmp-k3j2h1g0: staging directory of "
            "results/smol/activations/docs, 1.0 MB on disk, left by a job that did not finish") in out.stdout
    assert re.search(r"leftover     results/smol/plans/docs/\.lorp-3\.json\.tmp-a1b2c3d4: staging file of "
                     r"results/smol/plans/docs/lorp-3\.json, [\d.]+ k?B on disk", out.stdout), out.stdout
    assert "2 problems" in out.stderr and "not the 2 staging leftovers: a Snakemake run holds its lock" in out.stdout
    assert staged_dir.is_dir() and staged_file.is_file()

    lock.unlink()
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "repair: delete the staging leftovers (nothing needs to run again)" in out.stdout
    assert "repair: deleted 2 staging leftovers (1.0 MB)" in out.stderr and "repair: 0 problems left" in out.stderr
    assert "running" not in out.stderr  # no workflow run for leftovers alone
    assert not staged_dir.exists() and not staged_file.exists()
    assert artifact_hashes(results) == clean
