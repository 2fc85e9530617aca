"""What the complete tiny run wrote: the perplexity, efficiency and zero-shot summaries, plans against the
exported checkpoints and the evaluations, provenance records, deterministic stages, the HTML report.

Every test here reads the session's completed run (read-only)."""

import json
import platform
import subprocess
from importlib import metadata

import pytest

from lorp.depth.methods import METHODS as METHODS_REGISTRY
from lorp.io import read_json
from lorp.workflow.stages import depth as depth_stages
from tiny import EXPORTED, METHODS, ZEROSHOT_DIR, snakemake_cmd, tiny_config
from tinyrun import evaluation_rules, read_rows, sha

pytestmark = pytest.mark.slow


def test_summary_has_dense_and_every_method(completed):
    results = completed / "results"
    rows = read_rows(results / "summary" / "ppl.csv")
    assert sorted((r["method"], r["budget"]) for r in rows) == sorted([("dense", "0")] + [(m, "3") for m in METHODS])
    dense = next(r for r in rows if r["method"] == "dense")
    assert int(dense["n_layers"]) == 30
    for r in rows:
        assert float(r["ppl"]) > 1.0 and r["dataset"] == "python-docs"
    table = {(r["method"], r["budget"]): r for r in read_rows(results / "summary" / "ppl_table.csv")}
    assert int(table[("lorp", "3")]["n_layers"]) == 27 and float(table[("dense", "0")]["change_%"]) == 0.0
    for key, row in table.items():
        assert float(row["mean_ppl"]) == pytest.approx(float(row["python-docs"]))
        expected = 100 * (float(row["mean_ppl"]) / float(table[("dense", "0")]["mean_ppl"]) - 1)
        assert float(row["change_%"]) == pytest.approx(expected, abs=1e-4)
    md = (results / "summary" / "ppl.md").read_text()
    assert md.startswith("# Perplexity (paper Table 2)") and md.count("\n| smol") == 5


def test_efficiency_rows_and_table(completed):
    results = completed / "results"
    rows = read_rows(results / "summary" / "efficiency.csv")
    assert sorted((r["method"], r["budget"]) for r in rows) == sorted([("dense", "0")] + [(m, "3") for m in METHODS])
    dense = next(r for r in rows if r["method"] == "dense")
    for r in rows:
        assert float(r["prefill_tokens_per_s"]) > 0 and float(r["decode_ms_per_token"]) > 0
        assert int(r["repeats"]) == 2 and r["device"] == "cpu" and r["memory_measure"] == "parameters_only"
        assert float(r["prefill_speedup_min"]) <= float(r["prefill_speedup"]) <= float(r["prefill_speedup_max"])
        assert float(r["decode_speedup_min"]) <= float(r["decode_speedup"]) <= float(r["decode_speedup_max"])
        assert int(r["weights_bytes"]) == 2 * int(r["n_params"])  # as stored, in bfloat16
        if r["method"] != "dense":
            assert int(r["n_params"]) < int(dense["n_params"]) and int(r["weights_bytes"]) < int(dense["weights_bytes"])
            assert r["plan"] == f"results/smol/plans/docs/{r['method']}-3.json" and r["base_model"] == "results/smol/model"
    assert float(dense["prefill_speedup"]) == 1.0
    # plans that remove the same blocks are one model, timed once: the same timings in each of their rows
    by_blocks = {}
    for r in rows[1:]:
        blocks = tuple(json.loads((completed / r["plan"]).read_text())["pruned"])
        by_blocks.setdefault(blocks, []).append(r)
    timing = ("prefill_ms", "decode_ms_per_token", "prefill_speedup", "decode_speedup_min")
    for same in by_blocks.values():
        assert len({tuple(r[c] for c in timing) for r in same}) == 1
    assert len({tuple(r[c] for c in timing) for same in by_blocks.values() for r in same[:1]}) == len(by_blocks)
    table = read_rows(results / "summary" / "efficiency_table.csv")
    assert all(0 < float(r["params_ratio"]) <= 1 for r in table)
    assert {r["prefill_speedup"] for r in table} == {r["prefill_speedup"] for r in rows}


def test_zero_shot_rows_and_table(completed):
    if not ZEROSHOT_DIR.is_dir():
        pytest.skip(f"zero-shot task files not found at {ZEROSHOT_DIR}")
    results = completed / "results"
    rows = read_rows(results / "smol/eval/docs/lorp-3/tasks.csv")
    assert sorted((r["task"], r["metric"]) for r in rows) == [("arc_easy", "acc"), ("arc_easy", "acc_norm"),
                                                              ("copa", "acc")]
    for r in rows:
        assert 0 <= float(r["value"]) <= 1 and r["n_examples"] == "4" and r["limit"] == "4"
        assert r["plan"] == "results/smol/plans/docs/lorp-3.json" and int(r["n_layers"]) == 27
    assert int(rows[0]["n_available"]) == 2376
    table = read_rows(results / "summary" / "tasks_table.csv")
    assert len(table) == 5 and set(table[0]) >= {"arc_easy", "copa", "mean_acc", "change"}
    for r in table:  # arc_easy is reported with acc_norm, in %
        acc_norm = next(x for x in read_rows(results / "summary" / "tasks.csv")
                        if x["method"] == r["method"] and x["task"] == "arc_easy" and x["metric"] == "acc_norm")
        assert float(r["arc_easy"]) == pytest.approx(100 * float(acc_norm["value"]))


