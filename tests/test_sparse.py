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
    # SparseGPT's allocations read Wanda's scores (its own criterion is per column block, sparsegpt.py)
    assert torch.equal(scores(w, "sparsegpt", torch.tensor([2.0, 1.0])), scores(w, "wanda", torch.tensor([2.0, 1.0])))
    with pytest.raises(ValueError, match="unknown metric 'obs'; choose one of wanda, magnitude, sparsegpt"):
        scores(w, "obs")


def test_row_mask_prunes_within_each_row():
    s = torch.tensor([[4.0, 1.0, 3.0, 2.0], [1.0, 1.0, 9.0, 8.0]])
    keep = row_mask(s, 0.5)
    assert keep.tolist() == [[True, False, True, False], [False, False, True, True]]
    assert (keep.sum(dim=1) == 2).all()  # the comparison group is the row, not the whole matrix
    assert row_mask(s, 0.25).tolist() == [[True, False, True, True], [False, True, True, True]]  # ties: lower index


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.7, 0.99, 1.0])
def test_row_mask_is_the_mask_of_a_stable_sort_of_each_row(sparsity):
    """The selection (kthvalue) finds exactly the mask of a stable argsort, ties included."""
    generator = torch.Generator().manual_seed(0)
    for s in (torch.randn(64, 96, generator=generator),
              torch.randint(0, 4, (64, 96), generator=generator).float(),  # many ties at every threshold
              torch.zeros(3, 96)):
        k = int(sparsity * s.shape[1])
        expected = torch.ones_like(s, dtype=torch.bool)
        expected.scatter_(1, torch.argsort(s, dim=1, stable=True)[:, :k], False)
        assert torch.equal(row_mask(s, sparsity), expected)


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
    """Ratios 0.2, 0.6, 0.4 at the start (0.3). Blocks of 100, 300, 50: block 1 takes three steps, the
    third reaching 0.5 on the dot (30 + 180 + 15 of 450 weights). Blocks of 100, 200, 50: block 1, 1, 1,
    then block 2 (ties go to the shallower block), then block 1 again, whose step to 0.7 would overshoot (30 +
    140 + 20 = 190 pruned weights, the target 175 of 350) and is cut to what the target needs:
    30 + 200 s + 20 = 175, s = 0.625."""
    ratio = lambda b, s: [0.5, 0.9, 0.7][b] - s  # noqa: E731
    result = allocations.mrp([100, 300, 50], ratio, target=0.5, s0=0.3, step=0.1)
    assert result.sparsities == pytest.approx([0.3, 0.6, 0.3])
    assert allocations.weighted_mean(result.sparsities, [100, 300, 50]) == pytest.approx(0.5, abs=1e-12)
    cut = allocations.mrp([100, 200, 50], ratio, target=0.5, s0=0.3, step=0.1)
    assert [t["block"] for t in cut.trajectory] == [1, 1, 1, 2, 1]
    assert cut.sparsities == pytest.approx([0.3, 0.625, 0.4])
    assert allocations.weighted_mean(cut.sparsities, [100, 200, 50]) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("target, expected", [(0.5, [0.45, 0.65, 0.35, 0.55]), (0.7, [0.65, 0.85, 0.55, 0.75])])
def test_mrp_keeps_every_sparsity_on_its_grid_of_whole_steps(target, expected):
    """The default config's MRP (start 20 points below the target, 1-point steps) on four blocks of one size
    whose non-outlier ratio (in points) drops by one per step from 40, 60, 30, 50: the loop levels them at 25,
    so the blocks take 15, 35, 5 and 25 steps. Added up step by step, 0.3 + 35 x 0.01 is 0.6500000000000002;
    and 0.7 - 0.2 is 0.49999999999999994, which prunes 287 of a 576-input row's weights, not 288."""
    from lorp.sparse.masks import pruned_per_row
    from lorp.sparse.plan import MRPSettings

    base = [40, 60, 30, 50]
    s0 = MRPSettings(0.2, 0.01, 0.95).s0(target)
    assert s0 == round(target - 0.2, 2)

    def ratio(block, sparsity):
        return (base[block] - round((sparsity - s0) * 100)) / 100

    result = allocations.mrp([576 * 1536] * 4, ratio, target=target, s0=target - 0.2, step=0.01)
    assert result.sparsities == expected  # to the float: the decimals themselves
    assert [t["sparsity"] for t in result.trajectory[-4:]] == expected  # the last four steps level the blocks
    assert allocations.weighted_mean(result.sparsities, [1] * 4) == pytest.approx(target, abs=1e-12)
    for s in result.sparsities + [t["sparsity"] for t in result.trajectory]:
        points = round(s * 100)
        assert s == points / 100 and pruned_per_row(576, s) == 576 * points // 100, s


