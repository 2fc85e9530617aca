"""The bootstrap over calibration sequences against hand-built per-sequence sums."""

import numpy as np
import pytest

from lorp.depth import methods
from lorp.depth.sensitivity import bootstrap, jaccard, percentile_interval, pruned_sets, view_label, view_rows
from lorp.depth.similarity import similarity_from_arrays
from lorp.depth.structure import analyse_structure

STRUCTURE = {"k": None, "rls_thresholds": [1.0, 0.7], "random_state": 0}
PLANS = {"lorp": {}, "shortgpt": {"protect_first": True}, "streamline": {}, "angular": {"last_token_only": True}}


def blocky_layers(rng, n_seq, per, noise):
    """Three groups of similar layers (a clear structure), every sequence alike up to ``noise``."""
    base = [rng.normal(size=(1, 16)) for _ in range(3)]
    layers = []
    for g in (0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2):
        layers.append(np.repeat(base[g], n_seq * per, axis=0) + noise * rng.normal(size=(n_seq * per, 16)))
    return layers


def full_plans(result):
    n = result.extended.shape[0] - 1
    structure = analyse_structure(result.extended[:n, :n], k=None, thresholds=[1.0, 0.7], random_state=0)
    inputs = methods.PlanInputs(result.extended, result.last_token, structure)
    return structure, {(m, b): methods.make_plan(m, b, inputs, p).pruned for m, p in PLANS.items() for b in (2, 4)}


def test_identical_sequences_give_the_same_structure_and_plans_every_draw():
    rng = np.random.default_rng(0)
    one = blocky_layers(rng, 1, 8, noise=0.3)
    layers = [np.tile(a, (5, 1)) for a in one]  # five identical sequences of 8 tokens
    last = np.arange(7, 40, 8)
    result = similarity_from_arrays(layers, "cosine", last_token_rows=last, tokens_per_sequence=8)
    structure, plans = full_plans(result)
    boot = bootstrap(result.per_sequence, result.per_sequence_last, 8, PLANS, [2, 4], STRUCTURE, 12, seed=1,
                     reference=plans)
    assert np.allclose(boot.rls, structure.rls) and set(boot.k) == {structure.k}
    for key, pruned in plans.items():
        expected = np.isin(np.arange(12), pruned).astype(float)
        np.testing.assert_array_equal(boot.frequency[key], expected)
        assert np.all(boot.jaccard[key] == 1.0)
    assert percentile_interval(boot.rls, 0.9) == pytest.approx((structure.rls, structure.rls))


def test_frequencies_are_shares_that_add_up_to_the_budget_and_draws_are_seeded():
    rng = np.random.default_rng(1)
    layers = blocky_layers(rng, 6, 4, noise=1.5)
    result = similarity_from_arrays(layers, "cosine", last_token_rows=np.arange(3, 24, 4), tokens_per_sequence=4)
    _, plans = full_plans(result)
    a = bootstrap(result.per_sequence, result.per_sequence_last, 4, PLANS, [2, 4], STRUCTURE, 10, seed=3,
                  reference=plans)
    b = bootstrap(result.per_sequence, result.per_sequence_last, 4, PLANS, [2, 4], STRUCTURE, 10, seed=3)
    for (method, budget), freq in a.frequency.items():
        assert freq.sum() == pytest.approx(budget) and freq.min() >= 0 and freq.max() <= 1
        np.testing.assert_array_equal(freq, b.frequency[(method, budget)])
    np.testing.assert_array_equal(a.rls, b.rls)
    assert b.jaccard == {}
    with pytest.raises(ValueError, match="at least 2 sequences"):
        bootstrap(result.per_sequence[:1], result.per_sequence_last[:1], 4, PLANS, [2], STRUCTURE, 5)


def test_percentile_interval():
    assert percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    with pytest.raises(ValueError, match="confidence"):
        percentile_interval(np.arange(3.0), 1.0)


