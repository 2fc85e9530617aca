"""The closed-form patch: a linear map carrying the hidden state across each removed span of blocks.

For a depth plan that removes the contiguous span of blocks ``s .. s+n-1``, the hidden state entering
block ``s`` (``h_s``) must stand in for the one entering block ``s+n`` (``h_{s+n}``). The patch is

    P = I + D,   D = argmin_D ||H_{s+n} - H_s (I + D)^T||_F^2 + lam ||D||_F^2

over the calibration tokens' stored activations (rows of ``layer_{s:03d}.npy`` and ``layer_{s+n:03d}.npy``;
``layer_N`` is the last block's output before the final norm), fitted in float64. The identity-plus-
correction parametrisation ("Ghosted Layers") makes the ridge shrink the patch toward the identity, which is
plain pruning: with ``lam -> inf`` the patched model is the pruned model, with ``lam = 0`` it is the least-
squares map. ``lam = ridge * trace(H_s^T H_s) / d`` (the mean squared norm of a coordinate over the tokens),
so ``ridge`` is scale-free: the same value means the same shrinkage on models whose hidden states differ in
size by orders of magnitude.

The solution is ``D^T = (G + lam I)^{-1} H_s^T (H_{s+n} - H_s)`` with ``G = H_s^T H_s``; only the d x d Gram
matrices are accumulated (chunk by chunk over the memory-mapped rows), so the fit needs no forward pass and
memory of a few d x d float64 matrices. Each span is fitted from the dense model's activations, independently
of the others (the inputs of a later span's patch are the dense model's, not the patched one's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np


def contiguous_spans(pruned: Sequence[int]) -> list[tuple[int, int]]:
    """The maximal runs of consecutive removed blocks as ``(start, length)``, in depth order."""
    spans: list[tuple[int, int]] = []
    for i in sorted(int(b) for b in pruned):
        if spans and spans[-1][0] + spans[-1][1] == i:
            spans[-1] = (spans[-1][0], spans[-1][1] + 1)
        else:
            spans.append((i, 1))
    return spans


@dataclass
class SpanPatch:
    """The patch of one removed span: blocks ``start .. start+length-1`` replaced by ``I + delta``.

    ``residual`` and ``baseline`` are the fit's mean squared error per token with the patch and with the
    identity (plain pruning); ``n_tokens`` the rows it was fitted on and ``lam`` the absolute ridge."""

    start: int
    length: int
    delta: np.ndarray
    residual: float
    baseline: float
    n_tokens: int
    lam: float

    @property
    def matrix(self) -> np.ndarray:
        """``P = I + delta``."""
        return np.eye(self.delta.shape[0]) + self.delta


@dataclass
class Grams:
    """The sufficient statistics of one span's fit, in float64: ``xx = X^T X``, ``xr = X^T (Y - X)``,
    ``rr = trace((Y - X)^T (Y - X))`` over ``n`` rows."""

    xx: np.ndarray
    xr: np.ndarray
    rr: float
    n: int


def accumulate(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> Grams:
    """The Gram matrices of row chunks ``(X, Y)`` (inputs and targets, tokens x hidden), in float64."""
    xx = xr = None
    rr, n = 0.0, 0
    for x, y in pairs:
        x = np.asarray(x, dtype=np.float64)
        r = np.asarray(y, dtype=np.float64) - x
        if xx is None:
            xx = np.zeros((x.shape[1], x.shape[1]))
            xr = np.zeros_like(xx)
        xx += x.T @ x
        xr += x.T @ r
        rr += float(np.einsum("ij,ij->", r, r))
        n += x.shape[0]
    if xx is None:
        raise ValueError("no rows to fit the patch on")
    return Grams(xx, xr, rr, n)


def solve(grams: Grams, ridge: float, start: int = 0, length: int = 0) -> SpanPatch:
    """The patch minimising ``||Y - X (I + D)^T||^2 + lam ||D||^2`` from its Gram matrices, with
    ``lam = ridge * trace(X^T X) / d``. ``ridge = 0`` is least squares (a singular ``X^T X`` gets the
    minimum-norm solution, the one closest to the identity)."""
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    d = grams.xx.shape[0]
    lam = float(ridge) * float(np.trace(grams.xx)) / d
    a = grams.xx + lam * np.eye(d)
    if lam > 0:
        dt = np.linalg.solve(a, grams.xr)
    else:
        dt = np.linalg.lstsq(a, grams.xr, rcond=None)[0]
    # ||R - X D^T||^2 = rr - 2 tr(D xr) + tr(D xx D^T), D^T = dt
    sse = grams.rr - 2.0 * float(np.einsum("ij,ij->", dt, grams.xr)) + float(np.einsum("ij,ij->", dt, grams.xx @ dt))
    return SpanPatch(start=start, length=length, delta=dt.T.copy(), residual=max(sse, 0.0) / grams.n,
                     baseline=grams.rr / grams.n, n_tokens=grams.n, lam=lam)


def fit_patch(x: np.ndarray, y: np.ndarray, ridge: float, chunk: int = 4096) -> SpanPatch:
    """The patch mapping rows of ``x`` onto rows of ``y`` (tokens x hidden, any float dtype, memory maps
    read ``chunk`` rows at a time)."""
    if x.shape != y.shape:
        raise ValueError(f"inputs {x.shape} and targets {y.shape} differ in shape")
    pairs = ((x[i:i + chunk], y[i:i + chunk]) for i in range(0, x.shape[0], chunk))
    return solve(accumulate(pairs), ridge)


def fit_plan_patches(activation_dir: str | Path, pruned: Sequence[int], n_layers: int, ridge: float,
                     chunk: int = 4096) -> list[SpanPatch]:
    """One patch per contiguous span of ``pruned``, fitted on the stored activations of ``activation_dir``
    (``layer_{i:03d}.npy``: the hidden state entering block i; ``layer_N``: the last block's output)."""
    root = Path(activation_dir)
    out = []
    for start, length in contiguous_spans(pruned):
        if start + length > n_layers:
            raise ValueError(f"span {start}..{start + length - 1} out of range for {n_layers} blocks")
        x = np.load(root / f"layer_{start:03d}.npy", mmap_mode="r")
        y = np.load(root / f"layer_{start + length:03d}.npy", mmap_mode="r")
        patch = fit_patch(x, y, ridge, chunk)
        patch.start, patch.length = start, length
        out.append(patch)
    return out


def save_patches(path: str | Path, patches: Sequence[SpanPatch]) -> None:
    """The patches as one ``.npz``: ``starts``, ``lengths`` (int64) and ``delta_<i>`` (float32, d x d)."""
    from ..io import atomic_path

    arrays = {"starts": np.array([p.start for p in patches], dtype=np.int64),
              "lengths": np.array([p.length for p in patches], dtype=np.int64)}
    arrays.update({f"delta_{i}": p.delta.astype(np.float32) for i, p in enumerate(patches)})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_patches(path: str | Path) -> list[tuple[int, int, np.ndarray]]:
    """``(start, length, delta)`` of every span stored by :func:`save_patches`."""
    with np.load(path) as z:
        return [(int(s), int(n), z[f"delta_{i}"]) for i, (s, n) in enumerate(zip(z["starts"], z["lengths"]))]
