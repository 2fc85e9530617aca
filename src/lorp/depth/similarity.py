"""Inter-layer similarity, computed out of core from per-layer activation files.

The activation files ``layer_000.npy`` .. ``layer_{N:03d}.npy`` hold the hidden state entering
each decoder block (the last one: the output of the final block), one row per captured token.
For every pair of layers (i, j) the paper's statistic is the mean over tokens of cos(h_i[t], h_j[t]).
With unit-normalised rows X_i, that mean is ``sum_t <X_i[t], X_j[t]> / T``, i.e. one Gram matrix over
the flattened (token, feature) axis, accumulated chunk by chunk from the files (:class:`LayerFile`).

Three statistics robust to massive activations (a few dimensions of magnitude ~1e5 that dominate every
cosine) are computed from the same files, each a second pass after one that gathers per-layer moments:

- ``centred``: the mean token cosine after subtracting each layer's mean hidden state;
- ``no-massive``: the mean token cosine over the dimensions left after excluding those whose mean
  magnitude, in any layer, exceeds ``massive_multiple`` times that layer's median dimension;
- ``cka``: linear centred kernel alignment (Kornblith et al., 2019), estimated over token minibatches with
  the unbiased HSIC estimator (Song et al., 2012) as in Nguyen et al. (2021): the sums of the minibatches'
  HSIC values, normalised. Exact for one batch; its memory is a batch's Gram matrices, not the tokens'.

For the mean-cosine statistics the Gram sums are also kept per calibration sequence, so that a bootstrap
over sequences (:func:`resample`) needs no second pass over the activations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .statistics import get_statistic

@dataclass(frozen=True)
class SimilarityResult:
    """Similarity matrices over the N + 1 captured hidden states.

    Attributes:
        extended: (N+1) x (N+1) similarity over all captured tokens; index N is the final block's output.
        last_token: (N+1) x (N+1) similarity over the last token of each sequence only.
        n_tokens: number of token rows in ``extended``.
        n_last_tokens: number of rows in ``last_token``.
        statistic: the statistic (a key of :data:`STATISTICS`).
        excluded_dimensions: hidden dimensions left out (``no-massive``), ascending.
        per_sequence: [S, N+1, N+1] sums of the unit-normalised inner products over each calibration
            sequence's captured tokens (mean-cosine statistics with known sequences), else None.
        per_sequence_last: [S, N+1, N+1] the same over each sequence's last token, else None.
    """

    extended: np.ndarray
    last_token: np.ndarray
    n_tokens: int
    n_last_tokens: int
    statistic: str = "cosine"
    excluded_dimensions: tuple[int, ...] = ()
    per_sequence: np.ndarray | None = None
    per_sequence_last: np.ndarray | None = None

    @property
    def cosine(self) -> np.ndarray:
        """The N x N matrix over the inputs of blocks 0..N-1 (the artifact ``cosine.npy``)."""
        n = self.extended.shape[0] - 1
        return self.extended[:n, :n]


def passes(statistic: str) -> int:
    """How many times :func:`similarity_from_arrays` reads every row for ``statistic``."""
    return get_statistic(statistic).passes


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


def _chunks(n_rows: int, chunk: int) -> list[tuple[int, int]]:
    return [(start, min(n_rows, start + chunk)) for start in range(0, n_rows, chunk)]


def layer_moments(layers: Sequence[np.ndarray], chunk_tokens: int,
                  progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each layer's mean hidden state and mean magnitude per dimension, both [L, hidden] float64."""
    n_rows, hidden = layers[0].shape
    total = np.zeros((len(layers), hidden))
    magnitude = np.zeros((len(layers), hidden))
    for start, stop in _chunks(n_rows, chunk_tokens):
        for i, a in enumerate(layers):
            x = np.asarray(a[start:stop], dtype=np.float64)
            total[i] += x.sum(axis=0)
            magnitude[i] += np.abs(x).sum(axis=0)
        if progress is not None:
            progress(stop - start)
    return total / n_rows, magnitude / n_rows


