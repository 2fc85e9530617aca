"""Input norms of the linear layers of every decoder block: Wanda's ``||X_j||_2``, the L2 norm of each
input feature over every calibration token (and, for SparseGPT, the Hessians ``2 X X^T / n`` of the same
inputs, measured by the same sequential protocol).

* :func:`dense_input_norms`: one forward pass of the dense model (``norms: dense``), as MRP's and
  OWL's allocations use them.
* :func:`prune_sequentially`: Wanda's own protocol (``norms: sequential``): block by block, the norms of
  block b are measured on the outputs of blocks 0..b-1 as already pruned, then block b is pruned before
  its outputs feed block b+1. One pass of the model records each block's keyword arguments (attention masks,
  position embeddings, which differ between layer types in Gemma) without running any block, then
  every block runs twice: to measure its norms (up to its last linear layer's input) and, pruned, to
  compute its outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..models import get_decoder_layers, get_decoder_stack


def block_linears(block: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The linear layers of a decoder block by their name inside it (``self_attn.q_proj``, ``mlp.down_proj``, ...;
    OPT's ``self_attn.out_proj``, ``fc1``, ``fc2``)."""
    return {name: m for name, m in block.named_modules() if isinstance(m, torch.nn.Linear)}


def block_shapes(model: torch.nn.Module) -> list[dict[str, list[int]]]:
    """Every block's linear layers as name -> [out_features, in_features] (works on the meta device)."""
    return [{name: [lin.out_features, lin.in_features] for name, lin in block_linears(block).items()}
            for block in get_decoder_layers(model)]


class _Measured(Exception):
    """Raised once the last linear layer a block's forward pass calls has had its input measured: the rest
    of that pass (the layer's product, the residual) cannot change any norm."""


class _SumOfSquares:
    """Forward pre-hooks that add each linear input's squared features, per block and layer, in float64.

    With ``stop=True`` (one block), the first forward pass counts the hook calls; every later pass raises
    :class:`_Measured` at its last hook call, so that it skips the block's last product (``down_proj``,
    a quarter of a Llama block's) that no norm depends on."""

    def __init__(self, blocks: list[torch.nn.Module], stop: bool = False):
        self.sums: list[dict[str, torch.Tensor]] = [{} for _ in blocks]
        self._last: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        self.calls, self.stop_at, self._stop = 0, 0, stop
        self.handles = [lin.register_forward_pre_hook(self._hook(b, name))
                        for b, block in enumerate(blocks) for name, lin in block_linears(block).items()]

    def next_pass(self) -> None:
        """Before each forward pass (with ``stop``): the first pass's number of hook calls is where the
        later ones stop."""
        if self._stop and not self.stop_at:
            self.stop_at = self.calls
        self.calls = 0

    def _hook(self, b: int, name: str) -> Callable:
        def hook(module: torch.nn.Linear, args: tuple) -> None:
            x = args[0]
            if x is self._last[0]:  # q, k, v (and gate, up) read the same tensor: measure it once
                self._share(b, name, self._last[1])
            else:
                self._last = (x, self._add(b, name, module, x))
            self.calls += 1
            if self.calls == self.stop_at:
                raise _Measured
        return hook

    def _add(self, b: int, name: str, module: torch.nn.Linear, x: torch.Tensor) -> Any:
        total = x.detach().reshape(-1, module.in_features).double().pow(2).sum(dim=0)
        self._share(b, name, total)
        return total

    def _share(self, b: int, name: str, total: Any) -> None:
        self.sums[b][name] = self.sums[b][name] + total if name in self.sums[b] else total

    def result(self, b: int) -> dict[str, Any]:
        """Block ``b``'s measurement: each linear layer's input norms (``[in]``, float64)."""
        return {name: s.sqrt().cpu().numpy() for name, s in self.sums[b].items()}

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self._last = (None, None)


