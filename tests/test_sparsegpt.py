"""SparseGPT (lorp.sparse.sparsegpt) on hand-built weights and inputs with known answers."""

import pytest
import torch

from lorp.sparse.masks import pruned_per_row, row_mask
from lorp.sparse.sparsegpt import (HessianAccumulator, block_prune_counts, sparsegpt_prune,
                                   upper_cholesky_of_inverse)

F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _correlated(n_in: int, n_tokens: int, seed: int = 0) -> torch.Tensor:
    """Tokens as rows ([n_tokens, n_in]): independent features mixed by a random matrix, with unequal scales."""
    g = _gen(seed)
    z = torch.randn(n_tokens, n_in, generator=g, dtype=F64)
    mix = torch.randn(n_in, n_in, generator=g, dtype=F64) / n_in ** 0.5  # every feature a mixture of all
    scale = torch.rand(n_in, generator=g, dtype=F64) * 2 + 0.1
    return (z @ mix) * scale


def _low_rank(n_in: int, n_tokens: int, rank: int = 32, seed: int = 0) -> torch.Tensor:
    """Strongly correlated tokens ([n_tokens, n_in]): a few latent factors plus a little noise (as the
    activations of a language model, whose features move together)."""
    g = _gen(seed)
    latent = torch.randn(n_tokens, rank, generator=g, dtype=F64) @ torch.randn(rank, n_in, generator=g, dtype=F64)
    return latent + 0.3 * torch.randn(n_tokens, n_in, generator=g, dtype=F64)


def _hessian(x: torch.Tensor) -> torch.Tensor:
    return 2 * x.T @ x / x.shape[0]


def _lowest_abs(w: torch.Tensor, k: int, per_row: bool) -> torch.Tensor:
    """True where kept: the k lowest |w| of each row, or of the whole matrix."""
    keep = torch.ones_like(w, dtype=torch.bool)
    if per_row:
        keep.scatter_(1, torch.argsort(w.abs(), dim=1, stable=True)[:, :k], False)
    else:
        keep.view(-1)[torch.argsort(w.abs().reshape(-1), stable=True)[:k]] = False
    return keep


@pytest.mark.parametrize("per_row", [True, False])
def test_identity_hessian_prunes_lowest_magnitude_per_block_without_update(per_row):
    """H = c I: every input independent, so no weight is updated and the score is |w| (up to a constant)."""
    w = torch.randn(24, 320, generator=_gen(1), dtype=F64)  # blocks of 128, 128, 64
    new, keep = sparsegpt_prune(w, 3.0 * torch.eye(320, dtype=F64), 0.5, per_row=per_row, dtype=F64)
    assert torch.equal(new, w * keep)  # remaining weights unchanged
    for start in (0, 128, 256):
        blk = w[:, start:start + 128]
        k = blk.shape[1] // 2 if per_row else blk.numel() // 2
        assert torch.equal(keep[:, start:start + 128], _lowest_abs(blk, k, per_row))
    if not per_row:  # the blocks' rows differ: the comparison group is the block, not the row
        assert len(set((~keep[:, :128]).sum(dim=1).tolist())) > 1


def test_upper_cholesky_of_inverse_matches_the_reference_construction():
    x = _correlated(40, 200)
    h = _hessian(x) + 0.01 * torch.eye(40, dtype=F64)
    u = upper_cholesky_of_inverse(h)
    assert torch.equal(u, torch.triu(u)) and bool((torch.diagonal(u) > 0).all())
    torch.testing.assert_close(u.T @ u, torch.linalg.inv(h))
    reference = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    torch.testing.assert_close(u, reference)


