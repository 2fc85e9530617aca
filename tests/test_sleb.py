"""SLEB on tiny random models with known answers: a block that is the identity is removed first, every
step's candidate NLLs equal those of the pruned models built and scored directly (a brute-force search),
exact ties go to the shallower block, budgets keep the first and last blocks, and a plan continued from the
plan at one block fewer is the plan searched from scratch."""

import json
import math

import numpy as np
import pytest
import torch

from lorp.depth.methods import METHODS, PlanInputs, eligible_count, make_plan
from lorp.depth.sleb import candidate_blocks, removals, removal_nlls, search, select_blocks
from lorp.evaluation.perplexity import perplexity
from lorp.evaluation.pruned import build_pruned

N_LAYERS = 6


def llama(identity=(), seed=0):
    """A random 6-block Llama (weights large enough that blocks matter) whose ``identity`` blocks add
    nothing to the residual stream (attention output and MLP down projections zeroed)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=N_LAYERS,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, initializer_range=0.3)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for i in identity:
            model.model.layers[i].self_attn.o_proj.weight.zero_()
            model.model.layers[i].mlp.down_proj.weight.zero_()
    return model


def own_text(model, n=6, seqlen=24, seed=0):
    """Windows sampled from the model itself, so that every real change of the model raises their NLL."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 64, (n, 1), generator=g)
    with torch.no_grad():
        for _ in range(seqlen - 1):
            probs = torch.softmax(model(ids).logits[:, -1], -1)
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=g)], 1)
    return ids.numpy().astype(np.int32)


def brute_force(model, windows, removed):
    """Each candidate's mean NLL, from the pruned model built in memory and scored from its embeddings on."""
    return {c: perplexity(build_pruned(model, {"n_layers": N_LAYERS, "pruned": sorted([*removed, c])},
                                       keep_dense=True), windows.astype(np.int64)).nll
            for c in candidate_blocks(N_LAYERS, removed)}


def test_the_identity_block_is_removed_first_and_budget_one_is_the_brute_force_search():
    model = llama(identity=[3])
    windows = own_text(model)
    dense = perplexity(model, windows.astype(np.int64)).nll
    plan = make_plan("sleb", 1, PlanInputs(model=model, tokens=windows, batch_size=4), {"n_windows": None})
    assert plan.pruned == [3] and plan.protected == [0, 5]
    direct = brute_force(model, windows, [])
    assert min(direct, key=direct.get) == 3
    assert plan.scores[3] == pytest.approx(dense, rel=1e-12)  # removing the identity changes nothing
    assert plan.scores[0] is None and plan.scores[5] is None
    assert [plan.scores[c] for c in range(1, 5)] == pytest.approx([direct[c] for c in range(1, 5)], rel=1e-9)
    assert all(direct[c] > dense + 0.1 for c in (1, 2, 4))
    data = plan.to_dict()
    assert data["steps"][0]["block"] == 3 and data["steps"][0]["ppl"] == pytest.approx(math.exp(dense))
    assert data["windows"] == {"indices": list(range(6)), "n_windows": 6, "seqlen": 24, "scored_tokens": 6 * 23}
    assert data["parameters"] == {"n_windows": None} and data["removal_order"] == [3]


def test_every_step_matches_the_pruned_models_scored_directly():
    """On a model without an identity block: at each of three steps, the candidates' NLLs computed from the
    cached hidden states equal the directly scored pruned models'; the plan is the greedy path through them."""
    model = llama(seed=1)
    windows = own_text(model, n=5, seqlen=20, seed=1)
    steps = select_blocks(model, windows.astype(np.int64), 3, batch_size=2)
    removed = []
    for step in steps:
        direct = brute_force(model, windows, removed)
        assert step.candidates == pytest.approx(direct, rel=1e-9)
        assert step.block == min(direct, key=lambda c: (direct[c], c)) and step.nll == step.candidates[step.block]
        removed.append(step.block)
    assert len(set(removed)) == 3 and not {0, 5} & set(removed)
    assert len(model.model.layers) == N_LAYERS and not any(b._forward_pre_hooks for b in model.model.layers)


def test_exact_ties_go_to_the_shallower_block():
    model = llama(identity=[2, 4])
    windows = own_text(model, n=3, seqlen=16)
    steps = select_blocks(model, windows.astype(np.int64), 2, batch_size=3)
    assert steps[0].candidates[2] == steps[0].candidates[4]
    assert [s.block for s in steps] == [2, 4]


