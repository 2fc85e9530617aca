"""Shared fixtures: the embedded model prepared once per test session, paths to the shared data,
local Snakemake runs that do not wait for a Slurm controller."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {SHARED_DATA} (expected beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory) -> Path:
    """The embedded SmolLM2-135M converted once to a safetensors directory (about 30 s)."""
    from lorp.workflow.pipeline import prepare_model

    out = tmp_path_factory.mktemp("embedded") / "model"
    prepare_model("embedded", out, "bfloat16")
    return out


@pytest.fixture(scope="module")
def no_slurm_controller(tmp_path_factory):
    """Snakemake runs in this module are local: put an ``scontrol`` that fails at once first on PATH.

    snakemake-executor-plugin-slurm (2.8.0) runs ``scontrol show config`` when Snakemake starts,
    whatever the executor. Where Slurm's tools are installed but no controller answers (as after
    test_slurm.py stopped its cluster), that call waits about 9 s before giving up, in every
    Snakemake process, each local job's included.
    """
    shim = tmp_path_factory.mktemp("no-slurm")
    (shim / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (shim / "scontrol").chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{shim}{os.pathsep}{os.environ.get('PATH', '')}")
        yield shim
