"""A source that passes the config check but fails when read in full (weights missing, a bad record deep in a
corpus) fails in its ``fetch_source`` job, before any job whose outputs Snakemake would remove; the good
results stay, and the config put back plans nothing (issue 24)."""

import json
import shutil

import pytest

from tiny import snakemake, tiny_config
from tinyrun import dry_run, snapshot

pytestmark = pytest.mark.slow


def jsonl(path, n, bad_line=None, text="def f(x):\n    return x + 1\n"):
    lines = [json.dumps({"text": f"{text} {i}"}) for i in range(n)]
    if bad_line is not None:
        lines[bad_line - 1] = lines[bad_line - 1][:-3]  # cut: not JSON any more
    path.write_text("\n".join(lines) + "\n")


def test_sources_bad_beyond_the_check_fail_before_any_result_is_removed(own_copy):
    workdir = own_copy
    broken = workdir / "broken_model"  # a config that reads, and no weights
    broken.mkdir()
    shutil.copy(workdir / "results/smol/model/hf/config.json", broken / "config.json")
    jsonl(workdir / "calib.jsonl", 400, bad_line=300)
    jsonl(workdir / "eval.jsonl", 400, bad_line=350)
    good = tiny_config()
    bad = tiny_config(models={"smol": {"source": "broken_model"}},
                      calibration={"docs": {**good["calibration"]["docs"], "source": "calib.jsonl"}},
                      evaluation={**good["evaluation"], "datasets": {"python-docs": {"source": "eval.jsonl"}}})
    results = {k: v for k, v in snapshot(workdir / "results").items() if not k.startswith("logs/")}

    out = snakemake(workdir, bad, "--keep-going")
    terminal = out.stdout + out.stderr
    assert out.returncode != 0
    failures = [line for line in terminal.splitlines() if line.startswith("[lorp] fetch_source failed:")]
    assert len(failures) == 3, terminal[-4000:]
    assert any("models.smol.source = 'broken_model'" in f and "holds no weights" in f for f in failures)
    assert any("calibration.docs.source = 'calib.jsonl'" in f and "calib.jsonl:300: not valid JSON" in f
               for f in failures)
    assert any("evaluation.datasets.python-docs.source = 'eval.jsonl'" in f and ":350:" in f for f in failures)
    assert "Traceback" not in terminal  # in the job logs only
    assert {k: v for k, v in snapshot(workdir / "results").items() if not k.startswith("logs/")} == results

    assert dry_run(workdir, good) == {}  # put back: nothing to do, not even the failed jobs