class _Hessians(_SumOfSquares):
    """The same hooks, accumulating ``H = 2 X X^T / n`` of each linear layer's inputs
    (:class:`lorp.sparse.sparsegpt.HessianAccumulator`, in ``dtype``); layers that read the same tensor
    share one Hessian."""

    def __init__(self, blocks: list[torch.nn.Module], stop: bool = False, dtype: torch.dtype = torch.float32):
        self.dtype = dtype
        super().__init__(blocks, stop)

    def _add(self, b: int, name: str, module: torch.nn.Linear, x: torch.Tensor) -> Any:
        from .sparsegpt import HessianAccumulator

        acc = self.sums[b].get(name) or HessianAccumulator(module.in_features, self.dtype)
        acc.add(x)
        self.sums[b][name] = acc
        return acc

    def _share(self, b: int, name: str, acc: Any) -> None:
        self.sums[b][name] = acc

    def result(self, b: int) -> dict[str, torch.Tensor]:
        """Block ``b``'s measurement: each linear layer's Hessian (``[in, in]``)."""
        return {name: acc.hessian for name, acc in self.sums[b].items()}


def _batches(tokens: np.ndarray, batch_size: int, device: torch.device):
    for start in range(0, len(tokens), batch_size):
        yield torch.from_numpy(np.asarray(tokens[start:start + batch_size], dtype=np.int64)).to(device)


@torch.inference_mode()
def dense_input_norms(model: torch.nn.Module, tokens: np.ndarray, batch_size: int = 8,
                      progress: Callable[[int], None] | None = None) -> list[dict[str, np.ndarray]]:
    """For every block, each linear layer's input norms ([in_features], float64) over ``tokens`` [n, seqlen]."""
    blocks = list(get_decoder_layers(model))
    device = next(model.parameters()).device
    acc = _SumOfSquares(blocks)
    try:
        for ids in _batches(tokens, batch_size, device):
            get_decoder_stack(model)(input_ids=ids, use_cache=False)
            if progress is not None:
                progress(len(ids))
    finally:
        acc.remove()
    return [acc.result(b) for b in range(len(blocks))]


def obs_scales(model: torch.nn.Module, tokens: np.ndarray, damping: float, dtype: torch.dtype = torch.float32,
               batch_size: int = 8, progress: Callable[[int], None] | None = None) -> list[dict[str, np.ndarray]]:
    """For every block, each linear layer's :func:`lorp.sparse.sparsegpt.obs_input_scales` (``[in]``, float64)
    on the dense model: the Hessians of the sequential protocol with nothing pruned (one block's Hessians in
    memory at a time), each reduced to SparseGPT's per-input factor with ``damping``."""
    from .sparsegpt import obs_input_scales

    out: list[dict[str, np.ndarray]] = []

    def record(b: int, hessians: dict[str, torch.Tensor]) -> None:
        out.append({name: obs_input_scales(h, damping).double().cpu().numpy() for name, h in hessians.items()})

    prune_sequentially(model, tokens, record, batch_size=batch_size, progress=progress, hessians=dtype)
    return out


