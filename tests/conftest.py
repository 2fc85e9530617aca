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
    from lorp.workflow.stages.model import prepare_model

    out = tmp_path_factory.mktemp("embedded") / "model"
    prepare_model("embedded", out, "bfloat16")
    return out


@pytest.fixture(scope="session")
def local_path(tmp_path_factory) -> str:
    """A PATH for local Snakemake runs: an ``scontrol`` that fails at once comes first.

    snakemake-executor-plugin-slurm (2.8.0) runs ``scontrol show config`` when Snakemake starts,
    whatever the executor. Where Slurm's tools are installed but no controller answers (as after
    test_slurm.py stopped its cluster), that call waits about 9 s before giving up, in every
    Snakemake process, each local job's included.
    """
    shim = tmp_path_factory.mktemp("no-slurm")
    (shim / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (shim / "scontrol").chmod(0o755)
    return f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session", autouse=True)
def no_slurm_controller(local_path):
    """Every Snakemake run and import of the session is local: :func:`local_path` for this process and every
    process it starts (test_slurm.py, whose cluster needs the real ``scontrol``, puts the PATH the session started with
    back for its module)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", local_path)
        yield


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory) -> Path:
    """A private copy of the workflow for the session's tiny run (shared read-only by the tests; those that
    change anything work on their own copy of it, tests/workflow/conftest.py)."""
    from tiny import copy_workflow

    return copy_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.fixture(scope="session")
def tiny_results(tiny_workdir, local_path) -> Path:
    """The tiny workflow run once per session, locally (the Slurm tests compare with it; the workflow
    tests read it or copy it, and none changes it)."""
    from tiny import snakemake, tiny_config

    out = snakemake(tiny_workdir, tiny_config(), env={**os.environ, "PATH": local_path})
    assert out.returncode == 0, out.stderr[-4000:]
    return tiny_workdir / "results"
