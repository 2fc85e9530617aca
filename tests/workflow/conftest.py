"""Fixtures of the workflow tests: the session's completed tiny run, shared read-only, and private copies
of it for the tests that run jobs, edit code or damage files.

The tiny run (``tiny_results`` in tests/conftest.py) is made once per session. A test that only reads its
results or dry-runs configs against it takes :func:`completed`, which fails the test if it changed any file
of the run; a test that changes anything takes :func:`own_copy`. No test depends on another having run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tiny import copy_run
from tinyrun import unchanged


@pytest.fixture
def completed(tiny_results) -> Path:
    """The working directory of the session's completed tiny run (code, results, Snakemake's metadata),
    shared by the tests: read-only, a test that changes, adds or removes a file of it fails."""
    workdir = tiny_results.parent
    with unchanged(workdir):
        yield workdir


@pytest.fixture
def own_copy(tiny_results, tmp_path) -> Path:
    """A private copy of the completed tiny run, in the same state for Snakemake (nothing to be done);
    the test may run jobs, edit code and damage files in it. Removed afterwards."""
    workdir = copy_run(tiny_results.parent, tmp_path / "wf")
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)
