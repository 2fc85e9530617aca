"""The pruned weights of a metric that updates them (SparseGPT), stored by the pruning stage and read by
every evaluation and export: its sparse model cannot be rebuilt from the base model and a mask.

One safetensors file per pruned model (``results/<model>/sparsity/<calib>/pruned/<name>.safetensors``)
holds, for every linear layer of every decoder block (key ``block03.mlp.down_proj``):

* ``<key>.values``: the weights it keeps, in row-major order, in the dtype the model was pruned in;
* ``<key>.keep``: where they are, the ``[out, in]`` boolean mask bit-packed in row-major order (uint8,
  :func:`numpy.packbits`);
* ``<key>.shape``: ``[out, in]`` (int64).

So a layer at sparsity s takes ``(1 - s)`` of its dense size plus one bit per weight. The file's metadata
holds ``n_blocks`` and ``dtype``. For a metric that only masks (Wanda, magnitude) the file holds no tensor
(``n_blocks`` only): its model is rebuilt from the norms it was pruned with.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import _umask, atomic_path
from ..models import get_decoder_layers
from .norms import block_linears, layer_key, parse_layer_key


def write_pruned_weights(path: str | Path, model: torch.nn.Module | None, n_blocks: int) -> None:
    """Store the linear layers of every decoder block of ``model`` (None: an empty file for a metric that only
    masks, ``n_blocks`` recorded either way)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    dtype = "none"
    if model is not None:
        for b, block in enumerate(get_decoder_layers(model)):
            for name, linear in block_linears(block).items():
                w = linear.weight.detach().cpu()
                keep = w != 0
                tensors[f"{layer_key(b, name)}.values"] = w[keep].contiguous()
                tensors[f"{layer_key(b, name)}.keep"] = torch.from_numpy(np.packbits(keep.numpy()))
                tensors[f"{layer_key(b, name)}.shape"] = torch.tensor(list(w.shape), dtype=torch.int64)
                dtype = str(w.dtype).removeprefix("torch.")
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"n_blocks": str(int(n_blocks)), "dtype": dtype})
        os.chmod(tmp, 0o666 & ~_umask())  # safetensors creates its file private; give it a plain file's mode


def _layers(fh: Any) -> list[tuple[int, str, str]]:
    """(block, layer name, key) of every layer a stored file holds."""
    out = []
    for k in fh.keys():
        if k.endswith(".values"):
            key = k.removesuffix(".values")
            out.append((*parse_layer_key(key), key))
    return out


def _dense(fh: Any, key: str) -> torch.Tensor:
    """One stored layer as its dense ``[out, in]`` weight (zeros where it was pruned)."""
    shape = [int(x) for x in fh.get_tensor(f"{key}.shape")]
    bits = fh.get_tensor(f"{key}.keep").numpy()
    keep = torch.from_numpy(np.unpackbits(bits, count=int(np.prod(shape))).astype(bool)).reshape(shape)
    values = fh.get_tensor(f"{key}.values")
    weight = torch.zeros(shape, dtype=values.dtype)
    weight[keep] = values
    return weight


def holds_weights(path: str | Path) -> bool:
    """Whether a stored file holds pruned weights (False for a metric that only masks)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        return bool(_layers(fh))


@torch.no_grad()
def load_pruned_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Put the pruned weights stored in ``path`` into ``model``'s decoder blocks in place, one layer at a time
    (each in the layer's own dtype and device; one dense layer in memory beside the model); every linear
    layer must have its weight there."""
    from safetensors import safe_open

    blocks = get_decoder_layers(model)
    with safe_open(str(path), "pt") as fh:
        n_blocks = int(fh.metadata()["n_blocks"])
        if len(blocks) != n_blocks:
            raise ValueError(f"the stored pruned weights are for {n_blocks} blocks, the model has {len(blocks)}")
        stored = {(b, name): key for b, name, key in _layers(fh)}
        for b, block in enumerate(blocks):
            for name, linear in block_linears(block).items():
                if (b, name) not in stored:
                    raise ValueError(f"the stored pruned weights have no block {b} {name}: rerun the sparse stage")
                weight = _dense(fh, stored[(b, name)])
                if tuple(weight.shape) != tuple(linear.weight.shape):
                    raise ValueError(f"block {b} {name}: stored weights of shape {tuple(weight.shape)}, the model's "
                                     f"are {tuple(linear.weight.shape)}")
                linear.weight.copy_(weight.to(device=linear.weight.device, dtype=linear.weight.dtype))
