"""SparseGPT: one-shot pruning of a linear layer that reconstructs its output on calibration inputs.

Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot"
(arXiv 2301.00774). A layer ``y = W x`` (``W`` is ``[out, in]``, as ``nn.Linear``'s) is pruned so that
``||W X - W' X||`` stays small over the calibration tokens ``X`` (``[in, n]``):

1. the Hessian of that squared error, ``H = 2 X X^T / n`` (``[in, in]``), is accumulated over the
   layer's inputs (:class:`HessianAccumulator`, a forward pre-hook);
2. dead inputs (``H_jj == 0``: a feature that is zero on every token) get ``H_jj = 1`` and their weights
   set to zero (they are pruned first); ``damping * mean(diag(H))`` is added to the diagonal;
3. ``U``, the upper Cholesky factor of ``H^-1`` (``H^-1 = U^T U``), holds in its row ``j`` the optimal
   brain surgeon (OBS) update for removing input ``j`` once inputs ``0..j-1`` are fixed;
4. the columns are processed left to right in blocks of ``blocksize`` (128): at the start of a block the
   mask of the whole block is chosen by ``w_ij^2 / U_jj^2`` (the OBS error of pruning ``w_ij``), the lowest
   pruned; with an N:M pattern it is chosen every ``m`` columns instead, from the weights as updated so far;
5. column by column, the pruned weights are zeroed and the error ``(w_j - q_j) / U_jj`` is spread over the
   block's later columns (``U[j, j:]``); once the block is done its errors update every column after it at
   once (the lazy batch update, one matrix product).

What is stored and what is recomputed: the layer's Hessian (``in^2`` numbers) is the only thing to keep
from the calibration pass; the factor ``U``, the masks and the updated weights are recomputed from it and
the weight in :func:`sparsegpt_prune` (deterministically: stable sorts, no randomness). Its memory beyond
the weight's copy in ``dtype``: up to four ``[in, in]`` matrices in ``dtype`` while ``U`` is formed (the
damped Hessian, ``R``, an identity and ``U``), then ``U`` alone (13824 inputs in float32: 0.76 GB each).

The sequential protocol (each block's Hessians measured on the blocks before it as already pruned) is
:func:`lorp.sparse.norms.prune_sequentially`'s, as for Wanda's norms; this module is the algorithm for one
layer (:func:`sparsegpt_prune`) and for the layers of one block (:func:`prune_linears_sparsegpt`, the metric
``sparsegpt`` of :mod:`lorp.sparse.metrics`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch

from .masks import COUNT_TOLERANCE, nm_mask, pruned_per_row

HESSIAN_DTYPES = (torch.float32, torch.float64)


class HessianAccumulator:
    """The running mean ``H = 2/n * sum_t x_t x_t^T`` of a linear layer's inputs, ``[in, in]``.

    :meth:`add` takes a batch of inputs of any leading shape whose last dimension is ``in_features``
    (every row is a token). The mean is kept as a running mean over tokens, ``H <- H * n/(n + b) +
    2/(n + b) * X_b^T X_b``, in ``dtype`` (``float32`` or ``float64``), so that its entries keep the scale
    of one token's and the result does not depend on how the tokens are batched (up to rounding).
    :meth:`attach` registers it as a forward pre-hook of an ``nn.Linear`` (:meth:`remove` takes it off).

    Attributes:
        in_features: the layer's input width.
        dtype: the accumulation dtype.
        n_tokens: how many tokens have been added.
    """

    def __init__(self, in_features: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features <= 0:
            raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
        if dtype not in HESSIAN_DTYPES:
            raise ValueError(f"the Hessian dtype must be torch.float32 or torch.float64, got {dtype}")
        self.in_features = in_features
        self.dtype = dtype
        self.n_tokens = 0
        self._device = torch.device(device) if device is not None else None
        self._h: torch.Tensor | None = None
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    @torch.inference_mode()
    def add(self, inputs: torch.Tensor) -> None:
        """Add a batch of inputs (``[..., in_features]``; every leading index is a token). Always in inference
        mode, so that batches added inside and outside ``torch.inference_mode`` mix (the Hessian is an
        inference tensor: read it, or clone it to change it)."""
        if inputs.shape[-1:] != (self.in_features,):
            raise ValueError(f"inputs of shape {tuple(inputs.shape)} do not end in in_features={self.in_features}")
        x = inputs.detach().reshape(-1, self.in_features)
        b = x.shape[0]
        if b == 0:
            return
        device = self._device if self._device is not None else x.device
        x = x.to(device=device, dtype=self.dtype)
        if self._h is None:
            self._h = torch.zeros(self.in_features, self.in_features, dtype=self.dtype, device=device)
        total = self.n_tokens + b
        self._h.mul_(self.n_tokens / total)
        self._h.addmm_(x.T, x, alpha=2.0 / total)
        self.n_tokens = total

    @property
    def hessian(self) -> torch.Tensor:
        """``H`` so far (the accumulator's own tensor; clone it to keep it past further :meth:`add` calls)."""
        if self._h is None:
            raise ValueError("no inputs were added to the Hessian accumulator: run the calibration tokens "
                             "through the layer (attach() it first) before reading its Hessian")
        return self._h

    def attach(self, linear: torch.nn.Linear) -> "HessianAccumulator":
        """Register :meth:`add` as a forward pre-hook of ``linear`` (its input is added on every forward
        call until :meth:`remove`). Returns ``self``."""
        if linear.in_features != self.in_features:
            raise ValueError(f"a layer with in_features={linear.in_features} cannot feed a Hessian of "
                             f"in_features={self.in_features}")
        if self._handle is not None:
            raise ValueError("this Hessian accumulator is already attached to a layer: remove() it first")
        self._handle = linear.register_forward_pre_hook(self._hook())
        return self

    def _hook(self) -> Callable:
        def hook(module: torch.nn.Module, args: tuple) -> None:
            self.add(args[0])
        return hook

    def remove(self) -> None:
        """Remove the forward pre-hook (nothing if not attached)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _reverse_cholesky(hessian: torch.Tensor) -> torch.Tensor:
    """``L``, lower triangular, with ``J H J = L L^T`` (``J`` the reversal permutation); raises if ``H`` is not
    positive definite."""
    lower, info = torch.linalg.cholesky_ex(hessian.flip(0, 1))  # the flipped copy is freed on return
    if int(info):
        raise ValueError(f"the damped Hessian is not positive definite (Cholesky failed at column "
                         f"{int(info)}): raise the damping or accumulate the Hessian in float64")
    return lower


def _damped(hessian: torch.Tensor, damping: float, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``hessian`` in ``dtype`` on ``device`` with each dead input (``H_jj == 0``, a feature zero on
    every token, so ``H[j, :] = H[:, j] = 0``) given its own decoupled 1 and ``damping * mean(diag H)`` added to
    the diagonal; and the dead inputs' mask."""
    h = hessian.detach().to(device=device, dtype=dtype, copy=True)
    dead = torch.diagonal(h) == 0
    h.diagonal()[dead] = 1.0
    h.diagonal().add_(damping * float(torch.diagonal(h).mean()))
    return h, dead


def upper_cholesky_of_inverse(hessian: torch.Tensor) -> torch.Tensor:
    """``U``, upper triangular with a positive diagonal, such that ``H^-1 = U^T U``, for a symmetric
    positive-definite ``H``.

    Computed from one Cholesky factorisation of ``H`` and one triangular solve, never forming ``H^-1``
    (the reference inverts ``H`` and factorises the inverse: two factorisations, and the inverse's
    rounding enters the second): with ``J`` the reversal permutation, ``J H J = L L^T`` (lower), so
    ``H = R R^T`` with ``R = J L J`` upper; then ``H^-1 = R^-T R^-1`` and ``U = R^-1`` (upper, by the
    uniqueness of the Cholesky factor the same ``U``). Raises if ``H`` is not positive definite.
    """
    r = _reverse_cholesky(hessian).flip(0, 1)  # upper triangular, H = R R^T
    eye = torch.eye(r.shape[0], dtype=r.dtype, device=r.device)
    return torch.linalg.solve_triangular(r, eye, upper=True)


def _validate(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float | None, nm: tuple[int, int] | None,
              blocksize: int, damping: float, dtype: torch.dtype) -> None:
    if weight.dim() != 2:
        raise ValueError(f"the weight must be a 2-D [out, in] matrix, got shape {tuple(weight.shape)}")
    cols = weight.shape[1]
    if tuple(hessian.shape) != (cols, cols):
        raise ValueError(f"a hessian of shape {tuple(hessian.shape)} does not match a weight of shape "
                         f"{tuple(weight.shape)}: it must be [in, in] = [{cols}, {cols}]")
    if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize <= 0:
        raise ValueError(f"blocksize must be a positive integer (default 128), got {blocksize!r}")
    if not (isinstance(damping, (int, float)) and 0 < damping < 1):
        raise ValueError(f"damping must be in (0, 1) (a share of the mean Hessian diagonal; default 0.01), "
                         f"got {damping!r}")
    if dtype not in HESSIAN_DTYPES:
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if nm is not None:
        if (not isinstance(nm, (tuple, list)) or len(nm) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in nm) or not 0 < nm[0] < nm[1]):
            raise ValueError(f"nm must be a pair (n, m) of integers with 0 < n < m (2:4 is (2, 4)), got {nm!r}")
        n, m = nm
        if cols % m:
            raise ValueError(f"an {n}:{m} mask needs in_features divisible by m={m}, got {cols}")
        if blocksize % m:
            raise ValueError(f"with an {n}:{m} mask blocksize must be a multiple of m={m}, got {blocksize}")
        if sparsity is not None and abs(float(sparsity) - (m - n) / m) > 1e-9:
            raise ValueError(f"an {n}:{m} mask prunes {(m - n) / m} of the weights, but sparsity={sparsity} "
                             f"was asked: pass sparsity=None (or {(m - n) / m}) with nm")
    else:
        if sparsity is None or not (isinstance(sparsity, (int, float)) and 0 <= sparsity < 1):
            raise ValueError(f"sparsity must be in [0, 1) (or nm given), got {sparsity!r}")
    if not bool(torch.isfinite(hessian).all()):
        raise ValueError("the hessian has non-finite entries (inf or nan): check the calibration inputs")


