"""Shared fixtures: the embedded model prepared once per test session, paths to the shared data,
local Snakemake runs that do not wait for a Slurm controller.

The README runs the suite on two pytest-xdist workers (``-n 2 --dist loadfile``: a test file's tests stay
on one worker, so its module fixtures are made once). What every file shares (the prepared embedded model,
the tiny run) is made once for the whole session by whichever worker asks first, the other waiting on a
file lock (:func:`made_once`); without xdist it is made as before.
"""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {SHARED_DATA} (expected beside the checkout)")
    return SHARED_DATA


def pytest_collection_modifyitems(config, items):
    """Files with slow tests first, each file's tests in their order: pytest-xdist hands whole files to the
    workers in collection order (``--dist loadfile``), so the minutes-long workflow files start early and
    the fast unit-test files fill the end, instead of one worker finishing a long file alone."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # a stable sort


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """The directory ``name`` made by ``make(directory)`` once per test session, across pytest-xdist's
    workers: the first worker to ask makes it under a file lock in the session's shared temporary directory
    and marks it done; the others wait for the lock and reuse it. A failure is not marked, so each worker
    that asks fails with its own error rather than reading a half-made directory."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:  # one process: a private directory, as any fixture
        out = tmp_path_factory.mktemp(name)
        make(out)
        return out
    from filelock import FileLock

    out = tmp_path_factory.getbasetemp().parent / name  # shared by the workers of this session
    done = out.with_name(f"{name}.done")
    with FileLock(str(out.with_name(f"{name}.lock"))):
        if not done.exists():
            if out.exists():  # a worker failed making it: start again
                import shutil

                shutil.rmtree(out)
            out.mkdir()
            make(out)
            done.touch()
    return out


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory) -> Path:
    """The embedded SmolLM2-135M converted once to a safetensors directory (about 30 s)."""
    from lorp.workflow.stages.model import prepare_model

    return made_once(tmp_path_factory, "embedded", lambda d: prepare_model("embedded", d / "model", "bfloat16")) / "model"


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
def tiny_results(tmp_path_factory, local_path) -> Path:
    """The tiny workflow run once per session, locally, in a private copy of the workflow (the Slurm tests
    compare with it; the workflow tests read it or copy it, and none changes it: tests/workflow/conftest.py)."""
    from tiny import copy_workflow, snakemake, tiny_config

    def run(workdir: Path) -> None:
        copy_workflow(workdir)
        out = snakemake(workdir, tiny_config(), env={**os.environ, "PATH": local_path})
        assert out.returncode == 0, out.stderr[-4000:]

    return made_once(tmp_path_factory, "workflow", run) / "results"
