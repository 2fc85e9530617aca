"""The sparse family added to the tiny run (Wanda and magnitude with uniform, OWL and MRP at 50%): what it
plans, its models beside the dense and depth rows, the plans and measurements its models and checkpoints
hold, and what each sparse setting reruns.

The sparse run is made once for this module, in a private copy of the completed tiny run, and shared
read-only by its tests; a test that runs more jobs in it works on its own copy."""

import shutil

import numpy as np
import pytest

from lorp.io import read_json
from tiny import METHODS, copy_run, snakemake, tiny_config
from tinyrun import (SPARSE_EXPORT, SPARSE_METHODS, audited, evaluation_rules, figures, job, planned_jobs,
                     planned_jobs_each, read_rows, sjob, sparse_config, sparse_jobs, summaries, unchanged)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def _sparse_run(tiny_results, no_slurm_controller, tmp_path_factory):
    workdir = copy_run(tiny_results.parent, tmp_path_factory.mktemp("sparse") / "wf")
    out = snakemake(workdir, sparse_config())
    assert out.returncode == 0, out.stderr[-4000:]
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def sparse_run(_sparse_run):
    """The tiny run with the sparse family added, shared read-only by this module's tests."""
    with unchanged(_sparse_run):
        yield _sparse_run


def test_sparse_family_added(completed, sparse_run):
    """sparsity.targets set: norms, outlier ratios, plans, checkpoints and their perplexities, and the
    sparse tables and figures; of the depth family only the perplexity summary gathering them. Once run,
    nothing is left to do and the audit finds no problem."""
    cfg = sparse_config()
    expected = {sjob("input_norms")} | {sjob("outliers", metric=m) for m in ("wanda", "magnitude")} | sparse_jobs()
    assert planned_jobs_each((completed, cfg), (sparse_run, cfg)) == [expected, set()]
    assert audited(sparse_run, cfg) == []


def test_sparse_models_beside_dense_and_depth_in_the_summaries(sparse_run):
    results = sparse_run / "results"
    rows = read_rows(results / "summary/sparsity.csv")
    assert [(r["method"], r["target"]) for r in rows] == [("dense", "0")] + sorted(
        (m, "50") for m in SPARSE_METHODS)
    dense = float(rows[0]["mean_ppl"])
    for r in rows[1:]:
        assert dense < float(r["mean_ppl"]) < 1e5, r  # finite, and worse than the dense model
        assert float(r["measured_sparsity"]) == pytest.approx(0.5, abs=0.002)
        assert 0 <= float(r["non_outlier_std"]) < 0.5
    table = read_rows(results / "summary/sparsity_table.csv")
    assert [(r["metric"], r["allocation"]) for r in table][0] == ("-", "dense")
    assert {(r["metric"], r["allocation"]) for r in table[1:]} == {tuple(m.split("-")) for m in SPARSE_METHODS}
    assert set(table[0]) >= {"ppl_50", "std_50"}
    ppl = read_rows(results / "summary/ppl.csv")
    assert {r["method"] for r in ppl} == {"dense", *METHODS, *SPARSE_METHODS}
    assert not {r["method"] for r in read_rows(results / "summary/ppl_table.csv")} & set(SPARSE_METHODS)
    for name in ("figures/ppl_vs_sparsity.png", "smol/figures/docs/sparsity.png", "smol/sparsity/docs/wanda/mrp_sweep.png"):
        assert (results / name).read_bytes()[:4] == b"\x89PNG", name


