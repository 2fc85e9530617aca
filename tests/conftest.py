"""Shared fixtures: the embedded model prepared once per test session, paths to the shared data."""

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
    from lorp.pipeline import prepare

    out = tmp_path_factory.mktemp("embedded") / "model"
    prepare("embedded", out, "bfloat16")
    return out
