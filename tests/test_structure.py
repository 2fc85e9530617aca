"""Known answers for RLS, the choice of K and the spectral clustering of layers."""

import math

import numpy as np
import pytest

from lorp.depth.structure import (
    LayerStructure,
    analyse_structure,
    k_from_rls,
    off_diagonal_mean,
    renumber_by_depth,
    representation_locality_score,
)


def block_matrix(sizes, within, between):
    n = sum(sizes)
    s = np.full((n, n), between)
    start = 0
    for size in sizes:
        s[start:start + size, start:start + size] = within
        start += size
    np.fill_diagonal(s, 1.0)
    return s


def test_rls_of_block_diagonal_matrix():
    s = block_matrix([3, 3], within=0.9, between=0.1)
    # 6 within-block pairs at 0.9 and 9 cross pairs at 0.1 above the diagonal
    assert off_diagonal_mean(s) == pytest.approx((6 * 0.9 + 9 * 0.1) / 15)
    assert representation_locality_score(s) == pytest.approx(-math.log2(0.42))


@pytest.mark.parametrize("rls,k", [(1.5, 2), (1.0, 2), (0.99, 3), (0.7, 3), (0.69, 4), (0.0, 4)])
def test_k_from_rls_paper_thresholds(rls, k):
    assert k_from_rls(rls) == k


def test_k_from_rls_custom_thresholds_and_order():
    assert k_from_rls(0.5, [2.0, 1.0, 0.6]) == 5
    with pytest.raises(ValueError, match="descending"):
        k_from_rls(0.5, [0.7, 1.0])


def test_renumber_by_depth():
    assert renumber_by_depth([2, 2, 0, 1, 0]).tolist() == [0, 0, 1, 2, 1]


def test_block_diagonal_gives_the_blocks_and_k_from_rls():
    s = block_matrix([4, 3, 5], within=0.95, between=0.45)  # mean .594, RLS .75
    result = analyse_structure(s)
    assert result.rls == pytest.approx(-math.log2(off_diagonal_mean(s)))
    assert result.k == k_from_rls(result.rls) == 3
    assert result.k_source == "rls"
    assert result.labels == [0] * 4 + [1] * 3 + [2] * 5
    assert result.members == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11]]


def test_fixed_k_and_round_trip():
    s = block_matrix([2, 2, 2, 2], within=0.9, between=0.3)
    result = analyse_structure(s, k=4, random_state=3)
    assert result.k_source == "config"
    assert result.labels == [0, 0, 1, 1, 2, 2, 3, 3]
    assert LayerStructure.from_dict(result.to_dict()) == result


@pytest.mark.parametrize("bad,match", [
    (np.ones((3, 2)), "square"),
    (np.array([[1.0, 0.5], [0.2, 1.0]]), "symmetric"),
    (np.array([[1.0, 1.5], [1.5, 1.0]]), r"\[-1, 1\]"),
    (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
])
def test_invalid_matrices_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        analyse_structure(bad)


def test_k_out_of_range():
    with pytest.raises(ValueError, match="K must be in"):
        analyse_structure(block_matrix([2, 2], 0.9, 0.1), k=5)


def test_negative_mean_similarity_is_a_clear_error():
    s = np.array([[1.0, -0.5], [-0.5, 1.0]])
    with pytest.raises(ValueError, match="RLS"):
        representation_locality_score(s)