def test_an_mrp_plan_of_real_blocks_stays_on_its_grid():
    from lorp.sparse import plan as sp
    from lorp.sparse.redundancy import BlockScores

    gen = torch.Generator().manual_seed(2)
    blocks = [BlockScores({"a": torch.exp(sigma * torch.randn(8, 16, generator=gen)),
                           "b": torch.exp(sigma * torch.randn(8, 16, generator=gen))})
              for sigma in (1.2, 0.8, 1.0, 0.6, 0.9, 1.1)]  # blocks of one size: no increment is cut
    plan = sp.mrp_plan("wanda", 0.7, blocks, m=5, count_zeros=True, settings=sp.MRPSettings(0.2, 0.01, 0.95))
    assert len(plan.trajectory) > 20
    for s in plan.blocks + [s for layers in plan.linears for s in layers.values()]:
        assert s == round(s * 100) / 100, s
    assert plan.settings["s0"] == 0.5


@pytest.mark.parametrize("n_inputs", [576, 1536, 4096, 11008, 14336])
def test_the_weights_pruned_per_row_lose_none_to_float_error(n_inputs):
    from lorp.sparse.masks import pruned_per_row

    for points in range(101):  # every whole percent: floor(n x points / 100), counted in integers
        assert pruned_per_row(n_inputs, points / 100) == n_inputs * points // 100, points
    assert pruned_per_row(n_inputs, 0.5 - 9.27e-15) == n_inputs // 2  # a sparsity that drifted off 0.5 by float error


def test_the_weights_pruned_per_row_are_rounded_down_as_wanda_does():
    from lorp.sparse.masks import pruned_per_row

    assert pruned_per_row(576, 0.49999999999999073) == 288  # int(576 * s) is 287
    assert pruned_per_row(100, 0.29) == 29  # 0.29 * 100 is 28.999999999999996
    assert pruned_per_row(576, 0.37) == 213 and pruned_per_row(96, 0.7) == 67  # 213.12 and 67.2: down
    assert pruned_per_row(576, 0.4999) == 287  # a real fraction short of a weight is not rounded up
    assert row_mask(torch.arange(100.0).repeat(2, 1), 0.29).sum(dim=1).tolist() == [71, 71]


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


# ------------------------------------------------------------------------------------- plans
def _blocks():
    """Two blocks of two layers: block 0 has a few huge scores (outliers), block 1 is flat (redundant)."""
    from lorp.sparse.redundancy import BlockScores

    gen = torch.Generator().manual_seed(1)
    spiky = torch.rand(8, 16, generator=gen)
    spiky[:, 0] = 50.0
    flat = 1 + 0.1 * torch.rand(8, 16, generator=gen)
    return [BlockScores({"a": spiky, "b": spiky.clone()}), BlockScores({"a": flat, "b": flat[:4].clone()})]


def test_method_names_round_trip_and_leave_depth_methods_alone():
    from lorp.sparse.names import method_name, parse_method

    assert method_name("wanda", "mrp") == "wanda-mrp" and parse_method("wanda-mrp") == ("wanda", "mrp")
    assert parse_method("magnitude-uniform") == ("magnitude", "uniform")
    assert parse_method("wanda-2of4") == ("wanda", "2of4")
    for depth in ("lorp", "shortgpt", "lorp-k4", "wanda", "wanda-greedy", "wanda-2of"):
        assert parse_method(depth) is None


