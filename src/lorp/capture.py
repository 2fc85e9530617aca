"""Capture the hidden state entering every decoder block in one forward pass per batch.

Forward pre-hooks on each block (and a forward hook on the last one) copy the selected token
rows straight into memory-mapped ``.npy`` files, one per layer, so memory holds at most one
batch of one layer at a time beyond the model itself. Files are written under temporary names
and moved into place only when the whole capture has succeeded.

The size of the capture is known from the shapes (:func:`activation_bytes`): it is refused before anything is
written when the disk lacks the space, and every file's blocks are allocated up front, so a disk that fills
anyway raises :class:`lorp.disk.DiskFullError` (ENOSPC, with the numbers) instead of a write through the
memory map killing the job with SIGBUS.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .disk import on_disk, reserve, space_for
from .io import atomic_path, remove_stale_temporaries, write_json
from .models import dtype_name, get_decoder_layers, get_decoder_stack

_NP_DTYPES = {"float16": np.float16, "float32": np.float32}


def token_positions(n_samples: int, seqlen: int, per_sequence: int | None, seed: int) -> np.ndarray:
    """Positions captured in each sequence: all, or ``per_sequence`` sampled ones that always include
    the last position (used by the last-token methods). Returns int64 [n_samples, k], sorted per row."""
    if per_sequence is None or per_sequence >= seqlen:
        return np.tile(np.arange(seqlen, dtype=np.int64), (n_samples, 1))
    if per_sequence < 1:
        raise ValueError(f"tokens_per_sequence must be >= 1, got {per_sequence}")
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_samples):
        rest = rng.choice(seqlen - 1, size=per_sequence - 1, replace=False)
        rows.append(np.sort(np.append(rest, seqlen - 1)))
    return np.asarray(rows, dtype=np.int64)


def activation_bytes(n_rows: int, hidden: int, n_layers: int, dtype: str) -> int:
    """What a capture writes: ``n_layers + 1`` ``.npy`` files of ``n_rows`` x ``hidden`` values of ``dtype``
    (each with its 128-byte header, in whole blocks) and the manifest (at most 24 bytes a captured token
    for its positions, and 64 kB more)."""
    per_file = on_disk(128 + n_rows * hidden * np.dtype(_NP_DTYPES[dtype]).itemsize)
    return (n_layers + 1) * per_file + on_disk(24 * n_rows + 65536)


def describe_activations(n_rows: int, hidden: int, n_layers: int, dtype: str) -> str:
    """What a capture writes, in words, for its free-space messages."""
    return f"the activations ({n_layers + 1} layers of {n_rows} x {hidden} {dtype})"


def _hidden_from(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _output_hidden(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def _reserved_memmap(path: Path, dtype: Any, shape: tuple[int, int]) -> np.memmap:
    """A new ``.npy`` file opened as a writable memory map, its blocks allocated now: on a full disk this
    raises ENOSPC, where writes through the map would kill the process with SIGBUS half way."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    fd = os.open(path, os.O_RDWR)
    try:
        reserve(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return array


@torch.inference_mode()
def capture_activations(
    model: torch.nn.Module,
    tokens: np.ndarray,
    out_dir: str | Path,
    batch_size: int = 8,
    dtype: str = "float16",
    tokens_per_sequence: int | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write ``layer_000.npy`` .. ``layer_{N:03d}.npy`` and ``manifest.json`` into the directory ``out_dir``.

    The directory appears only when the capture is complete (it is built under a temporary name).

    ``layer_i`` holds the hidden state entering block i for every captured token (row order:
    sequence-major, positions as in the manifest); ``layer_N`` is the last block's output before
    the final norm. Only the decoder stack runs (no LM head), one forward pass per batch.
    """
    if dtype not in _NP_DTYPES:
        raise ValueError(f"activation dtype must be one of {', '.join(_NP_DTYPES)}, got {dtype!r}")
    out_dir = Path(out_dir)
    layers = get_decoder_layers(model)
    n_layers = len(layers)
    n_samples, seqlen = tokens.shape
    positions = token_positions(n_samples, seqlen, tokens_per_sequence, seed)
    per_seq = positions.shape[1]
    hidden = int(model.config.get_text_config().hidden_size)
    n_rows = n_samples * per_seq
    device = next(model.parameters()).device
    body = get_decoder_stack(model)  # without the LM head

    # Refused before anything is written if the disk lacks the space; a write that finds none anyway (the
    # disk filled meanwhile) raises DiskFullError with the numbers, and the temporary directory is removed.
    # A killed capture's temporaries are removed first: their reserved space counts as free.
    remove_stale_temporaries(out_dir)
    with space_for(out_dir.parent, activation_bytes(n_rows, hidden, n_layers, dtype),
                   describe_activations(n_rows, hidden, n_layers, dtype)), \
            atomic_path(out_dir, directory=True) as tmp_dir:
        files = [_reserved_memmap(tmp_dir / f"layer_{i:03d}.npy", _NP_DTYPES[dtype], (n_rows, hidden))
                 for i in range(n_layers + 1)]
        state: dict[str, Any] = {}

        limit = float(np.finfo(_NP_DTYPES[dtype]).max)

        def store(layer: int, h: torch.Tensor) -> None:
            sel = h.gather(1, state["index"].to(h.device)).float()  # blocks may sit on several GPUs
            peak = float(sel.abs().amax())  # one reduction where the model runs; NaN propagates
            if not math.isfinite(peak):
                advice = ("try compute.dtype: float32" if h.dtype != torch.float32 else
                          "check the model's weights and the calibration tokens")
                raise FloatingPointError(
                    f"hidden states entering block {layer} contain {peak}: the forward pass itself failed in "
                    f"{dtype_name(h.dtype)}; {advice}")
            if peak > limit:
                raise OverflowError(
                    f"hidden states entering block {layer} reach {peak:.3g}, which {dtype} cannot store "
                    f"(max {limit:.3g}); set activations_dtype: float32 on this model in "
                    "models.<name> (or activations.dtype: float32 for all models); Gemma 2/3 models need it")
            files[layer][state["rows"]] = sel.cpu().numpy().reshape(-1, hidden)

        handles = [
            block.register_forward_pre_hook(
                lambda _m, args, kwargs, i=i: store(i, _hidden_from(args, kwargs)), with_kwargs=True)
            for i, block in enumerate(layers)
        ]
        handles.append(layers[-1].register_forward_hook(
            lambda _m, _args, output: store(n_layers, _output_hidden(output))))
        try:
            for start in range(0, n_samples, batch_size):
                stop = min(n_samples, start + batch_size)
                pos = torch.from_numpy(positions[start:stop]).to(device)
                state["index"] = pos.unsqueeze(-1).expand(-1, -1, hidden)
                state["rows"] = slice(start * per_seq, stop * per_seq)
                ids = torch.from_numpy(tokens[start:stop].astype(np.int64)).to(device)
                body(input_ids=ids, use_cache=False)
                if progress is not None:
                    progress(stop - start)
        finally:
            for h in handles:
                h.remove()
        for f in files:
            f.flush()
        del files

        last_rows = np.flatnonzero((positions == seqlen - 1).reshape(-1))
        manifest = {
            "n_layers": n_layers,
            "files": [f"layer_{i:03d}.npy" for i in range(n_layers + 1)],
            "meaning": "layer_i: hidden state entering decoder block i; layer_N: output of the last block "
                       "before the final norm",
            "shape": [n_rows, hidden],
            "dtype": dtype,
            "n_samples": n_samples,
            "seqlen": seqlen,
            "tokens_per_sequence": per_seq,
            "subsample_seed": seed if tokens_per_sequence else None,
            "positions": positions.tolist(),
            "last_token_rows": last_rows.tolist(),
        }
        write_json(tmp_dir / "manifest.json", manifest)
    return manifest
