"""Recovery in the workflow (rules/recovery.smk): adding the patch plans only its own jobs and what follows
them (a dry run on the completed tiny run); one real recover job in a copy: its files, its rows beside the
training-free ones (perplexity, efficiency with the patches counted), the recovery table, the exported checkpoint reloading offline to the in-memory model's
logits; and a changed recovery parameter rerunning only the recovery and what follows."""

from __future__ import annotations

import hashlib

import pytest

from tiny import snakemake, tiny_config, write_config
from tinyrun import evaluation_rules, figures, planned_jobs, read_rows, summaries

pytestmark = pytest.mark.slow

PATCHED = "shortgpt-3+patch"


def _config(**patch):
    cfg = tiny_config(recovery={"methods": {"patch": patch}, "plans": ["shortgpt-3"]})
    cfg["checkpoints"]["export"] = cfg["checkpoints"]["export"] + [PATCHED]
    return cfg


def _recovery_jobs(export=True):
    w = "model=smol, calib=docs, method=shortgpt, budget=3, recovery=patch"
    out = {("recover", w)} | {(f"{r}_recovered", w) for k in ("ppl", "tasks") for r in evaluation_rules(k)}
    out |= {("summary_recovery", ""), ("figure_recovery", "model=smol, calib=docs")}
    out |= summaries() | figures("vs_ppl", "vs_tasks")
    out |= {("efficiency", "model=smol")} if evaluation_rules("efficiency") else set()  # times every pruned model
    return out | ({("recovered_checkpoint", w)} if export else set())


def test_adding_the_patch_plans_its_recovery_and_what_follows_only(completed):
    assert planned_jobs(completed, _config()) == _recovery_jobs()


def test_a_patched_plan_runs_reloads_offline_and_a_changed_ridge_reruns_only_the_recovery(own_copy):
    import numpy as np
    import torch

    from lorp.io import read_json
    from lorp.recovery import load_recovered
    from lorp.workflow.stages.model import load_evaluated

    out = snakemake(own_copy, _config())
    assert out.returncode == 0, out.stderr[-3000:]
    results = own_copy / "results" / "smol"
    recovered = results / "recovery" / "docs" / PATCHED
    log = read_rows(recovered / "log.csv")
    plan = read_json(results / "plans" / "docs" / "shortgpt-3.json")
    spans = sorted(plan["pruned"])
    assert sum(int(r["length"]) for r in log) == len(spans) == 3
    assert all(float(r["mse_patch"]) < float(r["mse_identity"]) for r in log)  # the fit beats plain pruning
    cost = read_json(recovered / "cost.json")
    assert cost["wall_s"] > 0 and cost["tokens"] == 4 * 64 and cost["peak_rss_mib"] > 0

    rows = read_rows(results / "eval" / "docs" / PATCHED / "ppl.csv")
    assert [r["method"] for r in rows] == ["shortgpt+patch"] and rows[0]["budget"] == "3"
    summary = read_rows(own_copy / "results" / "summary" / "ppl_table.csv")
    assert {"shortgpt", "shortgpt+patch"} <= {r["method"] for r in summary}
    # timed beside the dense model as the model it is: the pruned model's blocks and the patches (d x d each)
    speed = {r["method"]: r for r in read_rows(results / "eval" / "efficiency.csv") if r["budget"] in ("0", "3")}
    d = int(read_json(results / "model" / "model.json")["hidden_size"])
    patched, pruned = speed["shortgpt+patch"], speed["shortgpt"]
    assert int(patched["n_params"]) == int(pruned["n_params"]) + len(log) * d * d
    assert int(patched["weights_bytes"]) == int(pruned["weights_bytes"]) + len(log) * d * d * 4  # float32
    assert float(patched["prefill_speedup"]) > 0 and patched["n_layers"] == pruned["n_layers"]
    assert {"shortgpt+patch"} <= {r["method"] for r in read_rows(own_copy / "results" / "summary" / "efficiency.csv")}
    table = read_rows(own_copy / "results" / "summary" / "recovery.csv")
    assert [(r["method"], r["recovery"], r["budget"]) for r in table] == [("shortgpt", "patch", "3")]
    fraction = float(table[0]["recovered_fraction"])
    ppl = {r["method"]: float(r["mean_ppl"]) for r in summary}
    assert fraction == pytest.approx((ppl["shortgpt"] - ppl["shortgpt+patch"]) / (ppl["shortgpt"] - ppl["dense"]),
                                     rel=1e-5)

    # the export reloads offline (its own loader) to the logits of the model the evaluations build in memory
    ckpt = results / "checkpoints" / "docs" / PATCHED
    sources = {"model": results / "model", "plan": results / "plans" / "docs" / "shortgpt-3.json",
               "recovery": recovered}
    model, _ = load_evaluated(sources, {"device": "cpu", "dtype": "auto"})
    reloaded = load_recovered(ckpt, dtype=torch.float32)
    ids = torch.from_numpy(np.arange(5, 37, dtype=np.int64)[None])
    with torch.inference_mode():
        assert torch.equal(model(ids).logits, reloaded(ids).logits)
        plain, _ = load_evaluated({k: v for k, v in sources.items() if k != "recovery"}, {"device": "cpu", "dtype": "auto"})
        assert not torch.allclose(plain(ids).logits, reloaded(ids).logits, atol=1e-3)

    # a changed ridge: the recovery, its evaluations, its export, the tables and figures that show it
    assert planned_jobs(own_copy, _config(ridge=0.5)) == _recovery_jobs()


def test_a_lora_training_file_counts_by_its_bytes(completed, shared_data, tmp_path):
    """LoRA's training corpus is a file from outside the workflow: an ancient() input of the recover job,
    whose `contents` param is the file's sha256 (by its name), so a copy or touch with the same bytes reruns
    no fit and an edit reruns it (docs/reruns.md); the patch, which reads no corpus, has none."""
    from lorp.workflow.dag import workflow_jobs

    data = shared_data / "ptb" / "ptb.train.txt"
    cfg = tiny_config(recovery={"methods": {"lora": {"steps": 2, "data": {"source": str(data), "format": "text"}},
                                            "patch": {}}, "plans": ["shortgpt-3"]})
    jobs = {j.wildcards["recovery"]: j for j in workflow_jobs(write_config(completed, cfg, tmp_path / "config.yaml"),
                                                              completed, completed / "Snakefile")
            if j.rule == "recover"}
    assert jobs["lora"].params["contents"] == [["ptb.train.txt", hashlib.sha256(data.read_bytes()).hexdigest()]]
    assert jobs["lora"].inputs["data"] == str(data) and jobs["patch"].params["contents"] == []
