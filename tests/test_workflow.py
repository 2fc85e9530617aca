"""The whole workflow on the embedded model with a tiny config, then on the shared benchmark files."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lorp.io import read_json

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["lorp", "shortgpt", "streamline", "angular", "last"]

pytestmark = pytest.mark.slow


def tiny_config(**overrides):
    cfg = {
        "models": {"smol": {"source": "embedded"}},
        "calibration": {"docs": {"source": "python-docs", "n_samples": 4, "seqlen": 64}},
        "activations": {"batch_size": 4},
        "methods": {m: {} for m in METHODS},
        "budgets": [3],
        "evaluation": {"seqlen": 64, "max_windows": 2, "batch_size": 2,
                       "datasets": {"python-docs": {"source": "python-docs"}}},
    }
    cfg.update(overrides)
    return cfg


def snakemake(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(path), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("workflow")


@pytest.fixture(scope="module")
def tiny_run(workdir):
    out = snakemake(workdir, tiny_config())
    assert out.returncode == 0, out.stderr[-4000:]
    return workdir / "results"


def test_summary_has_dense_and_every_method(tiny_run):
    rows = read_rows(tiny_run / "summary" / "ppl.csv")
    assert sorted((r["method"], r["budget"]) for r in rows) == sorted([("dense", "0")] + [(m, "3") for m in METHODS])
    dense = next(r for r in rows if r["method"] == "dense")
    assert int(dense["n_layers"]) == 30
    for r in rows:
        assert float(r["ppl"]) > 1.0 and r["dataset"] == "python-docs"
    assert "| smol | docs | lorp | 3 | 27 |" in (tiny_run / "summary" / "ppl.md").read_text()


def test_plans_match_checkpoints_and_evaluations(tiny_run):
    for m in METHODS:
        plan = read_json(tiny_run / f"smol/plans/docs/{m}-3.json")
        ckpt = tiny_run / f"smol/checkpoints/docs/{m}-3"
        assert read_json(ckpt / "config.json")["num_hidden_layers"] == len(plan["kept"]) == 27
        assert read_json(ckpt / "plan.json")["pruned"] == plan["pruned"]
        (row,) = read_rows(tiny_run / f"smol/eval/docs/{m}-3/ppl.csv")
        assert row["plan"].endswith(f"plans/docs/{m}-3.json") and row["checkpoint"].endswith(f"docs/{m}-3")
        assert int(row["n_layers"]) == 27
    rls = read_json(tiny_run / "smol/structure/docs/rls.json")
    assert read_json(tiny_run / "smol/plans/docs/lorp-3.json")["k"] == rls["k"]
    assert (tiny_run / "smol/similarity/docs/heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tiny_run / "smol/activations/docs").glob("layer_*.npy"))) == 31


def test_second_run_is_a_no_op(workdir, tiny_run):
    out = snakemake(workdir, tiny_config(), "-n")
    assert out.returncode == 0
    assert "Nothing to be done" in out.stdout + out.stderr


def test_shared_benchmark_files_as_local_datasets(workdir, tiny_run, shared_data):
    cfg = tiny_config(
        calibration={"c4": {"source": str(shared_data / "c4/c4_validation_2k_sample.jsonl"), "format": "jsonl",
                            "n_samples": 4, "seqlen": 64, "sampling": "document"}},
        methods={"lorp": {}, "shortgpt": {}},
        evaluation={"seqlen": 64, "max_windows": 2, "batch_size": 2, "datasets": {
            "wikitext2": {"source": str(shared_data / "wikitext-2-raw/wiki.test.raw"), "format": "text"},
            "c4": {"source": str(shared_data / "c4/c4_validation_shard0_part.jsonl"), "format": "jsonl"},
        }},
    )
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-4000:]
    rows = read_rows(workdir / "results/summary/ppl.csv")
    got = sorted((r["calib"], r["method"], r["dataset"]) for r in rows)
    expected = sorted([("-", "dense", d) for d in ("wikitext2", "c4")]
                      + [("c4", m, d) for m in ("lorp", "shortgpt") for d in ("wikitext2", "c4")])
    assert got == expected
    meta = read_json(workdir / "results/smol/calib/c4/meta.json")
    assert meta["sampling"] == "document" and len(meta["document_indices"]) == 4