def test_a_views_rows_compare_its_plans_with_the_reference_and_come_from_its_plans_without_a_bootstrap():
    rng = np.random.default_rng(1)
    layers = blocky_layers(rng, 6, 4, noise=1.5)
    result = similarity_from_arrays(layers, "cosine", last_token_rows=np.arange(3, 24, 4), tokens_per_sequence=4)
    structure, own = full_plans(result)
    assert pruned_sets([{"method": m, "budget": str(b), "pruned": p} for (m, b), p in own.items()]) == own
    reference = {**own, ("lorp", 2): [0, 11]}
    view = {"variation": "seed1", "view": "docs~seed1", "n_samples": 6, "seqlen": 4, "source": "python-docs",
            "seed": 1, "tokens_per_sequence": None, "statistic": "cosine"}
    label = view_label("m", view, {"n_tokens": 24})
    assert (label["calib"], label["n_tokens"], label["tokens_per_sequence"]) == ("docs~seed1", 24, "all")
    rls = {"rls": structure.rls, "k": structure.k, "labels": structure.labels}
    sums = {"extended": result.per_sequence, "last_token": result.per_sequence_last, "tokens_per_sequence": np.int64(4)}
    boot = {"resamples": 0, "seed": 3, "confidence": 0.9}
    rows = view_rows(label, rls, own, reference, sums, PLANS, [2, 4], STRUCTURE, boot)
    assert [(r["method"], r["budget"]) for r in rows.stability] == list(own)
    changed = [r["jaccard_to_reference"] for r in rows.stability if (r["method"], r["budget"]) == ("lorp", 2)]
    assert changed == [jaccard(own[("lorp", 2)], [0, 11])] and changed[0] < 1
    assert rows.rls["jaccard_lorp"] == pytest.approx((changed[0] + 1) / 2) and rows.rls["jaccard_shortgpt"] == 1
    assert rows.rls["resamples"] == 0 and np.isnan(rows.rls["rls_low"]) and rows.rls["k_values"] == str(structure.k)
    assert len(rows.selection) == len(own) * 12 and {r["from"] for r in rows.selection} == {"plan"}
    assert sum(r["frequency"] for r in rows.selection if (r["method"], r["budget"]) == ("streamline", 4)) == 4

    boot = {**boot, "resamples": 6}
    rows = view_rows(label, rls, own, reference, sums, PLANS, [2, 4], STRUCTURE, boot)
    again = bootstrap(result.per_sequence, result.per_sequence_last, 4, PLANS, [2, 4], STRUCTURE, 6, 3, reference=own)
    assert rows.rls["resamples"] == 6 and rows.rls["rls_low"] <= rows.rls["rls_high"]
    assert rows.rls["bootstrap_jaccard_angular"] == pytest.approx(
        np.mean([again.jaccard[("angular", b)].mean() for b in (2, 4)]))
    freq = [r["frequency"] for r in rows.selection if (r["method"], r["budget"]) == ("lorp", 4)]
    assert freq == list(again.frequency[("lorp", 4)]) and {r["from"] for r in rows.selection} == {"bootstrap"}
    empty = {**sums, "extended": np.zeros((0, 13, 13))}  # no per-sequence sums kept: the plans, as without resamples
    assert {r["from"] for r in view_rows(label, rls, own, reference, empty, PLANS, [2, 4], STRUCTURE, boot).selection} \
        == {"plan"}


# ---------------------------------------------------- auto: the validation-guided choice
from lorp.depth.auto import Candidate, choose, distinct_sets  # noqa: E402


def test_auto_keeps_the_lowest_held_out_score_and_scores_each_set_once():
    candidates = [Candidate("lorp", "cosine", (3, 7)), Candidate("shortgpt", "cosine", (5, 6)),
                  Candidate("lorp", "cka", (5, 6)), Candidate("streamline", "cosine", (1, 2))]
    calls = []
    scores = {(3, 7): 40.0, (5, 6): 25.0, (1, 2): 25.0}
    plan = choose(candidates, lambda s: calls.append(s) or scores[s], 2, 10, {"windows": 4})
    assert calls == distinct_sets(candidates) == [(3, 7), (5, 6), (1, 2)]
    assert plan.method == "auto" and plan.pruned == [5, 6]  # the tie goes to the first listed
    assert plan.details["chosen"] == {"method": "shortgpt", "statistic": "cosine", "held_out_ppl": 25.0}
    listed = plan.details["candidates"]
    assert [c["held_out_ppl"] for c in listed] == [40.0, 25.0, 25.0, 25.0]
    assert [c["chosen"] for c in listed] == [False, True, False, False]
    assert plan.details["chosen"]["held_out_ppl"] <= min(c["held_out_ppl"] for c in listed)
    with pytest.raises(ValueError, match="must prune 3 blocks"):
        choose(candidates, lambda s: 1.0, 3, 10, {})
    with pytest.raises(ValueError, match="at least one candidate"):
        choose([], lambda s: 1.0, 2, 10, {})
