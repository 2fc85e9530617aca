"""Recovery after depth pruning (lorp.recovery) on hand-built activations and a tiny random Llama: the patch's
known answers (a known linear map recovered exactly without ridge, shrunk toward the identity with it), where
it sits in the pruned model, LoRA lowering the training loss, and recovered checkpoints reloading offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lorp.depth.prune import prune_layers
from lorp.recovery import attach as ra
from lorp.recovery.patch import contiguous_spans, fit_patch, fit_plan_patches, load_patches, save_patches
from lorp.recovery.registry import RECOVERIES, split_recovered


def _tiny_llama(layers: int = 6, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def _ids(n: int = 2, seqlen: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 64, size=(n, seqlen)))


def test_contiguous_spans_are_the_maximal_runs_in_depth_order():
    assert contiguous_spans([]) == []
    assert contiguous_spans([7, 3, 4, 5, 9, 10]) == [(3, 3), (7, 1), (9, 2)]


def test_without_ridge_the_patch_is_the_linear_map_that_made_the_targets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 12)).astype(np.float16).astype(np.float32)
    a = np.eye(12) + 0.3 * rng.normal(size=(12, 12))
    p = fit_patch(x, x @ a.T, ridge=0.0, chunk=64)  # several chunks
    np.testing.assert_allclose(p.matrix, a, atol=1e-9)
    assert p.residual < 1e-20 and p.baseline > 0.1 and p.n_tokens == 500 and p.lam == 0.0


def test_ridge_shrinks_the_patch_toward_the_identity_and_raises_its_residual():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8))
    a = np.eye(8) + 0.5 * rng.normal(size=(8, 8))
    y = x @ a.T + 0.1 * rng.normal(size=x.shape)
    fits = [fit_patch(x, y, ridge=r) for r in (0.0, 0.01, 1.0, 100.0, 1e8)]
    distance = [np.linalg.norm(f.delta) for f in fits]
    residual = [f.residual for f in fits]
    assert all(d1 > d2 for d1, d2 in zip(distance, distance[1:]))
    assert all(r1 < r2 for r1, r2 in zip(residual, residual[1:]))
    assert distance[-1] < 1e-6 * distance[0]  # plain pruning in the limit
    assert fits[-1].residual == pytest.approx(fits[-1].baseline, rel=1e-6)
    # the ridge is relative to the inputs' scale: the same shrinkage on inputs 1000 times larger
    scaled = fit_patch(1000 * x, 1000 * y, ridge=1.0)
    np.testing.assert_allclose(scaled.delta, fits[2].delta, atol=1e-10)


def test_a_span_whose_output_is_its_input_gets_the_identity():
    x = np.random.default_rng(2).normal(size=(50, 6))
    p = fit_patch(x, x.copy(), ridge=0.0)
    np.testing.assert_array_equal(p.delta, np.zeros((6, 6)))


def test_patches_are_fitted_per_span_from_the_stored_layers_and_saved(tmp_path):
    rng = np.random.default_rng(3)
    layers = [rng.normal(size=(40, 5)).astype(np.float16) for _ in range(7)]  # 6 blocks: layer_0 .. layer_6
    for i, h in enumerate(layers):
        np.save(tmp_path / f"layer_{i:03d}.npy", h)
    patches = fit_plan_patches(tmp_path, [1, 2, 5], n_layers=6, ridge=0.0)
    assert [(p.start, p.length) for p in patches] == [(1, 2), (5, 1)]
    direct = fit_patch(layers[1], layers[3], ridge=0.0)
    np.testing.assert_allclose(patches[0].delta, direct.delta)
    assert fit_plan_patches(tmp_path, [], n_layers=6, ridge=0.0) == []
    save_patches(tmp_path / "p.npz", patches)
    stored = load_patches(tmp_path / "p.npz")
    assert [(s, n) for s, n, _ in stored] == [(1, 2), (5, 1)]
    np.testing.assert_allclose(stored[1][2], patches[1].delta.astype(np.float32))


def test_each_patch_precedes_the_first_kept_block_after_its_span_or_the_final_norm():
    assert ra.patch_targets([1, 2, 5], 6, [(1, 2), (5, 1)]) == [1, ra.FINAL_NORM]
    assert ra.patch_targets([0], 6, [(0, 1)]) == [0]
    with pytest.raises(ValueError, match="kept blocks"):
        ra.patch_targets([1], 6, [(1, 2)])


def test_an_identity_patch_leaves_the_pruned_models_logits_unchanged_and_a_patch_acts_where_it_sits():
    model = prune_layers(_tiny_llama(), [2, 3, 5])
    ids = _ids()
    with torch.no_grad():
        pruned = model(ids).logits
        ra.attach(model, [2, ra.FINAL_NORM], [np.zeros((32, 32)), np.zeros((32, 32))])
        assert torch.equal(model(ids).logits, pruned)
        ra.detach(model)
        # a patch before the final norm equals scaling the last hidden state before the norm
        ra.attach(model, [ra.FINAL_NORM], [np.eye(32)])  # P = 2 I: RMSNorm is scale-invariant (up to its eps)
        np.testing.assert_allclose(model(ids).logits.numpy(), pruned.numpy(), rtol=1e-2, atol=1e-3)
        ra.detach(model)
        # a general patch there acts on the final norm's input: h + h D^T, then the norm and the head
        entering = []
        handle = model.model.norm.register_forward_pre_hook(lambda _m, args: entering.append(args[0]))
        model(ids)
        handle.remove()
        delta = 0.3 * np.random.default_rng(0).standard_normal((32, 32))
        h = entering[0]
        expected = model.lm_head(model.model.norm(h + h @ torch.tensor(delta, dtype=h.dtype).T))
        ra.attach(model, [ra.FINAL_NORM], [delta])
        torch.testing.assert_close(model(ids).logits, expected, atol=1e-5, rtol=0)
        assert not torch.allclose(expected, pruned, atol=1e-3)
        ra.detach(model)
        ra.attach(model, [1], [0.5 * np.eye(32)])
        assert not torch.allclose(model(ids).logits, pruned, atol=1e-3)
        ra.detach(model)
        assert torch.equal(model(ids).logits, pruned)
    assert not any(k for k in model.state_dict() if "patch" in k)  # the state dict stays a plain model's


def test_the_patch_carries_the_hidden_state_across_the_span_on_the_real_activations_of_a_tiny_model(tmp_path):
    """Activations captured from a tiny random Llama; the patched pruned model's last hidden state is closer
    to the dense one's than the plain pruned model's."""
    from lorp.capture import capture_activations
    from lorp.recovery.registry import RecoverInputs, get_recovery

    dense = _tiny_llama(layers=6, seed=4)
    tokens = np.random.default_rng(5).integers(0, 64, size=(16, 24))
    capture_activations(dense, tokens, tmp_path / "acts", batch_size=8, dtype="float32")
    plan = {"pruned": [2, 3], "n_layers": 6}
    patch = get_recovery("patch")
    log = patch.fit(RecoverInputs(activations=tmp_path / "acts"), plan, {"ridge": 0.0}, tmp_path)
    assert [(r["start"], r["length"]) for r in log] == [(2, 2)] and log[0]["mse_patch"] < log[0]["mse_identity"]
    ids = torch.from_numpy(tokens[:4])
    with torch.no_grad():
        target = dense.model(ids).last_hidden_state
        pruned = prune_layers(_tiny_llama(layers=6, seed=4), plan["pruned"])
        plain = pruned.model(ids).last_hidden_state
        patch.rebuild(pruned, plan, tmp_path)
        patched = pruned.model(ids).last_hidden_state
    assert float((patched - target).pow(2).mean()) < float((plain - target).pow(2).mean())


def test_lora_lowers_the_training_loss_of_a_tiny_model_and_merges_into_its_weights(tmp_path):
    from lorp.recovery.lora import PROJECTIONS, merge_adapter, save_adapter, train_lora

    windows = np.tile(np.arange(32) % 7, (8, 1))  # a repetitive text the random model cannot predict
    model = _tiny_llama(layers=2)
    peft_model, log = train_lora(model, windows, rank=8, alpha=16, dropout=0.0, targets=PROJECTIONS, steps=40,
                                 lr=1e-2, batch_size=4, seed=0)
    assert [r["step"] for r in log] == list(range(1, 41)) and log[-1]["tokens"] == 40 * 4 * 32
    assert max(r["loss"] for r in log[-5:]) < 0.9 * log[0]["loss"]  # 4.12 -> 3.52
    save_adapter(peft_model, tmp_path / "adapter")
    ids = torch.from_numpy(windows[:2])
    with torch.no_grad():
        trained = peft_model(input_ids=ids).logits
        merged = merge_adapter(_tiny_llama(layers=2), tmp_path / "adapter")
        assert type(merged).__name__ == "LlamaForCausalLM"
        np.testing.assert_allclose(merged(ids).logits.numpy(), trained.numpy(), atol=1e-4)


def test_recovered_rows_name_their_recovery():
    assert list(RECOVERIES) == ["patch", "lora"]
    assert split_recovered("shortgpt+patch") == ("shortgpt", "patch")
    assert split_recovered("wanda-mrp") == ("wanda-mrp", None)
    assert split_recovered("x+unknown") == ("x+unknown", None)


def test_the_recovery_section_is_checked_naming_the_key():
    import copy

    import yaml

    from lorp.workflow.config import ConfigError, recovered_names, recovery_errors, validate_schema
    from lorp.workflow.config.schema import SCHEMA_PATH

    base = yaml.safe_load((SCHEMA_PATH.parents[1] / "config" / "recovery.yaml").read_text())
    cfg = validate_schema(copy.deepcopy(base))
    assert cfg["recovery"]["methods"]["lora"]["rank"] == 8 and cfg["recovery"]["methods"]["lora"]["dropout"] == 0.05
    assert len(recovered_names(cfg)) == 2 * 5 * 2 and "lorp-8+patch" in recovered_names(cfg)
    assert recovery_errors(cfg, SCHEMA_PATH.parents[1]) == []
    bad = copy.deepcopy(base)
    bad["recovery"]["methods"] = {"pach": {}, "lora": {"rnk": 4}}
    with pytest.raises(ConfigError) as err:
        validate_schema(bad)
    assert "recovery.methods: unknown recovery 'pach' (did you mean 'patch'?)" in str(err.value)
    assert "recovery.methods.lora: unknown key 'rnk' (did you mean 'rank'?)" in str(err.value)
    bad = copy.deepcopy(base)
    bad["recovery"]["plans"] = ["lorp-3"]
    bad["recovery"]["methods"]["lora"]["data"] = {"source": "python-docs"}
    bad["evaluation"]["datasets"]["c4"] = {"source": "../shared/data/c4/c4_validation_2k_sample.jsonl"}
    errors = recovery_errors(validate_schema(bad), SCHEMA_PATH.parents[1])
    assert errors[0].startswith("recovery.plans: 'lorp-3' is not a depth plan this config evaluates")
    assert errors[1].startswith("recovery.methods.lora.data.source: 'python-docs' is a built-in corpus")
    bad["recovery"]["methods"]["lora"]["data"] = {"source": "../shared/data/c4/c4_validation_2k_sample.jsonl"}
    errors = recovery_errors(validate_schema(bad), SCHEMA_PATH.parents[1])
    assert "is also the evaluation dataset c4's corpus" in errors[-1]


def test_the_recovery_table_gives_the_recovered_fraction_and_the_ranks_before_and_after():
    import pandas as pd

    from lorp.recovery.table import recovery_table

    rows = [("dense", 0, 10.0), ("a", 4, 20.0), ("b", 4, 110.0), ("a+patch", 4, 15.0), ("b+patch", 4, 12.0),
            ("a+lora", 4, 11.0)]
    table = pd.DataFrame([{"model": "m", "calib": "-" if b == 0 else "c", "method": m, "budget": b, "mean_ppl": p}
                          for m, b, p in rows])
    costs = pd.DataFrame([{"model": "m", "calib": "c", "method": "a", "budget": 4, "recovery": "patch", "wall_s": 1.5,
                           "tokens": 8, "peak_rss_mib": 3.0}])
    out = recovery_table(table, costs).set_index(["method", "recovery"])
    assert out.loc[("a", "patch"), "recovered_fraction"] == pytest.approx(0.5)
    assert out.loc[("b", "patch"), "recovered_fraction"] == pytest.approx(0.98)
    assert out.loc[("a", "lora"), "recovered_fraction"] == pytest.approx(0.9)
    # a is the better plan training-free, b once both are patched; a is alone among the LoRA models
    assert list(out.loc[[("a", "patch"), ("b", "patch"), ("a", "lora")], "rank_pruned"]) == [1, 2, 1]
    assert list(out.loc[[("a", "patch"), ("b", "patch"), ("a", "lora")], "rank_recovered"]) == [2, 1, 1]
    assert out.loc[("a", "patch"), "wall_s"] == 1.5 and np.isnan(out.loc[("b", "patch"), "wall_s"])


@pytest.mark.slow
def test_recovered_models_built_beside_the_dense_one_leave_it_intact_and_a_lora_export_reloads(tmp_path):
    """The efficiency job builds each recovered model as a copy beside the dense one: the patched one shares
    the dense tensors (its patches counted apart), the LoRA one owns its blocks' (the merge would otherwise
    write into the dense weights); both give the logits of the model the evaluations build in place. The
    exported LoRA model reloads offline, as a plain Hugging Face model, to the same logits."""
    from tiny_families import save_tiny_models

    from lorp.evaluation.pruned import build_pruned
    from lorp.io import write_json
    from lorp.models import load
    from lorp.recovery import RECOVERY_RECORD, load_recovered
    from lorp.recovery.lora import PROJECTIONS, save_adapter, train_lora
    from lorp.recovery.patch import SpanPatch
    from lorp.workflow.stages.model import export_checkpoint, load_evaluated, prepare_model

    source = save_tiny_models(tmp_path / "src", families=("llama",))["llama"]
    prepare_model(str(source), tmp_path / "prepared", "float32")
    plan = {"method": "toy", "budget": 2, "pruned": [2, 3], "n_layers": 6}
    write_json(tmp_path / "plan.json", plan)
    sources = {"model": tmp_path / "prepared", "plan": tmp_path / "plan.json"}
    compute = {"device": "cpu", "dtype": "float32"}
    ids = torch.from_numpy(np.arange(100, 124, dtype=np.int64)[None])

    pruned, _ = load_evaluated(sources, compute)  # the adapter trained on the pruned model, as the recover job does
    peft_model, _ = train_lora(pruned, np.tile(np.arange(32) % 7 + 100, (8, 1)), rank=4, alpha=8, dropout=0.0,
                               targets=PROJECTIONS, steps=3, lr=1e-2, batch_size=4, seed=0)
    (tmp_path / "lora").mkdir()
    save_adapter(peft_model, tmp_path / "lora" / "adapter")
    write_json(tmp_path / "lora" / RECOVERY_RECORD, {"recovery": "lora", "parameters": {}, "fused": True})
    rng = np.random.default_rng(3)
    (tmp_path / "patch").mkdir()
    save_patches(tmp_path / "patch" / "patches.npz", [SpanPatch(2, 2, 0.05 * rng.standard_normal((64, 64)), 0.5, 1.0, 10, 0.0)])
    write_json(tmp_path / "patch" / RECOVERY_RECORD, {"recovery": "patch", "parameters": {}, "fused": False})

    from lorp.evaluation.reuse import pruned_model_key

    for name, fused in (("lora", True), ("patch", False)):
        assert pruned_model_key(plan, {**sources, "recovery": tmp_path / name}) == ("recovered", str(tmp_path / name), fused)
    dense, _, _ = load(tmp_path / "prepared", "cpu", "float32")
    with torch.no_grad():
        before = dense(ids).logits.clone()
        for name, n_patches in (("lora", 0), ("patch", 1)):
            in_place, _ = load_evaluated({**sources, "recovery": tmp_path / name}, compute)
            beside = build_pruned(dense, plan, keep_dense=True, recovery=tmp_path / name)
            assert torch.equal(beside(ids).logits, in_place(ids).logits), name
            assert not torch.allclose(beside(ids).logits, load_evaluated(sources, compute)[0](ids).logits), name
            assert len(ra.patch_tensors(beside)) == n_patches and not ra.patch_tensors(dense)
            assert torch.equal(dense(ids).logits, before), f"building the {name} model changed the dense one"
        export_checkpoint({**sources, "recovery": tmp_path / "lora"}, tmp_path / "export", compute)
        reloaded = load_recovered(tmp_path / "export")
        lora, _ = load_evaluated({**sources, "recovery": tmp_path / "lora"}, compute)
        assert type(reloaded).__name__ == "LlamaForCausalLM" and len(reloaded.model.layers) == 4
        assert torch.equal(reloaded(ids).logits, lora(ids).logits)