def test_sparse_models_hold_their_plan_and_measured_sparsity(sparse_run):
    base = sparse_run / "results/smol/sparsity/docs"
    mrp = read_json(base / "plans/wanda-mrp-50.json")
    assert mrp["model_sparsity"] == pytest.approx(0.5, abs=1e-9) and mrp["trajectory"]
    assert mrp["settings"]["s0"] == pytest.approx(0.3) and min(mrp["blocks"]) >= 0.3 - 1e-9
    owl = read_json(base / "plans/wanda-owl-50.json")
    assert max(owl["blocks"]) - min(owl["blocks"]) == pytest.approx(0.16)
    for name in SPARSE_METHODS:
        measured = read_json(base / f"measured/{name}-50.json")
        checkpoint = base / f"checkpoints/{name}-50"
        assert checkpoint.is_dir() == (name in SPARSE_EXPORT), name
        if name in SPARSE_EXPORT:
            assert read_json(checkpoint / "plan.json")["method"] == name
            assert read_json(checkpoint / "sparsity.json") == measured
        assert measured["norms"] == ("sequential" if name.startswith("wanda") else "none")
        assert measured["dtype"] == "float32"  # scored in the evaluations' dtype, so their rebuild agrees
        norms = np.load(base / f"pruned/{name}-50.npz")
        assert len(norms.files) == (1 + 30 * 7 if name.startswith("wanda") else 1)  # n_blocks and every layer
        for block in measured["blocks"]:
            for layer, m in block["linears"].items():
                assert m["row_shortfall"] == 0, (name, block["block"], layer)
                # within one weight per row of the plan; above it only by weights the GGUF had at zero
                assert m["planned"] - 1 / m["in_features"] <= m["measured"] <= m["planned"] + 0.01, (name, layer)
    assert read_json(base / "wanda/redundancy.json")["count_zeros"] is True


def test_sparse_settings_changed(sparse_run):
    """M reruns the outlier ratios and what reads them (OWL and MRP), not the norms or uniform plans; the
    step reruns MRP; a target adds its own plans; dense final norms rerun Wanda's checkpoints only; zero-shot
    tasks evaluate the sparse models (the depth ones have theirs) and draw accuracy against sparsity."""
    owl_mrp = sparse_jobs(allocations=("owl", "mrp")) | {sjob("outliers", metric=m) for m in ("wanda", "magnitude")}
    wanda_pruned = (sparse_jobs(metrics=("wanda",), aggregates=False)
                    - sparse_jobs(metrics=("wanda",), pruned=False, aggregates=False))
    two_four = sparse_jobs(allocations=("2of4",), aggregates=False) | {("summary_sparsity", ""), ("figure_vs_sparsity", "kind=ppl")}
    expected = [  # (config, the jobs its dry run plans)
        (sparse_config(outlier_m=4), owl_mrp),
        (sparse_config(count_zeros=False), owl_mrp),
        (sparse_config(mrp={"step": 2}), sparse_jobs(allocations=("mrp",))),
        (sparse_config(mrp={"granularity": "linear"}), sparse_jobs(allocations=("mrp",))),
        (sparse_config(owl_lambda=0.05), sparse_jobs(allocations=("owl",), sweep=False)),
        (sparse_config(targets=[50, 60]), sparse_jobs(targets=(60,))),
        (sparse_config(norms="dense"), wanda_pruned | {("summary_sparsity", ""), ("figure_vs_sparsity", "kind=ppl")}
         | summaries("ppl") | figures("vs_ppl")),
        (sparse_config(sweep={"outlier_m": [3, 5, 7]}), {sjob("mrp_sweep", metric=m) for m in ("wanda", "magnitude")}),
        (sparse_config(nm=["2:4"]), two_four | summaries("ppl") | figures("vs_ppl")),
        # back to the depth-only config: only the summary that gathered the sparse rows changes
        (tiny_config(), summaries("ppl") | figures("vs_ppl")),
    ]
    if evaluation_rules("tasks"):  # the task files are beside the checkout (also in CI)
        expected.append(({**sparse_config(), "zeroshot": tiny_config()["zeroshot"]},
                         {job("evaluate_tasks_pruned", "smol", "docs", m, 50) for m in SPARSE_METHODS}
                         | summaries("tasks") | figures("vs_tasks") | {("figure_vs_sparsity", "kind=tasks")}))
    planned = planned_jobs_each(*((sparse_run, cfg) for cfg, _ in expected))
    for (cfg, jobs), got in zip(expected, planned):
        assert got == jobs, cfg.get("sparsity", "the depth-only config")


