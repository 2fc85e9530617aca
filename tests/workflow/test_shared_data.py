"""The workflow on the shared benchmark files beside the checkout (WikiText-2 and C4 as local datasets,
a C4 calibration sampled by document), in a private copy of the completed tiny run (its prepared model).
Local files count by their bytes: copied again they rerun nothing, edited they rerun what reads them."""

import json
import os
import shutil

import pytest

from lorp.io import read_json
from tiny import snakemake, tiny_config
from tinyrun import age, audited, planned_jobs, read_rows

pytestmark = pytest.mark.slow


def test_shared_benchmark_files_as_local_datasets(own_copy, shared_data):
    workdir = own_copy
    calibration = shutil.copy(shared_data / "c4/c4_validation_2k_sample.jsonl", workdir / "c4-calibration.jsonl")
    cfg = tiny_config(
        calibration={"c4": {"source": str(calibration), "format": "jsonl",
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

    # The data copied again with the same bytes, every file of it newer than every file of the run (code and
    # results moved back in time together, as a run made before the copy): nothing to do.
    data = [shared_data / "wikitext-2-raw/wiki.test.raw", shared_data / "c4/c4_validation_shard0_part.jsonl"]
    age(workdir, before=min(path.stat().st_mtime for path in data))
    os.utime(calibration)
    assert planned_jobs(workdir, cfg) == set()

    # The calibration corpus edited: its source check and what reads it rerun; the evaluation data is unchanged.
    with open(calibration, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": "A document added to the calibration corpus."}) + "\n")
    rules = {rule for rule, _ in planned_jobs(workdir, cfg)}
    assert {"fetch_source", "calibration_tokens", "capture_activations", "plan", "evaluate_pruned"} <= rules
    assert not rules & {"prepare_model", "evaluate_dense"}, rules
