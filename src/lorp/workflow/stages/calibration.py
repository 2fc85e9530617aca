"""Stages of the calibration data (``rules/calibration.smk``) and of the activations captured on it
(``rules/activations.smk``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm.auto import tqdm

from ... import data
from ...io import read_json, remove_stale_temporaries, write_json, write_npy


def sample_calibration(model_dir: str | Path, spec: Mapping[str, Any], tokens_path: str | Path,
                       meta_path: str | Path) -> dict[str, Any]:
    """Stage 1: calibration windows (int32 [n_samples, seqlen]) and their description."""
    from ... import models

    tokenizer = models.load_tokenizer(models.source_of(model_dir)[0])
    windows, meta = data.calibration_tokens(spec, tokenizer)
    meta.update(shape=list(windows.shape), dtype="int32", spec=dict(spec))
    write_npy(tokens_path, windows)
    write_json(meta_path, meta)
    return meta


def sample_held_out(model_dir: str | Path, spec: Mapping[str, Any], held_out: int, calibration_path: str | Path,
                    tokens_path: str | Path, meta_path: str | Path) -> dict[str, Any]:
    """Stage 1b: ``held_out`` calibration windows no stage has seen, those that follow the calibration's own
    in the same draw (the spec with ``n_samples + held_out``), for the ``auto`` method's choice; the draw's
    first windows must be the calibration tokens at ``calibration_path``, else it stops (the sampling would
    not be the calibration's)."""
    from ... import models

    tokenizer = models.load_tokenizer(models.source_of(model_dir)[0])
    n = int(spec["n_samples"])
    windows, meta = data.calibration_tokens({**spec, "n_samples": n + int(held_out)}, tokenizer)
    if not np.array_equal(windows[:n], np.load(calibration_path)):
        raise RuntimeError(f"the first {n} windows of a draw of {n + held_out} differ from the calibration tokens "
                           f"{calibration_path}; the held-out windows would not be disjoint from them")
    meta = {"held_out_from": dict(spec), "window_index": list(range(n, n + int(held_out))),
            "shape": [int(held_out), int(windows.shape[1])], "dtype": "int32",
            **{k: v[n:] for k, v in meta.items() if k in ("window_starts", "document_indices")}}
    write_npy(tokens_path, windows[n:])
    write_json(meta_path, meta)
    return meta


def capture(model_dir: str | Path, tokens_path: str | Path, out_dir: str | Path, params: Mapping[str, Any],
            compute: Mapping[str, Any], batch_size: int) -> dict[str, Any]:
    """Stage 2: hidden states entering every block, one ``.npy`` per layer (``params``: the
    activation slice, dtype, tokens_per_sequence and seed)."""
    from ... import models
    from ...capture import activation_bytes, capture_activations, describe_activations, token_positions
    from ...disk import require_free

    tokens = np.load(tokens_path)
    manifest = read_json(Path(model_dir) / "model.json")
    if "hidden_size" in manifest and "num_hidden_layers" in manifest:  # refused before the model loads
        n_rows = token_positions(*tokens.shape, params["tokens_per_sequence"], int(params["seed"])).size
        shape = (n_rows, int(manifest["hidden_size"]), int(manifest["num_hidden_layers"]), params["dtype"])
        remove_stale_temporaries(Path(out_dir))  # a killed capture's reserved files are space to be had
        require_free(Path(out_dir).parent, activation_bytes(*shape), describe_activations(*shape))
    model, _, _ = models.load_for(model_dir, compute)
    start = time.perf_counter()
    with tqdm(total=len(tokens), desc="capture", unit="seq") as bar:
        manifest = capture_activations(model, tokens, out_dir, batch_size=int(batch_size), dtype=params["dtype"],
                                       tokens_per_sequence=params["tokens_per_sequence"], seed=int(params["seed"]),
                                       progress=bar.update)
    print(f"captured {manifest['shape'][0]} tokens x {manifest['n_layers'] + 1} layers in "
          f"{time.perf_counter() - start:.1f} s")
    return manifest
