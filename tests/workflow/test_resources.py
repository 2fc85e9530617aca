"""Cluster resources of the jobs (dry runs with the site profile against the completed tiny run): a GPU
only where it is used, memory that scales with the model, per-model overrides."""

import re
from pathlib import Path

import pytest

from tiny import snakemake, tiny_config

pytestmark = pytest.mark.slow

# outputs whose jobs and ancestors cover every rule these tests look at, so the dry runs stay small
RESOURCE_TARGETS = ["results/smol/eval/dense/ppl.csv", "results/smol/eval/docs/lorp-3/ppl.csv",
                    "results/smol/eval/efficiency.csv", "results/smol/checkpoints/docs/lorp-3"]


def job_resources(workdir: Path, config: dict, configfile: Path, *args: str) -> dict[str, dict[str, str]]:
    """rule -> resources and threads of its first job in a dry run (with the given profile args)."""
    out = snakemake(workdir, config, "-n", "--forceall", *RESOURCE_TARGETS, *args, configfile=configfile)
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


def test_gpu_only_where_used_and_memory_scales_with_the_model(completed, tmp_path):
    configfile = tmp_path / "config.yaml"
    res = job_resources(completed, tiny_config(), configfile, "--profile", str(completed / "slurm"), "--cores", "8")
    for rule in ("capture_activations", "prune_checkpoint", "evaluate_dense", "evaluate_pruned", "efficiency"):
        assert "gpu=1" in res[rule]["resources"], rule
        assert "mem_mb=8769" in res[rule]["resources"], rule  # 8000 MB + 6 bytes x 134.5M parameters
    for rule in ("prepare_model", "calibration_tokens", "similarity"):
        assert "gpu=1" not in res[rule]["resources"], rule
    # (that the cheap stages stay local is checked against a real Slurm in test_slurm.py)
    assert res["efficiency"]["threads"] == "4"  # the site profile's, not all 8 cores
    cpu_only = tiny_config(compute={"device": "cpu"},
                           models={"smol": {"source": "embedded", "resources": {"mem_mb": 3000, "runtime": 7}}})
    res = job_resources(completed, cpu_only, configfile)
    assert "gpu=0" in res["capture_activations"]["resources"]
    assert "mem_mb=3000" in res["capture_activations"]["resources"] and "runtime=7" in res["capture_activations"]["resources"]
