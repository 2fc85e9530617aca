"""Each selection method on hand-built similarity matrices with known answers."""

import math

import numpy as np
import pytest

from lorp.depth.methods import (
    METHODS,
    Method,
    Plan,
    PlanInputs,
    angular_plan,
    cluster_redundancy,
    last_plan,
    lorp_plan,
    eligible_count,
    make_plan,
    register,
    shortgpt_plan,
    streamline_plan,
)
from lorp.depth.structure import LayerStructure


def symmetric(n, entries, fill=0.1):
    s = np.full((n, n), fill)
    for (i, j), v in entries.items():
        s[i, j] = s[j, i] = v
    np.fill_diagonal(s, 1.0)
    return s


def structure_of(members, n):
    labels = [0] * n
    for c, m in enumerate(members):
        for layer in m:
            labels[layer] = c
    return LayerStructure(n_layers=n, mean_similarity=0.5, rls=1.0, k=len(members), k_source="config",
                          labels=labels, thresholds=[1.0, 0.7], random_state=0, members=members)


# Two clusters of an 8-layer model; blocks 0 and 7 are protected.
# Cluster A = 0..3: redundancy r1 = .7333, r2 = .7833, r3 = .6833 -> order 2, 1, 3
# Cluster B = 4..7: r4 = .7467, r5 = .7867, r6 = .7833         -> order 5, 6, 4
S8 = symmetric(8, {
    (0, 1): 0.5, (0, 2): 0.6, (0, 3): 0.4, (1, 2): 0.9, (1, 3): 0.8, (2, 3): 0.85,
    (4, 5): 0.95, (4, 6): 0.69, (4, 7): 0.6, (5, 6): 0.76, (5, 7): 0.65, (6, 7): 0.9,
})
ST8 = structure_of([[0, 1, 2, 3], [4, 5, 6, 7]], 8)


def test_redundancy_is_mean_similarity_to_other_members():
    r = cluster_redundancy(S8, [0, 1, 2, 3])
    assert r[1] == pytest.approx((0.5 + 0.9 + 0.8) / 3)
    assert r[2] == pytest.approx((0.6 + 0.9 + 0.85) / 3)
    assert math.isnan(cluster_redundancy(S8, [5])[5])


@pytest.mark.parametrize("budget,pruned", [
    (1, [2]),                 # stage 1, first cluster only
    (2, [2, 5]),              # stage 1, one per cluster
    (3, [2, 5, 6]),           # stage 2: B's remaining {4,6,7} (.73) beat A's {0,1,3} (.567)
    (4, [2, 4, 5, 6]),        # stage 2: B's {4,7} (.60) still beat A's {0,1,3}
    (5, [1, 2, 4, 5, 6]),     # B has no eligible layer left (7 is protected): A
    (6, [1, 2, 3, 4, 5, 6]),  # budget larger than one cluster: everything but the boundaries
])
def test_lorp_stage_one_and_two(budget, pruned):
    plan = lorp_plan(S8, ST8, budget)
    assert plan.pruned == pruned
    assert 0 not in plan.pruned and 7 not in plan.pruned
    assert plan.protected == [0, 7]


def test_lorp_records_stages_and_pick_order():
    plan = lorp_plan(S8, ST8, 4)
    assert plan.details["pick_order"] == [2, 5, 6, 4]
    assert plan.details["stage"] == {"2": 1, "4": 2, "5": 1, "6": 2}
    assert plan.scores[2] == pytest.approx((0.6 + 0.9 + 0.85) / 3)


def test_lorp_budget_beyond_eligible_layers():
    with pytest.raises(ValueError, match="between 1 and 6"):
        lorp_plan(S8, ST8, 7)


def test_lorp_stage_two_falls_back_to_first_open_cluster():
    # clusters [0], [1,2], [3,4], [5]: after stage 1 each middle cluster has one layer left, so both
    # cohesions are minus infinity and the first cluster with an eligible layer is taken.
    s = symmetric(6, {(1, 2): 0.8, (3, 4): 0.9})
    st = structure_of([[0], [1, 2], [3, 4], [5]], 6)
    plan = lorp_plan(s, st, 3)
    assert plan.details["pick_order"] == [1, 3, 2]
    assert plan.details["stage"] == {"1": 1, "2": 2, "3": 1}


def test_shortgpt_prunes_lowest_block_influence_and_protects_first():
    e = np.eye(6)
    for i, v in enumerate([0.99, 0.9, 0.95, 0.7, 0.8]):
        e[i, i + 1] = e[i + 1, i] = v  # BI = 0.01, 0.1, 0.05, 0.3, 0.2
    assert shortgpt_plan(e, 2).pruned == [1, 2]
    assert shortgpt_plan(e, 3).pruned == [1, 2, 4]
    assert shortgpt_plan(e, 2, protect_first=False).pruned == [0, 2]
    assert shortgpt_plan(e, 1).scores[0] == pytest.approx(0.01)