def test_plans_meet_the_target_and_record_what_they_chose():
    from lorp.sparse import plan as sp

    blocks = _blocks()
    shapes = [{name: [r.rows, r.cols] for name, r in b.layers.items()} for b in blocks]
    uniform = sp.uniform_plan("wanda", 0.5, shapes)
    assert uniform.blocks == [0.5, 0.5] and uniform.linears == [{"a": 0.5, "b": 0.5}] * 2
    assert uniform.n_params == [256, 192] and uniform.model_sparsity == pytest.approx(0.5)

    outliers = sp.dense_outliers(({n: r.sorted for n, r in b.layers.items()} for b in blocks), m=5, count_zeros=True)
    assert outliers[0]["outlier_ratio"] == pytest.approx(1 / 16) and outliers[1]["outlier_ratio"] == 0
    owl = sp.owl_plan("wanda", 0.5, outliers, lam=0.05)
    assert owl.blocks == pytest.approx([0.45, 0.55])  # the block with outliers keeps more weights

    mrp = sp.mrp_plan("wanda", 0.5, blocks, m=5, count_zeros=True, settings=sp.MRPSettings(0.2, 0.05, 0.95))
    assert mrp.trajectory[0]["block"] == 1  # the flat block is the most redundant: raised first
    assert mrp.model_sparsity == pytest.approx(0.5, abs=1e-12) and min(mrp.blocks) >= 0.3
    assert mrp.settings["s0"] == pytest.approx(0.3) and mrp.settings["granularity"] == "block"
    restored = sp.SparsePlan.from_dict(mrp.to_dict())
    assert restored.to_dict() == mrp.to_dict() and mrp.to_dict()["method"] == "wanda-mrp"
    assert mrp.to_dict()["budget"] == 50

    per_layer = sp.mrp_plan("wanda", 0.5, blocks, m=5, count_zeros=True,
                            settings=sp.MRPSettings(0.2, 0.05, 0.95, granularity="linear"))
    assert per_layer.model_sparsity == pytest.approx(0.5, abs=1e-12)
    assert all("linear" in step for step in per_layer.trajectory)
    for b, block in enumerate(blocks):  # a block's sparsity is its layers' parameter-weighted mean
        n = {name: r.rows * r.cols for name, r in block.layers.items()}
        assert per_layer.blocks[b] == pytest.approx(sum(per_layer.linears[b][k] * n[k] for k in n) / sum(n.values()))


def test_counting_pruned_weights_makes_mrp_even_the_blocks_out():
    """Log-normal scores, block 1 the flattest (the most redundant). With pruned weights left out, pruning
    a block raises its non-outlier ratio (its smallest scores leave the mean), so the loop keeps raising
    block 1 and the spread grows; counted as zeros, pruning lowers it and the loop evens the blocks out."""
    from lorp.sparse import plan as sp
    from lorp.sparse.redundancy import BlockScores

    gen = torch.Generator().manual_seed(1)
    blocks = [BlockScores({"a": torch.exp(sigma * torch.randn(64, 64, generator=gen))}) for sigma in (1.2, 0.8, 1.0)]
    uniform = sp.uniform_plan("wanda", 0.5, [{"a": [64, 64]}] * 3)
    settings = sp.MRPSettings(0.2, 0.05, 0.95)
    runaway = sp.mrp_plan("wanda", 0.5, blocks, m=3, count_zeros=False, settings=settings)
    assert [t["block"] for t in runaway.trajectory] == [1] * 12 and runaway.blocks == pytest.approx([0.3, 0.9, 0.3])
    evened = sp.mrp_plan("wanda", 0.5, blocks, m=3, count_zeros=True, settings=settings)
    assert evened.trajectory[0]["block"] == 1 and evened.blocks == pytest.approx([0.4, 0.6, 0.5])
    spread = [r["non_outlier_std"] for r in sp.redundancy_after([uniform, evened], blocks, 3, True)]
    assert spread[1] < spread[0]
    spread = [r["non_outlier_std"] for r in sp.redundancy_after([uniform, runaway], blocks, 3, False)]
    assert spread[1] > spread[0]


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("sequential", [False, True])
def test_a_model_pruned_to_a_plan_has_the_planned_zeros_in_every_row(sequential):
    from lorp.sparse import plan as sp
    from lorp.sparse.norms import block_shapes, dense_input_norms
    from lorp.sparse.prune import measure_pruned, prune_to_plan

    model = _tiny_llama()
    tokens = np.random.default_rng(0).integers(0, 64, size=(4, 16))
    plan = sp.owl_plan("wanda", 0.6, [{"outlier_ratio": r, "n_params": 1, "linears": shapes}
                                      for r, shapes in zip([0.1, 0.3, 0.2], block_shapes(model))], lam=0.05)
    norms = None if sequential else dense_input_norms(model, tokens)
    used = prune_to_plan(model, plan, norms=norms, tokens=tokens if sequential else None, batch_size=3)
    assert len(used) == 3 and set(used[0]) == set(plan.linears[0])
    measured = measure_pruned(model, plan)
    for block in measured["blocks"]:
        for name, layer in block["linears"].items():
            assert layer["row_shortfall"] == 0, name
            assert abs(layer["measured"] - layer["planned"]) <= 1 / layer["in_features"], name
    assert measured["model_sparsity"] == pytest.approx(plan.model_sparsity, abs=1 / 32)
    with pytest.raises(ValueError, match="needs the dense input norms or the calibration tokens"):
        prune_to_plan(_tiny_llama(), plan)