def test_back_to_the_depth_only_config(sparse_run, tmp_path):
    """The sparse family removed again (in a copy of the sparse run): the perplexity summary and its figure
    are remade, and then nothing is left to do for the depth-only config."""
    workdir = copy_run(sparse_run, tmp_path / "wf")
    out = snakemake(workdir, tiny_config())
    assert out.returncode == 0, out.stderr[-4000:]
    assert planned_jobs(workdir, tiny_config()) == set()
    assert {r["method"] for r in read_rows(workdir / "results/summary/ppl.csv")} == {"dense", *METHODS}
    shutil.rmtree(workdir, ignore_errors=True)


def test_sparsegpt_is_planned_pruned_stored_and_exported(completed, tmp_path):
    """SparseGPT at 2:4 and, with its own saliency for OWL (scores: obs), at 50% added to a copy of the tiny
    run: its Hessians come from the calibration tokens, OWL reads obs_norms (no input norms are computed),
    its pruned weights are stored compactly and rebuild the evaluated model, and the exported checkpoint (in
    the dtype it was pruned in) reloads with the in-memory model's logits."""
    import torch
    from transformers import AutoModelForCausalLM

    from lorp.workflow.stages.model import load_evaluated

    workdir = copy_run(completed, tmp_path / "wf")
    cfg = tiny_config(sparsity={"metrics": ["sparsegpt"], "nm": ["2:4"], "targets": [50], "allocations": ["owl"],
                                "sparsegpt": {"scores": "obs"}, "sweep": {"outlier_m": [], "step": []}},
                      zeroshot={"tasks": []}, efficiency={"enabled": False},
                      checkpoints={"export": ["sparsegpt-2of4-50"]})
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-4000:]

    base = workdir / "results/smol/sparsity/docs"
    assert not (base / "norms").exists()
    obs = read_json(base / "obs_norms/manifest.json")
    assert obs["kind"] == "obs" and obs["obs"] == {"damping": 0.01, "hessian_dtype": "float32"}
    q = np.load(base / "obs_norms/block00.self_attn.q_proj.npy")
    assert q.shape == (576,) and (q > 0).all()
    owl = read_json(base / "plans/sparsegpt-owl-50.json")
    assert owl["model_sparsity"] == pytest.approx(0.5, abs=1e-9) and max(owl["blocks"]) > min(owl["blocks"])
    measured = read_json(base / "measured/sparsegpt-2of4-50.json")
    assert measured["norms"] == "none" and 0.5 <= measured["model_sparsity"] <= 0.51
    # at least two of every four zero; above half only by weights the GGUF had at zero
    assert all(v["row_shortfall"] == 0 and v["measured"] <= 0.51 for b in measured["blocks"] for v in b["linears"].values())
    n_weights = sum(b["n_params"] for b in measured["blocks"])
    assert (base / "pruned/sparsegpt-2of4-50.safetensors").stat().st_size < 0.6 * 4 * n_weights  # half + a bit each
    sources = {"model": workdir / "results/smol/model", "plan": base / "plans/sparsegpt-2of4-50.json",
               "pruning": base / "pruned/sparsegpt-2of4-50.npz", "measured": base / "measured/sparsegpt-2of4-50.json",
               "weights": base / "pruned/sparsegpt-2of4-50.safetensors"}
    model, _ = load_evaluated(sources, {"device": "cpu", "dtype": "float32"})
    reloaded = AutoModelForCausalLM.from_pretrained(base / "checkpoints/sparsegpt-2of4-50")
    assert reloaded.dtype == torch.float32
    ids = torch.from_numpy(np.load(workdir / "results/smol/calib/docs/tokens.npy")[:2].astype(np.int64))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reloaded(ids).logits)
    rows = read_rows(workdir / "results/summary/sparsity.csv")
    ppl = {r["method"]: float(r["mean_ppl"]) for r in rows}
    assert ppl["dense"] < ppl["sparsegpt-2of4"] < 1e5 and ppl["dense"] < ppl["sparsegpt-owl"] < 1e5
    shutil.rmtree(workdir, ignore_errors=True)
