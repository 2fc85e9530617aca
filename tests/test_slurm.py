"""The tiny workflow through a real Slurm cluster with the real profile: `snakemake --cores 8 --profile slurm`.

Checks from sacct that every GPU-stage job went through Slurm with a GPU allocated and that the CPU
stages did not ask for one, that the outputs equal a local run's, and that a job cancelled with
scancel is completed by a rerun. The daemons are stopped at the end, also on failure. Skipped, with
the reason, where Slurm cannot be started (it needs root and the recipe in ../shared/tools/slurm).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import slurm_harness as sh
from tiny import copy_run, tiny_config, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
GPU_RULES = {"capture_activations", "prune_checkpoint", "evaluate_dense", "evaluate_pruned"}
CPU_RULES = {"calibration_tokens", "similarity"}
# The session's tiny run (the local run compared with) with one of its methods, the one it exports (so
# every GPU rule runs: the Slurm node has one GPU, so its jobs run one after another), and no zero-shot or
# efficiency jobs: the same calibration, activations, structure and evaluation, so the same artifacts.
CONFIG = tiny_config(methods={"streamline": {}}, zeroshot={"tasks": []}, efficiency={"enabled": False})
# what is compared between the Slurm run and the local run
COMPARED = ["smol/calib/docs/tokens.npy", "smol/activations/docs/layer_015.npy", "smol/plans/docs/streamline-3.json",
            "smol/structure/docs/rls.json"]


def slurm_cmd(*extra: str) -> list[str]:
    # the real site profile; only the status checks are made sooner (the first after 2 s, then every 2 s
    # instead of 10), so that the test does not wait for finished jobs
    return [sys.executable, "-m", "snakemake", "--cores", "8", "--profile", "slurm", "--configfile", "config.yaml",
            "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2", *extra]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ppl(path: Path) -> float:
    import csv

    with path.open() as fh:
        return float(next(csv.DictReader(fh))["ppl"])


@pytest.fixture(scope="module", autouse=True)
def _slurm_tools():
    """The real ``scontrol`` for this module (the session's PATH puts one that fails first:
    conftest.no_slurm_controller)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", sh.ORIGINAL_PATH)
        yield


@pytest.fixture(scope="module")
def cluster():
    reason = sh.cannot_start()
    if reason:  # nothing was started: skip with the reason
        pytest.skip(f"Slurm cannot be started here: {reason}")
    reason = sh.start()
    if reason:
        sh.stop()
        pytest.skip(f"Slurm cannot be started here: {reason}")
    try:
        yield
    finally:
        sh.stop()


@pytest.fixture(scope="module")
def local_run(tiny_results):
    return tiny_results


@dataclass
class SlurmRun:
    """The workflow run through Slurm: its directory, the capture job cancelled in its first attempt, what
    that attempt printed and its status, and what the rerun that completed it printed."""

    workdir: Path
    cancelled: str
    first_status: int
    first_log: str
    rerun_log: str


@pytest.fixture(scope="module")
def slurm_run(cluster, tiny_results, tmp_path_factory) -> SlurmRun:
    """One run through Slurm, as a preempted cluster job meets it: the capture job is cancelled with a signal
    while it runs (as preemption or the OOM killer end jobs), the run fails, and the same command again
    completes it.

    A plain `scancel` is not used: snakemake-executor-plugin-slurm 2.8.0 matches job states exactly,
    so the state sacct reports for it, "CANCELLED by <uid>", is not taken as a failure and Snakemake
    keeps waiting for the job (seen here, also after SIGINT). `scancel --full --signal=TERM` ends the
    job as FAILED, which the plugin reports.
    """
    # From the local run's prepared model (its conversion is the same job either way; the calibration and
    # similarity are the CPU stages checked): no other result copied, Snakemake's records kept.
    d = copy_run(tiny_results.parent, tmp_path_factory.mktemp("slurm") / "wf",
                 results=("smol/model", "smol/model.provenance.json", "sources"))
    write_config(d, CONFIG)
    proc = subprocess.Popen(slurm_cmd("--retries", "0"), cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline, job_id = time.time() + 600, None
        while time.time() < deadline and job_id is None and proc.poll() is None:
            job_id = sh.running_job("rule_capture_activations")
            time.sleep(0.5)
        if job_id is None:
            proc.kill()
            pytest.fail(f"no capture job was seen running:\n{proc.communicate()[0][-4000:]}")
        subprocess.run(["scancel", "--full", "--signal=TERM", job_id], check=True)
        first_log = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    out = subprocess.run(slurm_cmd(), cwd=d, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    return SlurmRun(d, job_id, proc.returncode, first_log, out.stdout + out.stderr)


def test_gpu_stages_ran_as_slurm_jobs_with_a_gpu(slurm_run):
    jobs = sh.jobs_by_rule(slurm_run.workdir / "results/logs/slurm")
    assert GPU_RULES | CPU_RULES <= set(jobs), jobs
    assert not set(jobs) & {"plan", "structure", "summary", "fetch_source"}, "cheap stages must stay local"
    records = sh.sacct([j for ids in jobs.values() for j in ids])
    for rule, ids in jobs.items():
        for job_id in ids:
            rec = records[job_id]
            assert rec["state"] == ("FAILED" if job_id == slurm_run.cancelled else "COMPLETED"), (rule, rec)
            assert ("gres/gpu=1" in rec["tres"]) == (rule in GPU_RULES), (rule, rec)


def test_outputs_equal_a_local_run(slurm_run, local_run):
    results = slurm_run.workdir / "results"
    for rel in COMPARED:
        assert sha(results / rel) == sha(local_run / rel), rel
    for rel in ("smol/eval/dense/ppl.csv", "smol/eval/docs/streamline-3/ppl.csv"):
        assert ppl(results / rel) == pytest.approx(ppl(local_run / rel), rel=1e-6), rel


def test_cancelled_job_is_completed_by_a_rerun(slurm_run):
    """The cancelled capture job failed the run, and the same command again ran it (the outputs of the
    completed run equal a local run's: test_outputs_equal_a_local_run); then nothing is left to do."""
    assert sh.wait_for_state(slurm_run.cancelled, "FAILED") == "FAILED"
    assert slurm_run.first_status != 0, slurm_run.first_log[-3000:]
    assert "rule capture_activations" in slurm_run.rerun_log  # the cancelled job was run again
    dry = subprocess.run(slurm_cmd("-n"), cwd=slurm_run.workdir, capture_output=True, text=True)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_the_module_skips_with_a_reason_without_the_recipe(tmp_path, monkeypatch):
    """Where ../shared/tools/slurm is absent the harness names it and stopping is a no-op (no error)."""
    monkeypatch.setattr(sh, "RECIPE", tmp_path / "no-recipe")
    assert "is not beside the checkout" in sh.cannot_start()
    sh.stop()