@pytest.mark.parametrize("sparsity", [0.5, 0.7])
def test_output_error_below_wanda_on_correlated_inputs(sparsity):
    """Wanda only chooses a mask; SparseGPT's update moves the kept weights to make up for the pruned ones,
    which correlated inputs allow (on these, about 0.35 to 0.6 of Wanda's error). Its own mask without the
    update does worse than with it."""
    n_in, out = 256, 32
    for x in (_low_rank(n_in, 1024, seed=2), _correlated(n_in, 1024, seed=2)):
        w = torch.randn(out, n_in, generator=_gen(3), dtype=F64)
        wanda = w * row_mask(w.abs() * x.norm(dim=0), sparsity)
        error_wanda = torch.linalg.norm(x @ (w - wanda).T)
        for per_row in (True, False):
            new, keep = sparsegpt_prune(w, _hessian(x), sparsity, per_row=per_row, dtype=F64)
            error = torch.linalg.norm(x @ (w - new).T)
            assert error < 0.95 * error_wanda, (per_row, float(error), float(error_wanda))
            assert error < 0.95 * torch.linalg.norm(x @ (w - w * keep).T)  # the update, not only the mask
            if per_row:  # rounded down per row, as Wanda: 179 of 256 at 70%
                assert ((new == 0).sum(dim=1) == pruned_per_row(n_in, sparsity)).all()
            else:
                assert float((new == 0).double().mean()) >= sparsity
    x = _low_rank(n_in, 1024, seed=2)
    w = torch.randn(out, n_in, generator=_gen(3), dtype=F64)
    error_wanda = torch.linalg.norm(x @ (w - w * row_mask(w.abs() * x.norm(dim=0), sparsity)).T)
    new, _ = sparsegpt_prune(w, _hessian(x), sparsity, dtype=F64)
    assert torch.linalg.norm(x @ (w - new).T) < 0.7 * error_wanda  # strongly correlated: far below


