"""Sparsity per layer on hand-built weights, norms and redundancy curves with known answers."""

import numpy as np
import pytest
import torch

from lorp.sparse import allocations
from lorp.sparse.masks import nm_mask, row_mask
from lorp.sparse.scores import outlier_ratio, scores


def test_wanda_and_magnitude_scores():
    w = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    assert torch.equal(scores(w, "wanda", torch.tensor([2.0, 1.0])), torch.tensor([[2.0, 2.0], [6.0, 0.5]]))
    assert torch.equal(scores(w, "magnitude"), w.abs())
    with pytest.raises(ValueError, match="needs the input norms"):
        scores(w, "wanda")
    with pytest.raises(ValueError, match="unknown metric 'sparsegpt'; choose one of wanda, magnitude"):
        scores(w, "sparsegpt")


def test_row_mask_prunes_within_each_row():
    s = torch.tensor([[4.0, 1.0, 3.0, 2.0], [1.0, 1.0, 9.0, 8.0]])
    keep = row_mask(s, 0.5)
    assert keep.tolist() == [[True, False, True, False], [False, False, True, True]]
    assert (keep.sum(dim=1) == 2).all()  # the comparison group is the row, not the whole matrix
    assert row_mask(s, 0.25).tolist() == [[True, False, True, True], [False, True, True, True]]  # ties: lower index


def test_two_four_mask_keeps_two_of_every_four_inputs():
    s = torch.tensor([[1.0, 5.0, 3.0, 4.0, 9.0, 8.0, 0.0, 1.0]])
    assert nm_mask(s).tolist() == [[False, True, False, True, True, True, False, False]]
    with pytest.raises(ValueError, match="divisible by m"):
        nm_mask(torch.ones(2, 6))


def test_outlier_ratio_with_and_without_pruned_weights():
    assert outlier_ratio([torch.tensor([1.0, 1.0, 1.0, 1.0, 10.0])], m=2) == pytest.approx(0.2)  # 10 > 2 x 2.8
    pruned = [torch.tensor([0.0, 0.0, 1.0]), torch.tensor([1.0, 10.0])]
    assert outlier_ratio(pruned, m=2) == pytest.approx(1 / 3)  # mean of the 3 survivors is 4
    assert outlier_ratio(pruned, m=2, count_zeros=True) == pytest.approx(0.2)  # mean 2.4
    with pytest.raises(ValueError, match="greater than 1"):
        outlier_ratio(pruned, m=1)
    assert outlier_ratio([torch.zeros(2, 3)], m=2) == 0.0  # nothing left: no outlier


def test_owl_follows_its_formula_and_averages_to_the_target():
    s = allocations.owl([0.1, 0.2, 0.3], target=0.5, lam=0.08)
    assert s == pytest.approx([0.58, 0.5, 0.42])  # the block with the most outliers keeps the most weights
    s = allocations.owl([0.05, 0.3, 0.12, 0.2], target=0.7, lam=0.08)
    assert np.mean(s) == pytest.approx(0.7) and max(s) - min(s) == pytest.approx(0.16)
    assert allocations.uniform(3, 0.6) == [0.6, 0.6, 0.6]


def test_mrp_raises_the_most_redundant_block_first_and_meets_the_target():
    base = [0.90, 0.95, 0.80]  # block 1 is the most redundant; each step lowers a block's ratio by 0.05

    def ratio(block, sparsity):
        return base[block] - (sparsity - 0.4)

    result = allocations.mrp([100, 100, 100], ratio, target=0.5, s0=0.4, step=0.05)
    assert [t["block"] for t in result.trajectory] == [1, 0, 1, 0, 1, 0]  # ties go to the shallower block
    assert result.sparsities == pytest.approx([0.55, 0.55, 0.40])
    assert result.trajectory[0] == pytest.approx({"iteration": 1, "block": 1, "sparsity": 0.45,
                                                  "non_outlier_ratio": 0.90, "model_sparsity": 0.45 / 3 + 0.8 / 3})
    assert result.initial_ratios == base and result.final_ratios == pytest.approx([0.75, 0.80, 0.80])


def test_mrp_meets_the_target_exactly_with_blocks_of_different_sizes():
    result = allocations.mrp([100, 300, 50], lambda b, s: [0.5, 0.9, 0.7][b] - s, target=0.5, s0=0.3, step=0.1)
    assert allocations.weighted_mean(result.sparsities, [100, 300, 50]) == pytest.approx(0.5, abs=1e-12)
    assert max(result.sparsities) <= 1


@pytest.mark.parametrize("kwargs,match", [
    ({"target": 1.2, "s0": 0.4, "step": 0.1}, r"target sparsity must be in \(0, 1\)"),
    ({"target": 0.5, "s0": 0.4, "step": 0.03}, "does not divide the range"),
    ({"target": 0.5, "s0": 0.6, "step": 0.1}, "s0 = 0.6 must be in"),
])
def test_mrp_settings_that_cannot_work_are_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        allocations.mrp([1, 1], lambda b, s: 0.5, **kwargs)


def test_block_outlier_ratio_at_a_sparsity_equals_the_ratio_of_the_pruned_scores():
    from lorp.sparse.redundancy import BlockScores

    gen = torch.Generator().manual_seed(0)
    raw = {"a": torch.rand(6, 10, generator=gen) ** 4, "b": torch.rand(4, 8, generator=gen) ** 4}
    raw["a"][0, 2:8] = 0  # weights that were zero already (quantised models have them): more than a 50% mask prunes
    block = BlockScores(raw)
    assert block.n_params == 92
    for sparsity in (0.0, 0.3, 0.5, 0.7):
        pruned = [s * row_mask(s, sparsity) for s in raw.values()]
        for count_zeros in (False, True):
            assert block.outlier_ratio(sparsity, 3, count_zeros) == pytest.approx(
                outlier_ratio(pruned, 3, count_zeros)), (sparsity, count_zeros)


def test_mrp_starting_at_the_target_is_uniform_and_owl_refuses_a_lambda_that_leaves_zero_one():
    result = allocations.mrp([10, 10], lambda b, s: 0.5, target=0.5, s0=0.5, step=0.01)
    assert result.sparsities == [0.5, 0.5] and result.trajectory == []
    with pytest.raises(ValueError, match="lambda must be in"):
        allocations.owl([1.0] + [0.0] * 9, target=0.5, lam=0.3)
    assert min(allocations.owl([1.0] + [0.0] * 9, target=0.5, lam=0.2)) >= 0
