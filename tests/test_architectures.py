"""The architecture table (lorp.architectures) on tiny random OPT and Llama models: where the blocks and the
decoder stack are found, depth pruning equal to a model built with the kept blocks only (logits, KV-cache
decoding, a saved and reloaded checkpoint), the capture's hidden states, and Wanda's input norms and sequential
pruning on OPT's blocks (``fc1``/``fc2``, learned positions, a final layer norm)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lorp.architectures import DEFAULT_LAYOUT, LAYOUTS, SUPPORTED_FAMILIES, layout_of
from lorp.depth.prune import prune_layers
from lorp.models import UnsupportedModelError, get_decoder_layers, get_decoder_stack
from tiny_families import tiny_model

# OPT as 6.7B/13B are built, OPT-350m's post-LN blocks with projections in and out, Llama 2, and every other
# supported family as transformers builds it
VARIANTS = {"opt": ("opt", {}), "opt-350m": ("opt", {"word_embed_proj_dim": 32, "do_layer_norm_before": False}),
            **{family: (family, {}) for family in SUPPORTED_FAMILIES if family != "opt"}}
IDS = torch.tensor([[5, 17, 3, 42, 8, 23, 61, 7, 30, 11]])


def _variant(name: str, **kwargs) -> torch.nn.Module:
    family, overrides = VARIANTS[name]
    return tiny_model(family, **{**overrides, **kwargs})


def test_the_table_finds_blocks_and_stack_where_each_family_keeps_them():
    opt, llama, gemma3 = _variant("opt"), _variant("llama"), _variant("gemma3")
    assert get_decoder_layers(opt) is opt.model.decoder.layers and len(opt.model.decoder.layers) == 6
    assert get_decoder_layers(llama) is llama.model.layers
    assert get_decoder_layers(gemma3) is gemma3.model.language_model.layers
    assert get_decoder_stack(opt) is opt.model and get_decoder_stack(llama) is llama.model
    assert get_decoder_stack(gemma3) is gemma3.model.language_model
    assert layout_of("opt") is LAYOUTS["opt"] and layout_of("qwen3") is DEFAULT_LAYOUT and "opt" in SUPPORTED_FAMILIES


@pytest.mark.parametrize("name", ["opt", "opt-350m", "llama", "gemma2", "gemma3"])  # every kind of stack and head
def test_the_perplexity_through_the_stack_and_head_equals_the_models_own_logits(name):
    """The evaluations run the decoder stack (with OPT's final layer norm, Gemma's soft-capping) and the LM head
    in chunks: the same negative log-likelihood as the model's own forward pass."""
    from lorp.evaluation.perplexity import window_nll

    model = _variant(name)
    with torch.inference_mode():
        logits = model(IDS).logits.float()
        expected = torch.nn.functional.cross_entropy(logits[0, :-1], IDS[0, 1:], reduction="sum").double()
        torch.testing.assert_close(window_nll(model, IDS, logits_chunk=3)[0], expected, rtol=1e-5, atol=1e-5)


def test_an_unsupported_layout_names_every_place_looked():
    from transformers import GPT2Config, GPT2LMHeadModel

    tiny = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50))
    looked = r"model\.model\.layers \(opt: model\.model\.decoder\.layers, gemma3: model\.model\.language_model\.layers\)"
    with pytest.raises(UnsupportedModelError, match=rf"'gpt2'.*{looked}.*Supported families: llama, .*opt"):
        get_decoder_layers(tiny)


def _with_kept_blocks(name: str, dense: torch.nn.Module, kept: list[int]) -> torch.nn.Module:
    """A fresh model of ``len(kept)`` blocks carrying the dense model's weights, block i from block kept[i]
    (with block kept[i]'s layer type, where the family has sliding and full attention layers)."""
    types = getattr(dense.config.get_text_config(), "layer_types", None)
    fresh = _variant(name, layers=len(kept), seed=1, **({"layer_types": [types[i] for i in kept]} if types else {}))
    prefix = layout_of(dense.config.model_type).blocks + "."
    state = {}
    for key, value in dense.state_dict().items():
        if key.startswith(prefix):
            index, rest = key[len(prefix):].split(".", 1)
            if int(index) in kept:
                state[f"{prefix}{kept.index(int(index))}.{rest}"] = value
        else:
            state[key] = value
    fresh.load_state_dict(state, strict=True)
    return fresh


@pytest.mark.parametrize("name", list(VARIANTS))
def test_pruned_blocks_give_the_logits_of_a_model_built_with_the_kept_blocks(name, tmp_path):
    from transformers import AutoModelForCausalLM

    dense = _variant(name)
    types = getattr(dense.config.get_text_config(), "layer_types", None)
    expected = _with_kept_blocks(name, dense, [0, 2, 5])
    pruned = prune_layers(dense, [1, 3, 4])
    text_config = pruned.config.get_text_config()
    assert text_config.num_hidden_layers == 3 and len(get_decoder_layers(pruned)) == 3
    assert getattr(text_config, "layer_types", None) == (types and [types[i] for i in (0, 2, 5)])
    assert [block.self_attn.layer_idx for block in get_decoder_layers(pruned)] == [0, 1, 2]
    with torch.inference_mode():
        logits = pruned(IDS).logits
        torch.testing.assert_close(logits, expected(IDS).logits, rtol=0, atol=0)
        # KV-cache decoding agrees with the full forward pass: the cache is indexed by the renumbered blocks
        prefix = pruned(IDS[:, :-1], use_cache=True)
        step = pruned(IDS[:, -1:], past_key_values=prefix.past_key_values, use_cache=True).logits[0, -1]
        torch.testing.assert_close(step, logits[0, -1], rtol=1e-4, atol=1e-5)
    pruned.save_pretrained(tmp_path / "ckpt")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt", dtype=torch.float32).eval()
    assert type(reloaded) is type(dense) and len(get_decoder_layers(reloaded)) == 3
    with torch.inference_mode():
        torch.testing.assert_close(reloaded(IDS).logits, logits, rtol=0, atol=0)