def test_a_two_four_plan_keeps_two_of_every_four_inputs():
    from lorp.sparse import plan as sp
    from lorp.sparse.norms import block_linears, block_shapes
    from lorp.sparse.prune import measure_pruned, prune_to_plan

    model = _tiny_llama()
    plan = sp.nm_plan("magnitude", 2, 4, block_shapes(model))
    assert plan.method == "magnitude-2of4" and plan.percent == 50 and plan.settings == {"nm": [2, 4]}
    prune_to_plan(model, plan)
    for block in model.model.layers:
        for name, linear in block_linears(block).items():
            assert ((linear.weight != 0).reshape(linear.out_features, -1, 4).sum(dim=2) == 2).all(), name
    assert all(layer["row_shortfall"] == 0 for b in measure_pruned(model, plan)["blocks"] for layer in b["linears"].values())
    with pytest.raises(ValueError, match="inputs divisible by 3"):
        sp.nm_plan("wanda", 1, 3, [{"a": [4, 8]}])


def test_blocks_scored_on_access_give_the_plans_of_blocks_held_in_memory():
    """ModelScores scores and sorts a block when it is accessed (one block in memory at a time); MRP,
    its sweep's shared measurements and the redundancy after pruning agree with scores held in memory."""
    from lorp.sparse import plan as sp
    from lorp.sparse.redundancy import BlockScores, ModelScores

    model = _tiny_llama()
    lazy = ModelScores(model.model.layers, "magnitude")
    held = [BlockScores.of_block(block, "magnitude", None) for block in model.model.layers]
    settings = sp.MRPSettings(0.2, 0.05, 0.9, granularity="linear")  # layers of unequal size: the last step is cut
    a = sp.mrp_plan("magnitude", 0.6, lazy, 3, True, settings)
    b = sp.mrp_plan("magnitude", 0.6, held, 3, True, settings)
    assert a.to_dict() == b.to_dict() and a.model_sparsity == pytest.approx(0.6, abs=1e-12)
    units = sp.measure_units(lazy, "linear", {3: sp.mrp_grid(0.6, settings) + [0.0]}, True)
    assert sp.mrp_plan("magnitude", 0.6, lazy, 3, True, settings, units=units).to_dict() == a.to_dict()
    assert sp.redundancy_after([a], lazy, 3, True) == sp.redundancy_after([a], held, 3, True)


def test_the_mrp_sweep_runs_every_target_m_and_step_from_one_pass_over_the_blocks():
    """Every target, M and step (the configured ones where a list is empty), from one pass over blocks scored
    on access; each run is the plan MRP makes alone."""
    from lorp.sparse import plan as sp
    from lorp.sparse.redundancy import ModelScores
    from lorp.sparse.sweep import mrp_sweep

    lazy = ModelScores(_tiny_llama().model.layers, "magnitude")
    params = {"outlier_m": 3, "count_zeros": True,
              "mrp": {"start_below": 20, "step": 5, "upper": 90, "granularity": "linear"}}
    calls = []
    rows = mrp_sweep("magnitude", lazy, [60, 50], params, {"outlier_m": [3, 5], "step": []}, progress=calls.append)
    assert len(calls) == len(lazy)
    assert [(r["target"], r["outlier_m"], r["step"]) for r in rows] == [(50, 3, 5), (50, 5, 5), (60, 3, 5), (60, 5, 5)]
    for r in rows:  # each row is the plan MRP makes alone with that target, M and step
        alone = sp.mrp_plan("magnitude", r["target"] / 100, lazy, r["outlier_m"], True,
                            sp.MRPSettings(0.2, r["step"] / 100, 0.9, granularity="linear"))
        assert r["sparsities"] == alone.blocks and r["iterations"] == len(alone.trajectory), r
        assert r["non_outlier_std"] == pytest.approx(
            sp.redundancy_after([alone], lazy, r["outlier_m"], True)[0]["non_outlier_std"]), r
    assert rows[2]["sparsities"] != rows[3]["sparsities"]  # M moves the plan here, so a row that ignored it fails
