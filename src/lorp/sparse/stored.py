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
from .norms import block_linears, norm_file


def _key(block: int, name: str) -> str:
    return norm_file(block, name).removesuffix(".npy")


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
                tensors[f"{_key(b, name)}.values"] = w[keep].contiguous()
                tensors[f"{_key(b, name)}.keep"] = torch.from_numpy(np.packbits(keep.numpy()))
                tensors[f"{_key(b, name)}.shape"] = torch.tensor(list(w.shape), dtype=torch.int64)
                dtype = str(w.dtype).removeprefix("torch.")
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"n_blocks": str(int(n_blocks)), "dtype": dtype})
        os.chmod(tmp, 0o666 & ~_umask())  # safetensors creates its file private; give it a plain file's mode


def read_pruned_weights(path: str | Path) -> list[dict[str, torch.Tensor]] | None:
    """The weights :func:`write_pruned_weights` stored, per block and layer name as dense ``[out, in]``
    tensors; None for a file that holds none (a metric that only masks)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        n_blocks = int(fh.metadata()["n_blocks"])
        keys = [k.removesuffix(".values") for k in fh.keys() if k.endswith(".values")]
        if not keys:
            return None
        blocks: list[dict[str, torch.Tensor]] = [{} for _ in range(n_blocks)]
        for key in keys:
            shape = [int(x) for x in fh.get_tensor(f"{key}.shape")]
            bits = fh.get_tensor(f"{key}.keep").numpy()
            keep = torch.from_numpy(np.unpackbits(bits, count=int(np.prod(shape))).astype(bool)).reshape(shape)
            values = fh.get_tensor(f"{key}.values")
            weight = torch.zeros(shape, dtype=values.dtype)
            weight[keep] = values
            head, name = key.split(".", 1)
            blocks[int(head.removeprefix("block"))][name] = weight
    return blocks


@torch.no_grad()
def load_pruned_weights(model: torch.nn.Module, weights: list[dict[str, Any]]) -> None:
    """Put stored pruned weights (:func:`read_pruned_weights`) into ``model``'s decoder blocks in place (each
    in the layer's own dtype and device); every linear layer must have its weight there."""
    blocks = get_decoder_layers(model)
    if len(blocks) != len(weights):
        raise ValueError(f"the stored pruned weights are for {len(weights)} blocks, the model has {len(blocks)}")
    for b, block in enumerate(blocks):
        for name, linear in block_linears(block).items():
            if name not in weights[b]:
                raise ValueError(f"the stored pruned weights have no block {b} {name}: rerun the sparse stage")
            stored = weights[b][name]
            if tuple(stored.shape) != tuple(linear.weight.shape):
                raise ValueError(f"block {b} {name}: stored weights of shape {tuple(stored.shape)}, the model's are "
                                 f"{tuple(linear.weight.shape)}")
            linear.weight.copy_(stored.to(device=linear.weight.device, dtype=linear.weight.dtype))
