"""Inter-layer cosine similarity, computed out of core from per-layer activation files.

The activation files ``layer_000.npy`` .. ``layer_{N:03d}.npy`` hold the hidden state entering
each decoder block (the last one: the output of the final block), one row per captured token.
For every pair of layers (i, j) we need the mean over tokens of cos(h_i[t], h_j[t]). With
unit-normalised rows X_i, that mean is ``sum_t <X_i[t], X_j[t]> / T``, i.e. one Gram matrix
over the flattened (token, feature) axis, accumulated chunk by chunk from memory-mapped files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class SimilarityResult:
    """Cosine matrices over the N + 1 captured hidden states.

    Attributes:
        extended: (N+1) x (N+1) mean cosine over all captured tokens; index N is the final block's output.
        last_token: (N+1) x (N+1) mean cosine over the last token of each sequence only.
        n_tokens: number of token rows averaged in ``extended``.
        n_last_tokens: number of rows averaged in ``last_token``.
    """

    extended: np.ndarray
    last_token: np.ndarray
    n_tokens: int
    n_last_tokens: int

    @property
    def cosine(self) -> np.ndarray:
        """The N x N matrix over the inputs of blocks 0..N-1 (the artifact ``cosine.npy``)."""
        n = self.extended.shape[0] - 1
        return self.extended[:n, :n]


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, np.finfo(np.float32).tiny)


def _finalise(gram: np.ndarray, count: int) -> np.ndarray:
    if count == 0:
        raise ValueError("no tokens to average over")
    s = gram / count
    s = 0.5 * (s + s.T)  # exact symmetry despite float summation order
    np.fill_diagonal(s, 1.0)
    return np.clip(s, -1.0, 1.0)


def cosine_from_arrays(
    layers: Sequence[np.ndarray],
    last_token_rows: np.ndarray | None = None,
    chunk_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimilarityResult:
    """Mean token-wise cosine similarity between every pair of hidden-state arrays.

    Args:
        layers: L arrays of identical shape [T, hidden] (memory-mapped arrays are read chunk by chunk).
        last_token_rows: row indices of the last token of each sequence (for ``last_token``);
            defaults to no rows, in which case ``last_token`` is all-NaN off the diagonal.
        chunk_tokens: rows per chunk; by default sized to keep a chunk of all layers near 256 MiB.
        progress: called with the number of rows processed after every chunk.

    Returns:
        A :class:`SimilarityResult` with float64 matrices (symmetric, unit diagonal, in [-1, 1]).
    """
    if not layers:
        raise ValueError("need at least one layer")
    shape = layers[0].shape
    if any(a.shape != shape for a in layers):
        raise ValueError(f"all layers must have the same shape, got {[a.shape for a in layers]}")
    n_layers, (n_rows, hidden) = len(layers), shape
    if chunk_tokens is None:
        chunk_tokens = max(1, (256 << 20) // (4 * n_layers * hidden))
    last_mask = np.zeros(n_rows, dtype=bool)
    if last_token_rows is not None and len(last_token_rows):
        last_mask[np.asarray(last_token_rows, dtype=np.int64)] = True

    gram = np.zeros((n_layers, n_layers), dtype=np.float64)
    gram_last = np.zeros((n_layers, n_layers), dtype=np.float64)
    for start in range(0, n_rows, chunk_tokens):
        stop = min(n_rows, start + chunk_tokens)
        block = np.stack([_normalise_rows(np.asarray(a[start:stop], dtype=np.float32)) for a in layers])
        flat = block.reshape(n_layers, -1)
        gram += (flat @ flat.T).astype(np.float64)
        sel = last_mask[start:stop]
        if sel.any():
            sub = block[:, sel, :].reshape(n_layers, -1)
            gram_last += (sub @ sub.T).astype(np.float64)
        if progress is not None:
            progress(stop - start)

    n_last = int(last_mask.sum())
    last = _finalise(gram_last, n_last) if n_last else np.full((n_layers, n_layers), np.nan)
    if not n_last:
        np.fill_diagonal(last, 1.0)
    return SimilarityResult(_finalise(gram, n_rows), last, n_rows, n_last)


def cosine_from_directory(
    directory: str | Path,
    n_layers: int,
    last_token_rows: np.ndarray | None = None,
    chunk_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimilarityResult:
    """:func:`cosine_from_arrays` over ``layer_000.npy`` .. ``layer_{n_layers-1:03d}.npy``, memory-mapped."""
    directory = Path(directory)
    arrays = [np.load(directory / f"layer_{i:03d}.npy", mmap_mode="r") for i in range(n_layers)]
    return cosine_from_arrays(arrays, last_token_rows, chunk_tokens, progress)
