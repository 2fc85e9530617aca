"""The workflow on the shared benchmark files beside the checkout (WikiText-2 and C4 as local datasets,
a C4 calibration sampled by document), in a private copy of the completed tiny run (its prepared model)."""

import pytest

from lorp.io import read_json
from tiny import snakemake, tiny_config
from tinyrun import audited, read_rows

pytestmark = pytest.mark.slow


def test_shared_benchmark_files_as_local_datasets(own_copy, shared_data):
    workdir = own_copy
    cfg = tiny_config(
        calibration={"c4": {"source": str(shared_data / "c4/c4_validation_2k_sample.jsonl"), "format": "jsonl",
                            "n_samples": 4, "seqlen": 64, "sampling": "document"}},
        methods={"lorp": {}},  # one method: what is tested is the data, read for calibration and evaluation
        zeroshot={"tasks": []},
        efficiency={"enabled": False},
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
                      + [("c4", "lorp", d) for d in ("wikitext2", "c4")])
    assert got == expected
    meta = read_json(workdir / "results/smol/calib/c4/meta.json")
    assert meta["sampling"] == "document" and len(meta["document_indices"]) == 4
    assert audited(workdir, cfg) == []
