"""Input norms and unstructured pruning on the real embedded model (SmolLM2-135M, 30 Llama blocks)."""

import numpy as np
import pytest

from lorp.models import get_decoder_layers, load
from lorp.sparse.norms import block_linears, dense_input_norms, prune_sequentially
from lorp.sparse.prune import prune_block

pytestmark = pytest.mark.slow

TOKENS = np.random.default_rng(0).integers(0, 1000, size=(4, 32))


@pytest.fixture()
def model(embedded_dir):
    return load(embedded_dir)[0]


def test_sequential_norms_equal_the_dense_ones_when_nothing_is_pruned(model):
    dense = dense_input_norms(model, TOKENS, batch_size=3)
    assert len(dense) == 30 and set(dense[0]) == {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                  "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
    assert dense[0]["mlp.down_proj"].shape == (1536,) and (dense[0]["self_attn.q_proj"] > 0).all()
    sequential = prune_sequentially(model, TOKENS, lambda b, norms: None, batch_size=3)
    for b in range(30):
        for name in dense[b]:
            np.testing.assert_allclose(sequential[b][name], dense[b][name], rtol=1e-4, err_msg=f"{b} {name}")


def test_sequential_pruning_feeds_each_block_the_pruned_outputs(model):
    dense = dense_input_norms(model, TOKENS, batch_size=4)
    pruned_blocks = []

    def prune(b, norms):
        pruned_blocks.append(b)
        prune_block(get_decoder_layers(model)[b], 0.5, "wanda", norms)

    used = prune_sequentially(model, TOKENS, prune, batch_size=4)
    assert pruned_blocks == list(range(30))
    np.testing.assert_allclose(used[0]["self_attn.q_proj"], dense[0]["self_attn.q_proj"], rtol=1e-4)
    assert not np.allclose(used[5]["self_attn.q_proj"], dense[5]["self_attn.q_proj"], rtol=1e-3)


def test_pruned_rows_have_the_planned_sparsity_within_one_weight(model):
    block = get_decoder_layers(model)[3]
    norms = dense_input_norms(model, TOKENS)[3]
    measured = prune_block(block, {name: 0.6 for name in block_linears(block)}, "wanda", norms)
    for name, linear in block_linears(block).items():
        per_row = (linear.weight == 0).sum(dim=1)
        assert (per_row == int(0.6 * linear.in_features)).all(), name  # the same count in every row
        assert abs(measured[name] - 0.6) <= 1 / linear.in_features
    block = get_decoder_layers(model)[4]
    measured = prune_block(block, 0.0, "magnitude", nm=(2, 4))
    for name, linear in block_linears(block).items():  # at most 2 of every 4 inputs survive
        groups = (linear.weight != 0).reshape(linear.out_features, -1, 4).sum(dim=2)
        assert groups.max() <= 2 and measured[name] >= 0.5, name


def test_owl_and_mrp_on_the_real_blocks(model):
    from lorp.sparse import plan as sp
    from lorp.sparse.redundancy import ModelScores

    norms = dense_input_norms(model, TOKENS)
    blocks = ModelScores(get_decoder_layers(model), "wanda", norms)
    outliers = sp.dense_outliers(({n: r.sorted for n, r in blocks[b].layers.items()} for b in range(len(blocks))),
                                 m=5, count_zeros=True)
    owl = sp.owl_plan("wanda", 0.5, outliers, lam=0.08)
    ratios = [b["outlier_ratio"] for b in outliers]
    assert np.mean(owl.blocks) == pytest.approx(0.5) and np.argmin(owl.blocks) == np.argmax(ratios)
    result = sp.mrp_plan("wanda", 0.5, blocks, m=5, count_zeros=True, settings=sp.MRPSettings(0.05, 0.01, 0.95))
    assert result.model_sparsity == pytest.approx(0.5, abs=1e-9)
    first = result.trajectory[0]["block"]
    at_s0 = [blocks[b].outlier_ratio(0.45, 5, True) for b in range(len(blocks))]
    assert at_s0[first] == min(at_s0)  # the most redundant block at s0 (fewest outliers) goes first
    assert min(result.blocks) >= 0.45 - 1e-9
    for s in result.blocks:  # 30 blocks of one size: each a whole number of 1-point steps, to the float
        assert s == round(s * 100) / 100, s