def massive_dimensions(mean_magnitude: np.ndarray, multiple: float) -> np.ndarray:
    """The dimensions whose mean magnitude exceeds ``multiple`` times the median dimension's, in any layer.

    Args:
        mean_magnitude: [L, hidden] mean |h| per layer and dimension (:func:`layer_moments`).
        multiple: the threshold as a multiple of each layer's median mean magnitude (> 1).

    Returns:
        The excluded dimensions, ascending (the same for every layer, so that the layers stay comparable).
    """
    if multiple <= 1:
        raise ValueError(f"massive_multiple must exceed 1, got {multiple}")
    median = np.median(mean_magnitude, axis=1, keepdims=True)
    return np.flatnonzero((mean_magnitude > multiple * median).any(axis=0))


def unbiased_hsic(grams: np.ndarray) -> np.ndarray:
    """The unbiased HSIC estimator (Song et al., 2012) between every pair of n x n Gram matrices.

    Args:
        grams: [L, n, n] symmetric Gram matrices of the same n >= 4 samples.

    Returns:
        [L, L] estimates: ``(tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1) / (n(n-3))``,
        where K~ is K with its diagonal zeroed.
    """
    n_layers, n, _ = grams.shape
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 samples, got {n}")
    k = np.array(grams, dtype=np.float64)
    idx = np.arange(n)
    k[:, idx, idx] = 0.0
    flat = k.reshape(n_layers, -1)
    rows = k.sum(axis=2)
    sums = rows.sum(axis=1)
    trace = flat @ flat.T
    return (trace + np.outer(sums, sums) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (rows @ rows.T)) / (n * (n - 3))


def _cka(hsic: np.ndarray) -> np.ndarray:
    scale = np.sqrt(np.clip(np.diag(hsic), np.finfo(np.float64).tiny, None))
    s = hsic / np.outer(scale, scale)
    s = 0.5 * (s + s.T)
    np.fill_diagonal(s, 1.0)
    return np.clip(s, -1.0, 1.0)


