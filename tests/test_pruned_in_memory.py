"""Pruned models built in memory (lorp.evaluation.pruned) on a tiny random Llama: the sequential
protocol's zeros rebuilt from the recorded norms, copies that leave the dense model intact, the
rebuild refusing a measurement it does not reproduce, and interleaved timing's paired speed-ups."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lorp.evaluation.efficiency import (EfficiencySettings, Timings, interleaved, result, speedups, time_against_dense,
                                       timed_runs, timing_groups, trios)
from lorp.evaluation.pruned import RebuildMismatchError, build_pruned
from lorp.models import shared_copy
from lorp.sparse import plan as sp
from lorp.sparse.norms import block_linears, block_shapes, read_pruning_norms, write_pruning_norms
from lorp.sparse.prune import measure_pruned, prune_to_plan


def _tiny_llama(layers: int = 4):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _wanda_plan(model):
    return sp.owl_plan("wanda", 0.6, [{"outlier_ratio": r, "n_params": 1, "linears": shapes}
                                      for r, shapes in zip([0.1, 0.3, 0.2, 0.25], block_shapes(model))], lam=0.05)


def test_sequential_wanda_zeros_are_rebuilt_exactly_from_the_recorded_norms(tmp_path):
    """The sparse stage prunes with Wanda's sequential protocol and records the norms; a fresh copy of the
    dense model pruned from the recorded file has the same weights, bit for bit."""
    tokens = np.random.default_rng(0).integers(0, 64, size=(6, 16))
    staged = _tiny_llama()
    plan = _wanda_plan(staged)
    used = prune_to_plan(staged, plan, tokens=tokens, batch_size=4)
    measured = measure_pruned(staged, plan)
    write_pruning_norms(tmp_path / "norms.npz", used)
    norms = read_pruning_norms(tmp_path / "norms.npz")
    assert [sorted(b) for b in norms] == [sorted(b) for b in used]
    assert all(np.array_equal(norms[b][k], used[b][k]) for b in range(len(used)) for k in used[b])

    rebuilt = build_pruned(_tiny_llama(), plan.to_dict(), norms, measured)
    for name, tensor in staged.state_dict().items():
        assert torch.equal(tensor, rebuilt.state_dict()[name]), name
    # dense norms would prune other weights: the rebuild notices
    from lorp.sparse.norms import dense_input_norms

    with pytest.raises(RebuildMismatchError, match="rerun the sparse stage"):
        build_pruned(_tiny_llama(), plan.to_dict(), dense_input_norms(_tiny_llama(), tokens[:1]), measured)


def test_the_measuring_pass_skips_each_blocks_last_product_after_the_first_batch():
    """Wanda's sequential protocol multiplies by ``down_proj`` once per batch for the outputs, and in the
    measuring pass only in the first batch (which counts the hook calls), with the dense norms unchanged."""
    from lorp.sparse.norms import dense_input_norms, prune_sequentially

    tokens = np.random.default_rng(1).integers(0, 64, size=(6, 16))  # 3 batches of 2
    dense = dense_input_norms(_tiny_llama(), tokens, batch_size=2)
    model = _tiny_llama()
    products = [0] * 4
    for b, block in enumerate(model.model.layers):
        block.mlp.down_proj.register_forward_hook(lambda *_, b=b: products.__setitem__(b, products[b] + 1))
    used = prune_sequentially(model, tokens, lambda b, norms: None, batch_size=2)
    assert products == [3 + 1] * 4
    for b in range(4):
        for name in dense[b]:
            np.testing.assert_allclose(used[b][name], dense[b][name], rtol=1e-6, err_msg=f"{b} {name}")


def test_magnitude_norms_file_is_empty_and_rebuilds_without_norms(tmp_path):
    model = _tiny_llama()
    plan = sp.uniform_plan("magnitude", 0.5, block_shapes(model))
    write_pruning_norms(tmp_path / "n.npz", prune_to_plan(model, plan))
    assert read_pruning_norms(tmp_path / "n.npz") == [None] * 4
    rebuilt = build_pruned(_tiny_llama(), plan.to_dict(), read_pruning_norms(tmp_path / "n.npz"),
                           measure_pruned(model, plan))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values()))


@pytest.mark.parametrize("family", ["depth", "sparse"])
def test_a_pruned_copy_leaves_the_dense_model_intact_and_shares_what_it_does_not_change(family):
    dense = _tiny_llama()
    before = _weights(dense)
    if family == "depth":
        plan = {"family": "depth", "method": "x", "budget": 2, "n_layers": 4, "pruned": [1, 2], "kept": [0, 3]}
        pruned = build_pruned(dense, plan, keep_dense=True)
        assert len(pruned.model.layers) == 2 and pruned.config.num_hidden_layers == 2
        assert pruned.model.layers[1].self_attn.q_proj.weight is dense.model.layers[3].self_attn.q_proj.weight
        assert pruned.model.layers[1].self_attn.layer_idx == 1 and dense.model.layers[3].self_attn.layer_idx == 3
    else:
        plan = sp.uniform_plan("magnitude", 0.5, block_shapes(dense))
        pruned = build_pruned(dense, plan.to_dict(), keep_dense=True)
        assert pruned.model.embed_tokens.weight is dense.model.embed_tokens.weight
        lin = block_linears(pruned.model.layers[0])["mlp.up_proj"].weight
        assert lin is not dense.model.layers[0].mlp.up_proj.weight and float((lin == 0).double().mean()) == 0.5
    assert len(dense.model.layers) == 4 and dense.config.num_hidden_layers == 4
    assert all(torch.equal(v, dense.state_dict()[k]) for k, v in before.items())
    ids = torch.arange(8).unsqueeze(0)
    assert torch.isfinite(pruned(input_ids=ids).logits).all()


def test_a_depth_plan_for_another_depth_is_refused():
    plan = {"family": "depth", "n_layers": 30, "pruned": [1], "kept": list(range(29))}
    with pytest.raises(ValueError, match="30-block model, the model has 4"):
        build_pruned(_tiny_llama(), plan)


def test_shared_copy_clones_only_the_tensors_it_owns():
    model = _tiny_llama(2)
    own = [model.model.layers[0].mlp.down_proj.weight]
    copy = shared_copy(model, own)
    assert copy.model.layers[0].mlp.down_proj.weight is not own[0]
    assert torch.equal(copy.model.layers[0].mlp.down_proj.weight, own[0])
    assert copy.model.layers[1].mlp.down_proj.weight is model.model.layers[1].mlp.down_proj.weight
    assert copy.lm_head.weight is model.lm_head.weight


def test_interleaved_timing_pairs_rounds_and_reports_the_spread():
    dense = _tiny_llama()
    pruned = build_pruned(dense, {"family": "depth", "n_layers": 4, "pruned": [0, 1, 2], "kept": [3]}, keep_dense=True)
    cfg = EfficiencySettings(batch_size=1, seqlen=8, decode_tokens=2, warmup=0, repeats=3)
    calls = []
    timings = interleaved({"dense": dense, "pruned": pruned}, cfg, progress=calls.append)
    assert len(calls) == 6 and all(len(t.prefill) == len(t.decode) == 3 for t in timings.values())
    row = result(pruned, timings["pruned"], cfg, torch.bfloat16)
    assert row.n_params < result(dense, timings["dense"], cfg).n_params
    assert row.weights_bytes == 2 * row.n_params and row.memory_measure == "parameters_only"
    # paired ratios: dense time over pruned time in each round, median with the extremes
    s = speedups(Timings([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]), Timings([0.5, 2.0, 1.0], [2.0, 1.0, 4.0]))
    assert s["prefill_speedup"] == 2.0 and (s["prefill_speedup_min"], s["prefill_speedup_max"]) == (1.0, 3.0)
    assert s["decode_speedup"] == 2.0 and (s["decode_speedup_min"], s["decode_speedup_max"]) == (1.0, 4.0)


def test_trios_put_the_dense_model_next_to_every_pruned_one_and_time_a_model_once():
    # two pruned models per group (timed a, dense, b then b, dense, a); repeated keys are one model
    assert trios(["a", "b", "a", "c", "d", "b", "e"]) == [["a", "b"], ["c", "d"], ["e"]]
    assert trios([]) == []
    dense = _tiny_llama()
    a = build_pruned(dense, {"family": "depth", "n_layers": 4, "pruned": [3], "kept": [0, 1, 2]}, keep_dense=True)
    b = build_pruned(dense, {"family": "depth", "n_layers": 4, "pruned": [0, 3], "kept": [1, 2]}, keep_dense=True)
    cfg = EfficiencySettings(batch_size=1, seqlen=8, decode_tokens=2, warmup=2, repeats=2)
    order = []
    for name, m in {"a": a, "dense": dense, "b": b}.items():
        m.register_forward_pre_hook(lambda *_, name=name: order.append(name))
    interleaved({"a": a, "dense": dense, "b": b}, cfg, warm={"dense"})
    # a prefill and two decode steps per round; the dense model, already warm, gets no warm-up
    rounds = [order[i] for i in range(0, len(order), 3)]
    assert rounds == ["a", "a", "b", "b"] + ["a", "dense", "b", "b", "dense", "a"]


def test_plans_that_remove_the_same_blocks_are_one_model_timed_once_and_a_sparse_one_alone():
    """Depth plans are one model when they remove the same blocks (whatever their order or file); a sparse
    model is its own. Depth models are timed two by two beside the dense one, a sparse one alone with it."""
    from lorp.evaluation.reuse import pruned_model_key

    def depth(pruned):
        return {"family": "depth", "n_layers": 4, "pruned": pruned, "kept": [i for i in range(4) if i not in pruned]}

    a, b, c = (pruned_model_key(depth(p), {"plan": f"{i}.json"}) for i, p in enumerate(([3, 0], [0, 3], [1])))
    assert a == b == ("depth", 4, (0, 3)) and c == ("depth", 4, (1,))
    s = pruned_model_key({"family": "sparse", "method": "wanda-owl"}, {"plan": "s.json"})
    assert s == ("sparse", "s.json")
    groups = timing_groups([a, s, b, c, s])
    assert groups == [[a, c], [s]]
    # a recovered model is its own; a patched one shares the dense tensors (in pairs), a LoRA one owns its own
    patched, lora = ("recovered", "p", False), ("recovered", "l", True)
    assert timing_groups([a, lora, patched, c, s]) == [[a, patched], [c], [lora], [s]]
    cfg = EfficiencySettings(batch_size=1, seqlen=8, decode_tokens=2, warmup=1, repeats=2)
    assert timed_runs(groups, cfg) == (3 + 2) * 2 and timed_runs([], cfg) == 2
    dense = _tiny_llama()
    plans = {a: depth([0, 3]), c: depth([1])}
    built, calls = [], []

    def build(key):
        built.append(key)
        return build_pruned(dense, plans[key], keep_dense=True)

    pooled, rows = time_against_dense(dense, [[a], [c]], build, cfg, torch.bfloat16, progress=calls.append)
    assert built == [a, c] and len(calls) == timed_runs([[a], [c]], cfg)
    assert len(pooled.prefill) == len(pooled.decode) == 2 * cfg.repeats  # the dense runs of both groups
    assert (rows[a]["n_layers"], rows[c]["n_layers"]) == (2, 3) and rows[a]["repeats"] == 2
    assert rows[a]["weights_bytes"] == 2 * rows[a]["n_params"] and 0 < rows[a]["prefill_speedup_min"]
    pooled, rows = time_against_dense(dense, [], build, cfg)
    assert rows == {} and len(pooled.prefill) == cfg.repeats and built == [a, c]


def test_the_stored_dtype_of_a_prepared_model_is_a_config_dtype(tmp_path):
    from lorp.models import stored_dtype

    for stored, name in (("torch.bfloat16", "bfloat16"), ("float16", "float16"), ("int8", "auto"), (None, "auto")):
        (tmp_path / "model.json").write_text(json.dumps({} if stored is None else {"storage_dtype": stored}))
        assert stored_dtype(tmp_path) == name


# ------------------------------------------------ an auto plan's evaluation copies its candidate's rows
def _evaluation(tmp_path, method: str, pruned: list[int], ppl: str, model: str = "m/model", n_layers: int = 6):
    """A depth plan and its evaluation CSV as the evaluation stage writes them (numbers as text)."""
    from lorp.tables import PPL_COLUMNS, rows_csv

    plan = tmp_path / f"{method}-2.json"
    plan.write_text(json.dumps({"method": method, "n_layers": n_layers, "pruned": pruned}))
    rows = [{"model": "m", "calib": "docs", "method": method, "budget": 2, "n_layers": n_layers - len(pruned),
             "dataset": name, "seqlen": 64, "prefix_tokens": 0, "n_windows": 2, "n_tokens": 126, "nll": "3.1234567891",
             "ppl": ppl, "base_model": model, "plan": str(plan)} for name in ("wiki", "ptb")]
    csv_path = tmp_path / f"{method}-2.csv"
    csv_path.write_text(rows_csv(rows, PPL_COLUMNS))
    return plan, csv_path


def test_an_auto_evaluation_copies_the_rows_of_the_candidate_with_its_blocks(tmp_path):
    """Of the candidates' evaluations, the one whose plan removes the same blocks from the same prepared
    model is copied as written with auto's labels; no match, another base model, a missing dataset or a
    sparse plan copy nothing."""
    from lorp.evaluation.reuse import reused_rows

    _, lorp_csv = _evaluation(tmp_path, "lorp", [1, 4], "99.5")
    _, short_csv = _evaluation(tmp_path, "shortgpt", [3, 2], "41.123456789012")
    auto, _ = _evaluation(tmp_path / "..", "auto", [2, 3], "0")
    labels = {"model": "m", "calib": "docs", "method": "auto", "budget": 2, "base_model": "m/model", "plan": str(auto)}
    sources = {"model": "m/model", "plan": str(auto)}
    rows, origin = reused_rows(sources, [lorp_csv, short_csv], labels, "dataset", ["wiki", "ptb"])
    assert origin == str(short_csv)
    assert [r["ppl"] for r in rows] == ["41.123456789012"] * 2  # as written, not reformatted
    assert {(r["method"], r["plan"], r["budget"], r["n_layers"]) for r in rows} == {("auto", str(auto), "2", "4")}
    assert reused_rows(sources, [lorp_csv], labels, "dataset", ["wiki", "ptb"]) is None
    assert reused_rows({**sources, "model": "other/model"}, [short_csv], labels, "dataset", ["wiki", "ptb"]) is None
    assert reused_rows(sources, [short_csv], labels, "dataset", ["wiki", "ptb", "c4"]) is None
    assert reused_rows(sources, [], labels, "dataset", ["wiki", "ptb"]) is None
    auto.write_text(json.dumps({"family": "sparse", "method": "wanda-owl", "n_layers": 6}))
    assert reused_rows(sources, [short_csv], labels, "dataset", ["wiki", "ptb"]) is None


def test_only_an_auto_evaluation_reads_the_evaluations_of_its_evaluated_candidates(tmp_path):
    """auto's candidates under a compared statistic are not evaluated, so they are not inputs (Snakemake's DAG)."""
    import yaml

    from lorp.workflow.dag import workflow_jobs

    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump({
        "models": {"m": {"source": "embedded"}},
        "calibration": {"docs": {"source": "python-docs", "n_samples": 4, "seqlen": 64}},
        "methods": {"lorp": {}, "angular": {}, "auto": {}}, "budgets": [2],
        "evaluation": {"datasets": {"python-docs": {"source": "python-docs"}}},
        "similarity": {"compare": ["cka"]}}))
    jobs = {(j.rule, j.wildcards.get("calib"), j.wildcards.get("method")): j
            for j in workflow_jobs(configfile, tmp_path)}
    candidates = {k: v for k, v in jobs["evaluate_pruned", "docs", "auto"].inputs.items() if k.startswith("candidate_")}
    assert sorted(candidates.values()) == ["results/m/eval/docs/angular-2/ppl.csv", "results/m/eval/docs/lorp-2/ppl.csv"]
    assert not any(k.startswith("candidate_") for k in jobs["evaluate_pruned", "docs", "lorp"].inputs)