def test_the_capture_stores_what_enters_each_opt_block_and_the_last_output_before_the_final_norm(tmp_path):
    from lorp.capture import capture_activations

    model = _variant("opt", layers=3)
    tokens = np.array([[5, 17, 3, 42, 8, 23], [9, 1, 4, 33, 2, 60]])
    capture_activations(model, tokens, tmp_path / "act", batch_size=1, dtype="float32")
    layers = [np.load(tmp_path / "act" / f"layer_{i:03d}.npy") for i in range(4)]
    decoder = model.model.decoder
    ids = torch.from_numpy(tokens)
    with torch.inference_mode():
        positions = torch.arange(6).expand(2, 6)
        embedded = decoder.embed_tokens(ids) + decoder.embed_positions(torch.ones(2, 6), 0, position_ids=positions)
        np.testing.assert_allclose(layers[0], embedded.reshape(-1, 64).numpy(), rtol=1e-6, atol=1e-6)
        final = model.model(input_ids=ids).last_hidden_state.reshape(-1, 64).numpy()
        normed = decoder.final_layer_norm(torch.from_numpy(layers[3])).numpy()
        entering = model.model(input_ids=ids, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(normed, final, rtol=1e-5, atol=1e-5)
    for i in range(3):  # every block's input, the middle ones too (a shifted index would swap them)
        np.testing.assert_allclose(layers[i], entering[i].reshape(-1, 64).numpy(), rtol=1e-5, atol=1e-5)


def test_wanda_norms_on_opt_blocks_include_the_learned_positions_and_fc1_fc2():
    from lorp.sparse.norms import block_linears, dense_input_norms, prune_sequentially

    model = _variant("opt", layers=3)
    assert list(block_linears(get_decoder_layers(model)[0])) == [
        "self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj", "self_attn.out_proj", "fc1", "fc2"]
    tokens = np.random.default_rng(0).integers(0, 64, size=(4, 12))
    dense = dense_input_norms(model, tokens, batch_size=2)
    decoder = model.model.decoder
    with torch.inference_mode():  # block 0's attention reads the layer norm of tokens plus positions
        ids = torch.from_numpy(tokens)
        x = decoder.embed_tokens(ids) + decoder.embed_positions(torch.ones(4, 12), 0,
                                                                 position_ids=torch.arange(12).expand(4, 12))
        expected = get_decoder_layers(model)[0].self_attn_layer_norm(x).double().pow(2).sum(dim=(0, 1)).sqrt()
    np.testing.assert_allclose(dense[0]["self_attn.q_proj"], expected.numpy(), rtol=1e-6)
    assert dense[0]["fc2"].shape == (128,) and dense[2]["fc1"].shape == (64,)
    used = prune_sequentially(model, tokens, lambda b, norms: None, batch_size=3)  # nothing pruned: the dense norms
    for b in range(3):
        for name in dense[b]:
            np.testing.assert_allclose(used[b][name], dense[b][name], rtol=1e-6, err_msg=f"{b} {name}")


def test_sequential_wanda_on_opt_holds_its_plan_and_is_rebuilt_bit_for_bit():
    from lorp.evaluation.pruned import build_pruned
    from lorp.sparse import plan as sp
    from lorp.sparse.norms import block_shapes
    from lorp.sparse.prune import measure_pruned, prune_to_plan

    tokens = np.random.default_rng(2).integers(0, 64, size=(6, 16))
    staged = _variant("opt", layers=4)
    plan = sp.owl_plan("wanda", 0.6, [{"outlier_ratio": r, "n_params": 1, "linears": shapes}
                                      for r, shapes in zip([0.1, 0.3, 0.2, 0.25], block_shapes(staged))], lam=0.05)
    used = prune_to_plan(staged, plan, tokens=tokens, batch_size=4)
    measured = measure_pruned(staged, plan)
    assert measured["model_sparsity"] == pytest.approx(0.6, abs=0.01)
    assert all(m["row_shortfall"] == 0 for block in measured["blocks"] for m in block["linears"].values())
    assert set(measured["blocks"][0]["linears"]) >= {"fc1", "fc2", "self_attn.out_proj"}
    for block, before in zip(get_decoder_layers(staged), get_decoder_layers(_variant("opt", layers=4))):
        assert torch.equal(block.fc1.bias, before.fc1.bias)  # biases and layer norms are not pruned
    rebuilt = build_pruned(_variant("opt", layers=4), plan.to_dict(), used, measured)
    for name, tensor in staged.state_dict().items():
        assert torch.equal(tensor, rebuilt.state_dict()[name]), name