def _batch_sizes(n_rows: int, batch: int) -> list[tuple[int, int]]:
    """Contiguous minibatches of near-equal size, none below 4 rows where there are at least 4."""
    count = max(1, -(-n_rows // batch))
    edges = np.linspace(0, n_rows, count + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def similarity_from_arrays(
    layers: Sequence[np.ndarray],
    statistic: str = "cosine",
    last_token_rows: np.ndarray | None = None,
    tokens_per_sequence: int | None = None,
    chunk_tokens: int | None = None,
    massive_multiple: float = 100.0,
    cka_batch_tokens: int = 1024,
    progress: Callable[[int], None] | None = None,
) -> SimilarityResult:
    """Similarity between every pair of hidden-state arrays under ``statistic``.

    Args:
        layers: L arrays of identical shape [T, hidden] (or :class:`LayerFile` readers), read chunk by chunk.
        statistic: a key of :data:`STATISTICS`.
        last_token_rows: row indices of the last token of each sequence (for ``last_token``);
            defaults to no rows, in which case ``last_token`` is all-NaN off the diagonal.
        tokens_per_sequence: rows per calibration sequence (rows are sequence-major); when given, the
            mean-cosine statistics also return their sums per sequence (for :func:`resample`).
        chunk_tokens: rows per chunk; by default sized to keep a chunk of all layers near 256 MiB.
        massive_multiple: the ``no-massive`` threshold (:func:`massive_dimensions`).
        cka_batch_tokens: the ``cka`` minibatch size.
        progress: called with the number of rows read after every chunk (:func:`passes` reads per row).

    Returns:
        A :class:`SimilarityResult` with float64 matrices (symmetric, unit diagonal, in [-1, 1]).
    """
    spec = get_statistic(statistic)
    if not layers:
        raise ValueError("need at least one layer")
    shape = layers[0].shape
    if any(a.shape != shape for a in layers):
        raise ValueError(f"all layers must have the same shape, got {[a.shape for a in layers]}")
    n_layers, (n_rows, hidden) = len(layers), shape
    if n_rows == 0:
        raise ValueError("no tokens to average over")
    if tokens_per_sequence is not None and (tokens_per_sequence < 1 or n_rows % tokens_per_sequence):
        raise ValueError(f"{n_rows} rows are not whole sequences of {tokens_per_sequence} tokens")
    if chunk_tokens is None:
        chunk_tokens = max(1, (256 << 20) // (4 * n_layers * hidden))
    last_mask = np.zeros(n_rows, dtype=bool)
    if last_token_rows is not None and len(last_token_rows):
        last_mask[np.asarray(last_token_rows, dtype=np.int64)] = True

    mean = keep = None
    excluded: tuple[int, ...] = ()
    if spec.passes > 1:
        mean, magnitude = layer_moments(layers, chunk_tokens, progress)
        if spec.kernel == "cosine" and spec.rows == "no-massive":
            dims = massive_dimensions(magnitude, massive_multiple)
            if len(dims) == hidden:
                raise ValueError(f"every dimension exceeds {massive_multiple} x the median; raise massive_multiple")
            excluded = tuple(int(d) for d in dims)
            keep = np.setdiff1d(np.arange(hidden), dims)
    if spec.kernel == "cka":
        return _cka_from_arrays(layers, mean, last_mask, cka_batch_tokens, progress, statistic)

    def rows(i: int, start: int, stop: int) -> np.ndarray:
        x = np.asarray(layers[i][start:stop], dtype=np.float32)
        if spec.rows == "centred":
            x = x - mean[i].astype(np.float32)
        elif keep is not None:
            x = x[:, keep]
        return _normalise_rows(x)

    per_seq = tokens_per_sequence is not None
    n_sequences = n_rows // tokens_per_sequence if per_seq else 0
    gram = np.zeros((n_layers, n_layers), dtype=np.float64)
    gram_last = np.zeros((n_layers, n_layers), dtype=np.float64)
    seq_grams = np.zeros((n_sequences, n_layers, n_layers)) if per_seq else None
    seq_last = np.zeros((n_sequences, n_layers, n_layers)) if per_seq else None
    for start, stop in _chunks(n_rows, chunk_tokens):
        block = np.stack([rows(i, start, stop) for i in range(n_layers)])
        sel = last_mask[start:stop]
        if per_seq:  # the chunk split at sequence boundaries: each piece's Gram goes to its sequence
            for seq in range(start // tokens_per_sequence, (stop - 1) // tokens_per_sequence + 1):
                a = max(start, seq * tokens_per_sequence) - start
                b = min(stop, (seq + 1) * tokens_per_sequence) - start
                flat = block[:, a:b, :].reshape(n_layers, -1)
                piece = (flat @ flat.T).astype(np.float64)
                seq_grams[seq] += piece
                gram += piece
            picked = np.flatnonzero(sel)
            if len(picked):
                last = block[:, picked, :]
                np.add.at(seq_last, (picked + start) // tokens_per_sequence,
                          np.einsum("lsd,msd->slm", last, last).astype(np.float64))
        else:
            flat = block.reshape(n_layers, -1)
            gram += (flat @ flat.T).astype(np.float64)
        if sel.any():
            sub = block[:, sel, :].reshape(n_layers, -1)
            gram_last += (sub @ sub.T).astype(np.float64)
        if progress is not None:
            progress(stop - start)

    n_last = int(last_mask.sum())
    last = _finalise(gram_last, n_last) if n_last else np.full((n_layers, n_layers), np.nan)
    if not n_last:
        np.fill_diagonal(last, 1.0)
    one_last_each = per_seq and np.array_equal(np.bincount(np.flatnonzero(last_mask) // tokens_per_sequence,
                                                           minlength=n_sequences), np.ones(n_sequences, dtype=int))
    return SimilarityResult(_finalise(gram, n_rows), last, n_rows, n_last, statistic, excluded, seq_grams,
                            seq_last if one_last_each else None)


def _cka_from_arrays(layers: Sequence[np.ndarray], mean: np.ndarray, last_mask: np.ndarray, batch: int,
                     progress: Callable[[int], None] | None, statistic: str = "cka") -> SimilarityResult:
    """Linear CKA over minibatches of ``batch`` rows (rows centred by each layer's mean first, for precision:
    the estimator itself is invariant to the shift)."""
    n_layers, n_rows = len(layers), layers[0].shape[0]
    if n_rows < 4:
        raise ValueError(f"linear CKA needs at least 4 token rows, got {n_rows}")
    hsic = np.zeros((n_layers, n_layers))
    last_rows = []
    for start, stop in _batch_sizes(n_rows, batch):
        xs = [np.asarray(a[start:stop], dtype=np.float32) - mean[i].astype(np.float32) for i, a in enumerate(layers)]
        hsic += unbiased_hsic(np.stack([x @ x.T for x in xs]))
        sel = last_mask[start:stop]
        if sel.any():
            last_rows.append(np.stack([x[sel] for x in xs]))
        if progress is not None:
            progress(stop - start)
    n_last = int(last_mask.sum())
    if n_last >= 4:
        last_x = np.concatenate(last_rows, axis=1)
        last = _cka(unbiased_hsic(np.stack([x @ x.T for x in last_x])))
    else:
        last = np.full((n_layers, n_layers), np.nan)
        np.fill_diagonal(last, 1.0)
    return SimilarityResult(_cka(hsic), last, n_rows, n_last, statistic)


def cosine_from_arrays(
    layers: Sequence[np.ndarray],
    last_token_rows: np.ndarray | None = None,
    chunk_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimilarityResult:
    """The paper's mean token cosine (:func:`similarity_from_arrays` with ``statistic="cosine"``)."""
    return similarity_from_arrays(layers, "cosine", last_token_rows, chunk_tokens=chunk_tokens, progress=progress)


class LayerFile:
    """The rows of one ``.npy`` file [T, hidden], read on demand with explicit reads.

    A memory map would serve as well, but the file pages it touches count in the process's resident memory
    until the map is closed, so a pass over 79 GB of activations would look (and, under a cluster's memory
    limit, be accounted) as 79 GB; a read into a fresh buffer holds one chunk at a time.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            self._offset = fh.tell()
        if fortran or len(shape) != 2 or dtype.hasobject:
            raise ValueError(f"{self.path}: expected a C-ordered 2-D numeric array, got shape {shape}, "
                             f"{'Fortran' if fortran else 'C'} order, dtype {dtype}")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = dtype
        self._row_bytes = self.shape[1] * dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("LayerFile reads contiguous row ranges only (a[start:stop])")
        start, stop, _ = rows.indices(self.shape[0])
        count = max(0, stop - start)
        buffer = bytearray(count * self._row_bytes)
        with open(self.path, "rb", buffering=0) as fh:
            fh.seek(self._offset + start * self._row_bytes)
            view, done = memoryview(buffer), 0
            while done < len(buffer):
                n = fh.readinto(view[done:])
                if not n:
                    raise OSError(f"{self.path}: file ends before row {stop} (truncated?)")
                done += n
        return np.frombuffer(buffer, dtype=self.dtype).reshape(count, self.shape[1])


def open_layers(directory: str | Path, n_layers: int) -> list[LayerFile]:
    """``layer_000.npy`` .. ``layer_{n_layers-1:03d}.npy`` of ``directory``, read chunk by chunk."""
    directory = Path(directory)
    return [LayerFile(directory / f"layer_{i:03d}.npy") for i in range(n_layers)]


def cosine_from_directory(
    directory: str | Path,
    n_layers: int,
    last_token_rows: np.ndarray | None = None,
    chunk_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimilarityResult:
    """:func:`cosine_from_arrays` over ``layer_000.npy`` .. ``layer_{n_layers-1:03d}.npy``, read chunk by chunk."""
    return cosine_from_arrays(open_layers(directory, n_layers), last_token_rows, chunk_tokens, progress)


def resample(per_sequence: np.ndarray, tokens_per_sequence: int, counts: np.ndarray) -> np.ndarray:
    """The mean-cosine matrix of a resample of the calibration sequences, from their per-sequence sums.

    Args:
        per_sequence: [S, L, L] sums per sequence (:attr:`SimilarityResult.per_sequence` or ``_last``).
        tokens_per_sequence: the rows each sum covers (1 for the last-token sums).
        counts: [S] how many times each sequence is drawn (a bootstrap draw: ``rng.multinomial``).

    Returns:
        [L, L] as :func:`similarity_from_arrays` would give on the drawn sequences.
    """
    counts = np.asarray(counts)
    if counts.shape != per_sequence.shape[:1]:
        raise ValueError(f"need one count per sequence ({per_sequence.shape[0]}), got {counts.shape}")
    gram = np.tensordot(counts.astype(np.float64), per_sequence, axes=1)
    return _finalise(gram, int(counts.sum()) * tokens_per_sequence)