def _lowest(scores: torch.Tensor, k: int, per_row: bool) -> torch.Tensor:
    """Boolean mask (True = prune) of the ``k`` lowest scores: of every row, or of the whole block
    (ties to the lower index, row-major)."""
    prune = torch.zeros_like(scores, dtype=torch.bool)
    if k <= 0:
        return prune
    if per_row:
        order = torch.argsort(scores, dim=1, stable=True)
        prune.scatter_(1, order[:, :k], True)
    else:
        order = torch.argsort(scores.reshape(-1), stable=True)
        prune.view(-1)[order[:k]] = True
    return prune


def block_prune_counts(in_features: int, sparsity: float, blocksize: int) -> list[int]:
    """How many weights of every row each column block prunes with ``per_row=True``.

    Block ``[a, b)`` prunes ``pruned_per_row(b, s) - pruned_per_row(a, s)``: the running count rounded
    down at every block boundary (the cumulative rounding of ``s * width``), so each block prunes
    ``floor`` or ``ceil`` of ``s * width`` and the counts telescope to exactly
    :func:`lorp.sparse.masks.pruned_per_row` ``(in_features, s)`` per row, the zeros the workflow checks
    every row for. Every row gets the same counts (the remainder is spread over the blocks by position,
    not by score)."""
    bounds = list(range(0, in_features, blocksize)) + [in_features]
    return [pruned_per_row(b, sparsity) - pruned_per_row(a, sparsity) for a, b in zip(bounds[:-1], bounds[1:])]


