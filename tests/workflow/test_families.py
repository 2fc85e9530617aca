"""The whole tiny workflow on the families no weights on PyPI cover: a random 6-block OPT and a random 6-block
Llama 2 (tests/tiny_families.py, with the embedded SmolLM2 tokenizer), saved as local model directories and
named side by side in one config. One run for the module: LoRP at budget 2, Wanda and SparseGPT with the uniform
allocation at 50%, perplexity and efficiency, a depth and two sparse checkpoints of each model exported; its
tests read it and change nothing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from lorp.io import read_json
from tiny import copy_workflow, snakemake, tiny_config
from tiny_families import FAMILIES, save_tiny_models
from tinyrun import audited, read_rows, unchanged

pytestmark = pytest.mark.slow

DEPTH = ("lorp",)
METRICS = ("wanda", "sparsegpt")
ALLOCATIONS = ("uniform",)  # OWL and MRP take the same path on any family (tests/workflow/test_sparse_family.py)
EXPORTS = ("lorp-2", "wanda-uniform-50", "sparsegpt-uniform-50")


def families_config(sources: dict) -> dict:
    return tiny_config(
        models={family: {"source": str(path)} for family, path in sources.items()},
        methods={m: {} for m in DEPTH}, budgets=[2], zeroshot={"tasks": []},
        sparsity={"targets": [50], "metrics": list(METRICS), "allocations": list(ALLOCATIONS),
                  "sweep": {"outlier_m": [], "step": []}},
        efficiency={"batch_size": 1, "seqlen": 8, "decode_tokens": 2, "warmup": 0, "repeats": 1},
        checkpoints={"export": list(EXPORTS)})


@pytest.fixture(scope="module")
def _families_run(no_slurm_controller, tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    sources = save_tiny_models(root / "models")
    workdir = copy_workflow(root / "wf")
    cfg = families_config(sources)
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-4000:]
    yield workdir, cfg
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def families_run(_families_run):
    """The module's run, shared read-only: a test that changes a file of it fails."""
    with unchanged(_families_run[0]):
        yield _families_run


def test_plans_masks_and_evaluations_of_both_families(families_run):
    workdir, cfg = families_run
    results = workdir / "results"
    assert audited(workdir, cfg) == []
    for family in FAMILIES:
        model = read_json(results / f"{family}/model/model.json")
        assert model["model_type"] == family and model["num_hidden_layers"] == 6
        assert len(list((results / f"{family}/activations/docs").glob("layer_*.npy"))) == 7
        for method in DEPTH:
            plan = read_json(results / f"{family}/plans/docs/{method}-2.json")
            assert len(plan["pruned"]) == 2 and len(plan["kept"]) == 4
            (row,) = read_rows(results / f"{family}/eval/docs/{method}-2/ppl.csv")
            assert int(row["n_layers"]) == 4 and np.isfinite(float(row["ppl"]))
        for metric, allocation in ((m, a) for m in METRICS for a in ALLOCATIONS):
            measured = read_json(results / f"{family}/sparsity/docs/measured/{metric}-{allocation}-50.json")
            assert measured["model_sparsity"] == pytest.approx(0.5, abs=0.01)
            layers = {name for block in measured["blocks"] for name in block["linears"]}
            assert layers == ({"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                               "fc1", "fc2"} if family == "opt" else
                              {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
            assert all(m["row_shortfall"] == 0 for block in measured["blocks"] for m in block["linears"].values())
        efficiency = read_rows(results / f"{family}/eval/efficiency.csv")
        assert {int(r["n_layers"]) for r in efficiency} == {6, 4}
    rows = read_rows(results / "summary/sparsity.csv")
    assert {(r["model"], r["method"]) for r in rows} >= {(f, f"{m}-{a}") for f in FAMILIES for m in METRICS
                                                          for a in ALLOCATIONS}


@pytest.mark.parametrize("family", FAMILIES)
def test_reloaded_checkpoints_give_the_logits_of_the_models_built_in_memory(families_run, family):
    from transformers import AutoModelForCausalLM

    from lorp.models import get_decoder_layers
    from lorp.workflow.stages.model import load_evaluated

    results = families_run[0] / "results" / family
    compute = {"device": "cpu", "dtype": "float32"}
    ids = torch.from_numpy(np.load(results / "calib/docs/tokens.npy")[:2, :32].astype(np.int64))
    sparse = results / "sparsity/docs"
    checkpoints = {"lorp-2": (results / "checkpoints/docs/lorp-2", {"plan": results / "plans/docs/lorp-2.json"})}
    for name in EXPORTS[1:]:  # SparseGPT's updated weights come from the pruning's stored file
        checkpoints[name] = (sparse / f"checkpoints/{name}",
                             {"plan": sparse / f"plans/{name}.json", "pruning": sparse / f"pruned/{name}.npz",
                              "measured": sparse / f"measured/{name}.json",
                              "weights": sparse / f"pruned/{name}.safetensors"})
    for name, (checkpoint, plan) in checkpoints.items():
        model, _ = load_evaluated({"model": results / "model", **plan}, compute)
        reloaded = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
        assert reloaded.config.model_type == family
        assert len(get_decoder_layers(reloaded)) == (4 if name.startswith("lorp") else 6)
        with torch.inference_mode():
            assert torch.equal(model(ids).logits, reloaded(ids).logits), name
        if name.startswith("sparsegpt"):  # the kept weights were updated, not only masked
            dense = load_evaluated({"model": results / "model"}, compute)[0].state_dict()
            state = reloaded.state_dict()
            linears = [k for k, w in state.items() if ".layers." in k and w.dim() == 2]
            assert linears and all(float((state[k] == 0).double().mean()) == pytest.approx(0.5, abs=0.01)
                                   for k in linears)
            changed = [k for k in linears if not torch.equal(state[k][state[k] != 0], dense[k][state[k] != 0])]
            assert changed, name