def test_heterogeneous_blocks_sliding_and_full_attention():
    """Gemma 3's alternating sliding-window and full-attention blocks: each candidate's model gets the masks of
    its own blocks' kinds, as the pruned model built directly does."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=N_LAYERS,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                           sliding_window=4, layer_types=["sliding_attention", "full_attention"] * 3,
                           initializer_range=0.3)
    model = Gemma3ForCausalLM(cfg).eval()
    windows = np.random.default_rng(0).integers(0, 64, size=(4, 20))
    n_tokens = windows.shape[0] * (windows.shape[1] - 1)
    sums = removal_nlls(model, windows, [2], candidate_blocks(N_LAYERS, [2]), batch_size=3)
    assert {c: s / n_tokens for c, s in sums.items()} == pytest.approx(brute_force(model, windows, [2]), rel=1e-9)


def test_windows_batch_size_and_purity():
    model = llama(identity=[3])
    windows = own_text(model, n=5, seqlen=16)
    first = make_plan("sleb", 2, PlanInputs(model=model, tokens=windows, batch_size=1), {"n_windows": 3})
    again = make_plan("sleb", 2, PlanInputs(model=model, tokens=windows, batch_size=2), {"n_windows": 3})
    assert first.pruned == again.pruned and first.details["removal_order"] == again.details["removal_order"]
    assert first.scores[1:-1] == pytest.approx(again.scores[1:-1], rel=1e-12)
    assert first.details["windows"]["indices"] == [0, 1, 2]
    own = select_blocks(model, windows[:3].astype(np.int64), 2, batch_size=3)
    assert [s.block for s in own] == first.details["removal_order"]
    more = make_plan("sleb", 1, PlanInputs(model=model, tokens=windows, batch_size=2), {"n_windows": 50})
    assert more.details["windows"]["n_windows"] == 5 and more.parameters == {"n_windows": 50}
    assert removals(30, 8) == 28 + 27 + 26 + 25 + 24 + 23 + 22 + 21


def test_budgets_keep_the_first_and_last_blocks_and_inputs_are_required():
    model = llama()
    windows = own_text(model, n=2, seqlen=8)
    inputs = PlanInputs(model=model, tokens=windows)
    assert eligible_count("sleb", 30) == 28 and METHODS["sleb"].runs_model
    assert METHODS["sleb"].inputs == ("model", "tokens", "previous") and METHODS["sleb"].defaults() == {"n_windows": 8}
    for budget in (0, N_LAYERS - 1):
        with pytest.raises(ValueError, match=f"budget {budget} is invalid for method 'sleb' on a 6-layer model: "
                                             "it must be between 1 and 4"):
            make_plan("sleb", budget, inputs)
    with pytest.raises(ValueError, match="SLEB keeps the first and last blocks"):
        select_blocks(model, windows.astype(np.int64), 5, batch_size=1)
    with pytest.raises(ValueError, match="'sleb' needs the model input"):
        make_plan("sleb", 1, PlanInputs(tokens=windows))
    with pytest.raises(ValueError, match="'sleb' needs the tokens input"):
        make_plan("sleb", 1, PlanInputs(model=model))
    with pytest.raises(ValueError, match=r"\[n_samples, seqlen\]"):
        search(model, windows.reshape(-1), 1, None, 1)


def test_a_plan_continued_from_the_plan_at_one_block_fewer_is_the_search_from_scratch():
    """The workflow makes the plan at budget n from the stored plan at n - 1 (its JSON, read back) and one
    more step: the result is the search from scratch at n, to the bit, and only the new step runs."""
    model = llama(seed=1)
    windows = own_text(model, n=5, seqlen=20, seed=1)
    params = {"n_windows": 4}
    scratch = make_plan("sleb", 3, PlanInputs(model=model, tokens=windows, batch_size=2), params).to_dict()
    from lorp.depth import sleb

    real, calls = sleb.removal_nlls, []  # the blocks removed before each step the search runs
    sleb.removal_nlls = lambda *a, **k: calls.append(list(a[2])) or real(*a, **k)
    ladder = {}
    try:
        for budget in (1, 2, 3):
            made = make_plan("sleb", budget, PlanInputs(model=model, tokens=windows, batch_size=2,
                                                        previous=ladder.get(budget - 1)), params)
            ladder[budget] = json.loads(json.dumps(made.to_dict()))  # as the next plan job reads the stored file
    finally:
        sleb.removal_nlls = real
    assert ladder[3] == json.loads(json.dumps(scratch))
    order = scratch["removal_order"]
    assert calls == [[], order[:1], order[:2]]  # one step per budget: none made twice
    assert removals(30, 8, done=7) == 21


def test_a_plan_that_cannot_be_continued_is_refused_naming_why():
    model = llama(seed=1)
    windows = own_text(model, n=5, seqlen=20, seed=1)
    two = make_plan("sleb", 2, PlanInputs(model=model, tokens=windows, batch_size=2), {"n_windows": 4}).to_dict()
    for previous, why in [({**two, "windows": {**two["windows"], "n_windows": 3}}, "it scored windows"),
                          ({**two, "n_layers": 30}, "it is of a 30-block model, this one has 6"),
                          ({**two, "removal_order": [1, 2]}, "not a SLEB plan below budget 3")]:
        with pytest.raises(ValueError, match=f"cannot be continued: .*{why}.*Delete it"):
            make_plan("sleb", 3, PlanInputs(model=model, tokens=windows, batch_size=2, previous=previous),
                      {"n_windows": 4})
    with pytest.raises(ValueError, match="not a SLEB plan below budget 2"):
        make_plan("sleb", 2, PlanInputs(model=model, tokens=windows, batch_size=2, previous=two), {"n_windows": 4})