def test_streamline_best_window_keeps_last_block():
    e = symmetric(7, {(0, 2): 0.5, (1, 3): 0.95, (2, 4): 0.6, (3, 5): 0.7, (4, 6): 0.99})
    plan = streamline_plan(e, 2)  # the window [4, 6) would remove the last block 5
    assert plan.pruned == [1, 2]
    assert plan.details["window_start"] == 1


def test_angular_uses_last_token_matrix_and_may_reach_the_last_block():
    all_tokens = symmetric(7, {(1, 3): 0.99})
    last_token = symmetric(7, {(4, 6): 0.98, (1, 3): 0.2})
    inputs = PlanInputs(all_tokens, last_token)
    assert make_plan("angular", 2, inputs).pruned == [4, 5]
    assert make_plan("angular", 2, inputs, params={"last_token_only": False}).pruned == [1, 2]
    with pytest.raises(ValueError, match="angular' needs the last-token input"):
        make_plan("angular", 2, PlanInputs(all_tokens))
    plan = angular_plan(last_token, 2)
    assert plan.scores[4] == pytest.approx(np.arccos(0.98) / np.pi)


def test_last_drops_deepest_blocks_before_the_final_one():
    assert last_plan(10, 3).pruned == [6, 7, 8]
    assert last_plan(10, 3).kept == [0, 1, 2, 3, 4, 5, 9]


def test_plan_round_trip_and_consistency_checks():
    plan = lorp_plan(S8, ST8, 3)
    data = plan.to_dict()
    assert data["kept"] == [0, 1, 3, 4, 7] and data["n_kept"] == 5
    assert Plan.from_dict(data).to_dict() == data
    data["kept"] = [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="inconsistent"):
        Plan.from_dict(data)
    with pytest.raises(ValueError, match="protected"):
        Plan("x", 1, 4, [0], [0], [None] * 4, "s")


@pytest.mark.parametrize("method", ["shortgpt", "streamline", "angular", "last"])
def test_budget_out_of_range(method):
    e = np.eye(5)
    limit = eligible_count(method, 4)  # the 4 blocks of a 5 x 5 similarity (embeddings and 4 block outputs)
    for budget in (0, limit + 1):  # the range check's own error, not a plan's inconsistency further on
        with pytest.raises(ValueError, match=rf"budget {budget} is invalid .* between 1 and {limit}"):
            make_plan(method, budget, PlanInputs(e, e))
    assert make_plan(method, limit, PlanInputs(e, e)).budget == limit


def test_unknown_method_lists_the_declared_ones():
    with pytest.raises(ValueError, match="unknown method 'random'; choose one of lorp, shortgpt, streamline, angular, last, sleb, auto"):
        make_plan("random", 1, PlanInputs(np.eye(4)))


def test_registry_declares_budgets_parameters_and_inputs_once():
    assert list(METHODS) == ["lorp", "shortgpt", "streamline", "angular", "last", "sleb", "auto"]
    assert [eligible_count(m, 30) for m in METHODS] == [28, 29, 29, 30, 29, 28, 29]
    assert [m for m in METHODS if METHODS[m].runs_model] == ["sleb"]  # its plans: rule model_plan, on the GPU
    assert METHODS["auto"].inputs == () and METHODS["auto"].defaults() == {"held_out_samples": 4}
    with pytest.raises(ValueError, match="auto plans are not made from the similarity alone"):
        make_plan("auto", 2, PlanInputs(np.eye(5)))
    assert eligible_count("shortgpt", 30, {"protect_first": False}) == 30
    assert METHODS["shortgpt"].defaults() == {"protect_first": True}
    assert METHODS["lorp"].defaults() == {"k": None, "rls_thresholds": [1.0, 0.7], "random_state": 0}
    assert METHODS["lorp"].inputs == ("extended", "last_token", "structure") and not METHODS["lorp"].plan_parameters
    assert METHODS["angular"].schema()["properties"]["last_token_only"]["default"] is True
    with pytest.raises(ValueError, match="already registered"):
        register(METHODS["last"])
    with pytest.raises(ValueError, match="need a default"):
        Method("toy", plan=lambda i, b, p: None, max_budget=lambda n, p: n, parameters={"x": {"type": "integer"}})


def test_lorp_plan_needs_the_structure():
    with pytest.raises(ValueError, match="'lorp' needs the structure input \\(rls.json\\)"):
        make_plan("lorp", 2, PlanInputs(S8))