def _output_hidden(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


@torch.inference_mode()
def prune_sequentially(model: torch.nn.Module, tokens: np.ndarray,
                       prune_block: Callable[[int, dict[str, Any]], None], batch_size: int = 8,
                       progress: Callable[[int], None] | None = None, hessians: torch.dtype | None = None,
                       ) -> list[dict[str, Any] | None]:
    """Wanda's sequential protocol; ``prune_block(b, norms)`` prunes block b in place from its norms.

    Returns the norms each block was pruned with. With a ``prune_block`` that prunes nothing they equal
    :func:`dense_input_norms` (up to float rounding). With ``hessians`` (a dtype), SparseGPT's protocol
    instead: ``prune_block(b, hessians)`` gets each linear layer's ``2 X X^T / n`` in that dtype, and
    None is returned for every block (a block's Hessians are freed once it is pruned).
    """
    blocks = list(get_decoder_layers(model))
    device = next(model.parameters()).device
    hidden: list[torch.Tensor] = []
    calls: list[list[tuple[tuple, dict]]] = [[] for _ in blocks]  # per block, per batch: (args, kwargs)

    def recorder(b: int) -> Callable:
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            if b == 0:
                hidden.append((args[0] if args else kwargs["hidden_states"]).detach().clone())
            rest = {k: v for k, v in kwargs.items() if k != "hidden_states"}
            calls[b].append((tuple(args[1:]), rest))
        return hook

    def passthrough(*args: Any, **kwargs: Any) -> torch.Tensor:
        return args[0] if args else kwargs["hidden_states"]

    # The recording pass runs no block: each block's forward is replaced by the identity while its
    # pre-hook records what the model hands it (Wanda's reference stops at the first block instead,
    # which misses per-layer masks and rotary embeddings, as Gemma's local and global layers have).
    handles = [block.register_forward_pre_hook(recorder(b), with_kwargs=True) for b, block in enumerate(blocks)]
    for block in blocks:
        block.forward = passthrough
    try:
        for ids in _batches(tokens, batch_size, device):
            get_decoder_stack(model)(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
        for block in blocks:
            del block.forward

    used = []
    for b, block in enumerate(blocks):
        # The measuring pass stops at the block's last linear input, except under accelerate's hooks
        # (device_map), whose post-forward step (offloaded weights going back) must run.
        stop = not hasattr(block, "_hf_hook")
        acc = _SumOfSquares([block], stop) if hessians is None else _Hessians([block], stop, hessians)
        try:
            for i, h in enumerate(hidden):
                args, kwargs = calls[b][i]
                acc.next_pass()
                try:
                    block(h, *args, **kwargs)
                except _Measured:
                    pass
        finally:
            acc.remove()
        measured = acc.result(0)
        prune_block(b, measured)
        used.append(measured if hessians is None else None)
        del acc, measured
        hidden = [_output_hidden(block(h, *calls[b][i][0], **calls[b][i][1])) for i, h in enumerate(hidden)]
        if progress is not None:
            progress(1)
    return used


def layer_key(block: int, name: str) -> str:
    """One linear layer's key in the sparse stage's files: ``block03.mlp.down_proj``."""
    return f"block{block:02d}.{name}"


def parse_layer_key(key: str) -> tuple[int, str]:
    """``block03.mlp.down_proj`` as ``(3, "mlp.down_proj")`` (:func:`layer_key`'s inverse)."""
    head, name = key.split(".", 1)
    return int(head.removeprefix("block")), name


def norm_file(block: int, name: str) -> str:
    """The file of one layer's input norms in a norms directory: ``block03.mlp.down_proj.npy``."""
    return f"{layer_key(block, name)}.npy"


def read_norms(directory: str | Path) -> list[dict[str, np.ndarray]]:
    """The input norms written by the norms stage: per block, each linear layer's ``[in_features]`` norms."""
    from ..io import read_json

    directory = Path(directory)
    manifest = read_json(directory / "manifest.json")
    return [{name: np.load(directory / norm_file(b, name)) for name in manifest["layers"]}
            for b in range(manifest["n_blocks"])]


def write_pruning_norms(path: str | Path, used: list[dict[str, np.ndarray] | None]) -> None:
    """The norms every block was pruned with (what :func:`lorp.sparse.prune.prune_to_plan` returns), as one
    ``.npz`` with an entry per layer (``block03.mlp.down_proj``); empty for magnitude (no norms)."""
    from ..io import atomic_path

    arrays = {layer_key(b, name): np.asarray(values, dtype=np.float64)
              for b, block in enumerate(used) if block is not None for name, values in block.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, n_blocks=np.int64(len(used)), **arrays)


def read_pruning_norms(path: str | Path) -> list[dict[str, np.ndarray] | None]:
    """The norms :func:`write_pruning_norms` wrote, per block (None for every block of a magnitude plan)."""
    with np.load(path) as data:
        blocks: list[dict[str, np.ndarray] | None] = [None] * int(data["n_blocks"])
        for key in data.files:
            if key == "n_blocks":
                continue
            b, name = parse_layer_key(key)
            blocks[b] = {**(blocks[b] or {}), name: data[key]}
    return blocks