@torch.no_grad()
def sparsegpt_prune(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float | None, *,
                    nm: tuple[int, int] | None = None, per_row: bool = True, blocksize: int = 128,
                    damping: float = 0.01, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune ``weight`` (``[out, in]``) with SparseGPT from its inputs' ``hessian`` (``[in, in]``, as
    :class:`HessianAccumulator` gives it). Does not modify its inputs.

    Args:
        weight: the linear layer's weight, any float dtype and device (the computation runs on its device).
        hessian: ``2 X X^T / n`` of the layer's calibration inputs (its scale does not matter: the damping
            is relative to its mean diagonal).
        sparsity: the share of weights to prune, in ``[0, 1)``; with ``nm`` None or ``(m - n) / m``.
        nm: ``(n, m)``: keep the ``n`` highest scores ``w^2 / U_jj^2`` of every group of ``m`` consecutive
            inputs of a row, chosen when the group is reached (the weights updated by the columns before it
            in its block); ``blocksize`` must be a multiple of ``m``.
        per_row: how the mask of a column block is chosen (without ``nm``). True: every row prunes its own
            lowest scores, :func:`block_prune_counts` of them in each block, so every row has exactly
            :func:`lorp.sparse.masks.pruned_per_row` zeros (or more where inputs are dead or weights were
            already zero), as the workflow's per-row check requires. False: the reference's choice, the
            lowest ``ceil(s * out * width)`` scores of the whole block over all rows together (rows differ;
            the reference prunes ``int(s * out * width) + 1``, a threshold taken with ``<=``).
        blocksize: the width of a column block (128); its mask is chosen at once, and its errors reach the
            later columns in one product.
        damping: added to the diagonal as ``damping * mean(diag(H))``, in ``(0, 1)`` (0.01).
        dtype: the dtype of the computation (``float32``, as the reference, or ``float64``).

    Returns:
        ``(new_weight, keep)``: the pruned and updated weight in ``weight``'s dtype and device, and the
        boolean mask (True = kept; dead inputs are not kept). ``new_weight`` is zero wherever ``keep`` is
        False.
    """
    _validate(weight, hessian, sparsity, nm, blocksize, damping, dtype)
    rows, cols = weight.shape
    device = weight.device
    w = weight.detach().to(device=device, dtype=dtype, copy=True)
    h, dead = _damped(hessian, damping, dtype, device)
    w[:, dead] = 0.0
    u = upper_cholesky_of_inverse(h)
    del h

    counts = block_prune_counts(cols, float(sparsity), blocksize) if nm is None and per_row else None
    prune = torch.zeros(rows, cols, dtype=torch.bool, device=device)
    for b, start in enumerate(range(0, cols, blocksize)):
        end = min(start + blocksize, cols)
        w1 = w[:, start:end].clone()
        u1 = u[start:end, start:end]
        d = torch.diagonal(u1)
        err = torch.zeros_like(w1)
        score = w1.square() / d.square()
        score[:, dead[start:end]] = -1.0  # dead inputs first (every score is >= 0)
        if nm is None:
            k = counts[b] if counts is not None else math.ceil(float(sparsity) * rows * (end - start) - COUNT_TOLERANCE)
            mask = _lowest(score, k, per_row=counts is not None)
        else:
            mask = torch.zeros_like(w1, dtype=torch.bool)
        for i in range(end - start):
            if nm is not None and i % nm[1] == 0:
                group = w1[:, i:i + nm[1]].square() / d[i:i + nm[1]].square()
                group[:, dead[start + i:start + i + nm[1]]] = -1.0
                mask[:, i:i + nm[1]] = ~nm_mask(group, nm[0], nm[1])
            col = w1[:, i]
            q = col.masked_fill(mask[:, i], 0.0)
            e = (col - q) / d[i]
            w1[:, i:].sub_(torch.outer(e, u1[i, i:]))
            w1[:, i] = q
            err[:, i] = e
        w[:, start:end] = w1
        prune[:, start:end] = mask
        if end < cols:
            w[:, end:].sub_(err @ u[start:end, end:])
    keep = ~(prune | dead.unsqueeze(0))
    w.masked_fill_(~keep, 0.0)
    return w.to(weight.dtype), keep


DTYPES = {"float32": torch.float32, "float64": torch.float64}
"""``sparsity.sparsegpt.hessian_dtype`` by name."""


@torch.no_grad()
def prune_linears_sparsegpt(linears: Mapping[str, torch.nn.Linear], sparsity: Mapping[str, float],
                            hessians: Mapping[str, torch.Tensor], nm: tuple[int, int] | None,
                            params: Mapping[str, Any]) -> None:
    """Prune a decoder block's linear layers (``linears``, by name) in place with :func:`sparsegpt_prune`: layer
    ``name`` to ``sparsity[name]`` (per row, so every row has :func:`lorp.sparse.masks.pruned_per_row` zeros)
    or to the ``nm`` pattern, from ``hessians[name]``, with ``params`` = ``sparsity.sparsegpt`` (blocksize,
    damping, hessian_dtype). The weights keep their dtype and device."""
    dtype = DTYPES[params["hessian_dtype"]]
    for name, linear in linears.items():
        target = None if nm else float(sparsity[name])
        new, _ = sparsegpt_prune(linear.weight, hessians[name], target, nm=tuple(nm) if nm else None, per_row=True,
                                 blocksize=int(params["blocksize"]), damping=float(params["damping"]), dtype=dtype)
        linear.weight.copy_(new)


def obs_input_scales(hessian: torch.Tensor, damping: float = 0.01) -> torch.Tensor:
    """SparseGPT's own saliency as per-input factors: ``r`` (``[in]``) such that ``|w_ij| * r_j`` is the square
    root of its criterion ``w_ij^2 / U_jj^2`` for the first column block, i.e. ``r_j = 1 / U_jj`` with ``U``
    the upper Cholesky factor of the damped ``H^-1`` (:func:`upper_cholesky_of_inverse`; ``1 / U_jj^2`` is
    the Schur complement of ``H`` on input ``j`` given the inputs after it). For a diagonal ``H = 2 X X^T / n``
    without damping, ``r_j = ||X_j|| sqrt(2 / n)``: Wanda's input norms up to one factor per layer. So
    ``|W| * r`` is a drop-in for Wanda's scores (``|W_ij| ||X_j||``) where an allocation measures a block's
    redundancy (``sparsity.sparsegpt.scores: obs``). Dead inputs (``H_jj = 0``) get 0: SparseGPT prunes
    them first. Computed in ``hessian``'s dtype from one Cholesky factorisation."""
    h, dead = _damped(hessian, damping, hessian.dtype, hessian.device)
    r = torch.diagonal(_reverse_cholesky(h)).flip(0).clone()  # R = J L J, H = R R^T, U = R^-1: 1/U_jj = R_jj
    r[dead] = 0.0
    return r