def test_plans_match_exported_checkpoints_and_evaluations(completed):
    """Evaluations name the prepared model and the plan they built their model from; only the exported
    names have a checkpoint, and it holds the plan's depth."""
    results = completed / "results"
    for m in METHODS:
        plan = read_json(results / f"smol/plans/docs/{m}-3.json")
        ckpt = results / f"smol/checkpoints/docs/{m}-3"
        assert ckpt.is_dir() == (m in EXPORTED), m
        if m in EXPORTED:
            assert read_json(ckpt / "config.json")["num_hidden_layers"] == len(plan["kept"]) == 27
            assert read_json(ckpt / "plan.json")["pruned"] == plan["pruned"]
        (row,) = read_rows(results / f"smol/eval/docs/{m}-3/ppl.csv")
        assert row["plan"] == f"results/smol/plans/docs/{m}-3.json"
        assert row["base_model"] == "results/smol/model"
        assert int(row["n_layers"]) == 27
    rls = read_json(results / "smol/structure/docs/rls.json")
    assert read_json(results / "smol/plans/docs/lorp-3.json")["k"] == rls["k"]
    assert (results / "smol/similarity/docs/heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((results / "smol/activations/docs").glob("layer_*.npy"))) == 31


def test_provenance_records(completed):
    """A plan's record names its rule, inputs, output hash, the versions of the software the job ran with
    (those installed here: the jobs run in this environment), the git state and the resources used."""
    results = completed / "results"
    rec = read_json(results / "smol/plans/docs/lorp-3.provenance.json")
    assert rec["rule"] == "plan" and rec["wildcards"]["budget"] == "3"
    assert set(rec["inputs"]) == {"results/smol/similarity/docs/cosine_extended.npy",
                                  "results/smol/similarity/docs/cosine_last_token.npy",
                                  "results/smol/structure/docs/rls.json"}
    assert rec["outputs"]["results/smol/plans/docs/lorp-3.json"]["sha256"] == sha(results / "smol/plans/docs/lorp-3.json")
    software = rec["software"]
    assert software["python"] == platform.python_version()
    for package in ("torch", "transformers", "numpy"):
        assert software[package] == metadata.version(package), package
    assert set(rec["git"]) == {"commit", "dirty"} and rec["wall_time_s"] >= 0 and rec["peak_memory_mib"] > 0
    act = read_json(results / "smol/activations/docs.provenance.json")
    assert act["params"]["activations"] == {"dtype": "float16", "tokens_per_sequence": None, "seed": 0}
    assert set(act["outputs"]["results/smol/activations/docs"]["files"]) >= {"layer_000.npy", "layer_030.npy",
                                                                             "manifest.json"}


def test_deterministic_stages_are_byte_identical(completed, tmp_path):
    results = completed / "results"
    sim = results / "smol/similarity/docs"
    outputs = {k: tmp_path / f"{k}.out" for k in ("cosine", "csv", "heatmap", "extended", "last_token")}
    depth_stages.compute_similarity(results / "smol/activations/docs", outputs, {"statistic": "cosine"},
                                    title="smol (docs)")  # as scripts/similarity.py calls it
    for key, name in [("cosine", "cosine.npy"), ("csv", "cosine.csv"), ("extended", "cosine_extended.npy"),
                      ("last_token", "cosine_last_token.npy"), ("heatmap", "heatmap.png")]:
        assert sha(outputs[key]) == sha(sim / name), name
    rls = results / "smol/structure/docs/rls.json"
    depth_stages.analyse_structure(sim / "cosine.npy", tmp_path / "rls.json",
                                   read_json(results / "smol/structure/docs/provenance.json")["params"]["structure"])
    assert sha(tmp_path / "rls.json") == sha(rls)
    for m in METHODS:
        inputs = {"extended": sim / "cosine_extended.npy", "last_token": sim / "cosine_last_token.npy", "structure": rls}
        params = read_json(results / f"smol/plans/docs/{m}-3.provenance.json")["params"]["method_params"]
        depth_stages.make_plan(m, 3, {k: inputs[k] for k in METHODS_REGISTRY[m].inputs}, tmp_path / f"{m}.json", params)
        assert sha(tmp_path / f"{m}.json") == sha(results / f"smol/plans/docs/{m}-3.json"), m


def test_html_report_holds_the_figures_and_tables(completed, tmp_path):
    report = tmp_path / "report.html"
    out = subprocess.run(snakemake_cmd(completed, tiny_config(), "--report", str(report),
                                       configfile=tmp_path / "config.yaml"),
                         cwd=completed, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-4000:]
    html = report.read_text(errors="replace")
    assert len(html) > 100_000  # self-contained: the figures are embedded
    for name in ("structure.png", "pruned_layers.png", "locality.png", "ppl_vs_budget.png", "ppl.md",
                 "efficiency.md", "Across models", "Tables", "smol"):
        assert name in html, name
    assert "Representation Locality Score" in html  # a caption
    if evaluation_rules("tasks"):
        assert "tasks_vs_budget.png" in html and "tasks.md" in html