def test_lazy_batch_update_equals_column_by_column():
    """With a 2:4 mask (chosen every four columns whatever the block), the block size only groups the
    updates of later columns into one product: blocks of 4, 12 and 256 give the same weights."""
    x = _low_rank(96, 300, seed=17)
    w = torch.randn(8, 96, generator=_gen(18), dtype=F64)
    results = [sparsegpt_prune(w, _hessian(x), None, nm=(2, 4), blocksize=b, dtype=F64) for b in (4, 12, 256)]
    for new, keep in results[1:]:
        assert torch.equal(keep, results[0][1])
        torch.testing.assert_close(new, results[0][0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sparsity", [0.29, 0.5, 0.6, 0.73])
def test_achieved_sparsity_per_row_and_per_block(sparsity):
    n_in = 300  # blocks of 128, 128, 44: s * width is not whole in every block
    x = _correlated(n_in, 400, seed=4)
    w = torch.randn(16, n_in, generator=_gen(5), dtype=F64)
    counts = block_prune_counts(n_in, sparsity, 128)
    assert sum(counts) == pruned_per_row(n_in, sparsity)
    new, keep = sparsegpt_prune(w, _hessian(x), sparsity, per_row=True, dtype=F64)
    assert ((~keep).sum(dim=1) == pruned_per_row(n_in, sparsity)).all()
    assert ((new == 0).sum(dim=1) == pruned_per_row(n_in, sparsity)).all()
    assert torch.equal(new == 0, ~keep)
    for (start, end), k in zip([(0, 128), (128, 256), (256, 300)], counts):
        assert ((~keep[:, start:end]).sum(dim=1) == k).all()
    new, keep = sparsegpt_prune(w, _hessian(x), sparsity, per_row=False, dtype=F64)
    assert float((new == 0).double().mean()) >= sparsity
    for start, end in [(0, 128), (128, 256), (256, 300)]:
        assert float((~keep[:, start:end]).double().mean()) >= sparsity


def test_two_of_four_masks_hold():
    x = _correlated(256, 400, seed=6)
    w = torch.randn(16, 256, generator=_gen(7), dtype=F64)
    new, keep = sparsegpt_prune(w, _hessian(x), None, nm=(2, 4), dtype=F64)
    assert ((new != 0).reshape(16, 64, 4).sum(dim=2) <= 2).all()
    assert (keep.reshape(16, 64, 4).sum(dim=2) == 2).all()
    new_half, _ = sparsegpt_prune(w, _hessian(x), 0.5, nm=(2, 4), dtype=F64)
    assert torch.equal(new, new_half)
    # with H proportional to the identity: the two largest |w| of every group of four
    ident, keep_ident = sparsegpt_prune(w, torch.eye(256, dtype=F64), None, nm=(2, 4), dtype=F64)
    from lorp.sparse.masks import nm_mask
    assert torch.equal(keep_ident, nm_mask(w.abs(), 2, 4))
    assert torch.equal(ident, w * keep_ident)


def test_two_of_four_group_is_chosen_from_the_updated_weights():
    """Inputs 4 and 5 copy inputs 0 and 1 (up to 1% noise). The first group prunes 0 and 1 (collinear with
    later inputs, so cheap to remove) and the update moves their weights onto 4 and 5 (0.9 + 1, 0.95 + 1.1),
    which the second group then keeps, pruning 6 and 7 (1.5, 1.6) instead of 4 and 5 as their original
    weights would have it."""
    g = _gen(19)
    x = torch.randn(4000, 8, generator=g, dtype=F64)
    x[:, 4] = x[:, 0] + 0.01 * torch.randn(4000, generator=g, dtype=F64)
    x[:, 5] = x[:, 1] + 0.01 * torch.randn(4000, generator=g, dtype=F64)
    w = torch.tensor([[1.0, 1.1, 5.0, 5.0, 0.9, 0.95, 1.5, 1.6]], dtype=F64)
    new, keep = sparsegpt_prune(w, _hessian(x), None, nm=(2, 4), blocksize=8, dtype=F64)
    assert keep.tolist() == [[False, False, True, True, True, True, False, False]]
    torch.testing.assert_close(new[0, 4:6], torch.tensor([1.9, 2.05], dtype=F64), rtol=0, atol=0.05)


def test_dead_inputs_are_pruned_first():
    x = _correlated(128, 300, seed=8)
    dead = [3, 40, 41, 100]
    x[:, dead] = 0
    w = torch.randn(8, 128, generator=_gen(9), dtype=F64) + 10  # every live weight is large
    h = _hessian(x)
    for kwargs in ({"sparsity": 0.25, "per_row": True}, {"sparsity": 0.25, "per_row": False},
                   {"sparsity": None, "nm": (2, 4)}):
        new, keep = sparsegpt_prune(w, h, **kwargs, dtype=F64)
        assert not keep[:, dead].any() and (new[:, dead] == 0).all(), kwargs
        assert torch.isfinite(new).all()
    # a row's dead inputs count among its pruned weights, so the total stays exact
    _, keep = sparsegpt_prune(w, h, 0.25, per_row=True, dtype=F64)
    assert ((~keep).sum(dim=1) == 32).all()
    # ... before weights that are already zero: here input 0 (live, weight 0) stays kept and the four dead
    # inputs are the row's four pruned weights
    w[:, 0] = 0
    _, keep = sparsegpt_prune(w, h, 4 / 128, per_row=True, dtype=F64)
    assert ((~keep).sum(dim=1) == 4).all() and keep[:, 0].all() and not keep[:, dead].any()


def test_inputs_are_not_modified_and_dtype_is_kept():
    x = _correlated(128, 200, seed=10).float()
    w = torch.randn(8, 128, generator=_gen(11)).to(torch.bfloat16)
    h = _hessian(x)
    w0, h0 = w.clone(), h.clone()
    new, keep = sparsegpt_prune(w, h, 0.5)
    assert torch.equal(w, w0) and torch.equal(h, h0)
    assert new.dtype == torch.bfloat16 and keep.dtype == torch.bool and new.shape == w.shape
    new64, keep64 = sparsegpt_prune(w, h, 0.5, dtype=F64)
    assert float((keep != keep64).double().mean()) < 0.02  # float32 and float64 choose nearly the same mask


def test_sparsity_zero_keeps_every_live_weight():
    x = _correlated(64, 200, seed=12)
    w = torch.randn(4, 64, generator=_gen(13), dtype=F64)
    new, keep = sparsegpt_prune(w, _hessian(x), 0.0, blocksize=16, dtype=F64)
    assert keep.all() and torch.equal(new, w)


def test_hessian_accumulator_matches_direct_and_ignores_batching():
    x = _correlated(48, 300, seed=14)  # 300 tokens
    direct = _hessian(x)
    whole = HessianAccumulator(48, dtype=F64)
    whole.add(x)
    torch.testing.assert_close(whole.hessian, direct, rtol=1e-12, atol=1e-12)
    batched = HessianAccumulator(48, dtype=F64)
    for chunk in (x[:7], x[7:100].reshape(3, 31, 48), x[100:101], x[101:].reshape(1, 199, 48)):
        batched.add(chunk)
    assert batched.n_tokens == 300
    torch.testing.assert_close(batched.hessian, direct, rtol=1e-12, atol=1e-12)
    single = HessianAccumulator(48, dtype=torch.float32)
    for chunk in x.float().split(50):
        single.add(chunk)
    assert single.hessian.dtype == torch.float32
    torch.testing.assert_close(single.hessian.double(), direct, rtol=1e-4, atol=1e-4)


def test_hessian_accumulator_as_a_forward_pre_hook():
    linear = torch.nn.Linear(32, 5, dtype=F64)
    x = _correlated(32, 60, seed=15).reshape(3, 20, 32)
    acc = HessianAccumulator(32, dtype=F64).attach(linear)
    with torch.inference_mode():
        linear(x[:2])
        linear(x[2])
    acc.remove()
    linear(x)  # no longer counted
    assert acc.n_tokens == 60
    torch.testing.assert_close(acc.hessian, _hessian(x.reshape(60, 32)))
    acc.add(x[0])  # outside inference mode after batches inside it
    assert acc.n_tokens == 80
    x = torch.cat([x.reshape(60, 32), x[0]])
    torch.testing.assert_close(acc.hessian, _hessian(x))
    with pytest.raises(ValueError, match="in_features=16"):
        HessianAccumulator(16).attach(linear)
    with pytest.raises(ValueError, match="no inputs were added"):
        HessianAccumulator(16).hessian
    with pytest.raises(ValueError, match="do not end in in_features=16"):
        HessianAccumulator(16).add(torch.zeros(3, 15))
    with pytest.raises(ValueError, match="float32 or torch.float64"):
        HessianAccumulator(16, dtype=torch.float16)


@pytest.mark.parametrize("kwargs, message", [
    ({"blocksize": 0}, "blocksize must be a positive integer"),
    ({"blocksize": -128}, "blocksize must be a positive integer"),
    ({"damping": 0.0}, r"damping must be in \(0, 1\)"),
    ({"damping": 1.0}, r"damping must be in \(0, 1\)"),
    ({"damping": -0.01}, r"damping must be in \(0, 1\)"),
    ({"sparsity": 1.0}, r"sparsity must be in \[0, 1\)"),
    ({"sparsity": -0.1}, r"sparsity must be in \[0, 1\)"),
    ({"sparsity": None}, r"sparsity must be in \[0, 1\)"),
    ({"hessian": torch.eye(8, dtype=F64)}, r"hessian of shape \(8, 8\) does not match"),
    ({"nm": (4, 2)}, r"nm must be a pair \(n, m\)"),
    ({"nm": (2, 4, 1)}, r"nm must be a pair \(n, m\)"),
    ({"nm": (2, 5)}, "needs in_features divisible by m=5"),
    ({"nm": (2, 4), "blocksize": 30}, "blocksize must be a multiple of m=4"),
    ({"nm": (2, 4), "sparsity": 0.7}, "pass sparsity=None"),
    ({"dtype": torch.float16}, "dtype must be torch.float32 or torch.float64"),
    ({"hessian": torch.full((16, 16), float("nan"), dtype=F64)}, "non-finite"),
])
def test_bad_arguments_raise_naming_the_cause(kwargs, message):
    args = {"weight": torch.randn(4, 16, generator=_gen(16), dtype=F64), "hessian": torch.eye(16, dtype=F64),
            "sparsity": 0.5, **kwargs}
    weight, hessian, sparsity = args.pop("weight"), args.pop("hessian"), args.pop("sparsity")
    with pytest.raises(ValueError, match=message):
        sparsegpt_prune(weight, hessian, sparsity, **args)


def test_a_hessian_that_is_not_positive_definite_names_the_damping():
    h = -torch.eye(16, dtype=F64)  # negative diagonal: the damping cannot help
    with pytest.raises(ValueError, match="raise the damping"):
        sparsegpt_prune(torch.randn(4, 16, dtype=F64), h, 0.5, dtype=F64)
