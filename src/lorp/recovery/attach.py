"""Where the patches sit in a pruned model, and how they are attached (in memory, and again on reload).

A span ``s .. s+n-1`` removed from an ``N``-block model leaves block ``s+n`` as the first kept block after it
(or, for a span that ends the stack, the final norm). Its patch ``P = I + D`` is applied to the hidden state
entering that module, by a forward pre-hook: ``h <- h + h D^T``, computed in float32 and cast back to the
model's dtype. The pruned model's modules, names and state dict stay those of a plain Hugging Face model (the
patch is not a registered submodule), so checkpoints save and load as any other, peft finds the same
projections, and the patches travel beside the weights (``recovery/patches.npz``) and are attached again by
:func:`lorp.recovery.load_recovered`.

A patch cannot be fused exactly into existing weights: the block after the span reads ``h`` twice, through
its RMSNorm (which is not linear in ``h``) and through the residual connection, and the block before the span
writes ``h`` as the sum of its input and its updates; only a span starting at block 0 could be folded into
the embedding matrix, which this module does not special-case.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..models import get_decoder_layers

FINAL_NORM = -1
"""The target of a span that ends the stack: the final norm (before the LM head)."""

HOOKS_ATTR = "_lorp_patch_hooks"


class Patch(torch.nn.Module):
    """``h + h D^T`` over the last dimension, in float32 (``D`` held as a buffer on the target's device)."""

    def __init__(self, delta: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.register_buffer("delta", torch.as_tensor(np.asarray(delta), dtype=torch.float32).to(device))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        correction = hidden.to(torch.float32) @ self.delta.T.to(hidden.device)
        return (hidden.to(torch.float32) + correction).to(hidden.dtype)


def patch_targets(pruned: Sequence[int], n_layers: int, starts_lengths: Sequence[tuple[int, int]]) -> list[int]:
    """For each span ``(start, length)`` of a plan removing ``pruned`` from ``n_layers`` blocks, the index in
    the pruned model of the block its patch precedes, or :data:`FINAL_NORM`."""
    kept = [i for i in range(n_layers) if i not in set(int(b) for b in pruned)]
    out = []
    for start, length in starts_lengths:
        after = start + length
        if any(start <= k < after for k in kept):
            raise ValueError(f"span {start}..{after - 1} holds kept blocks of the plan")
        out.append(FINAL_NORM if after == n_layers else kept.index(after))
    return out


def _module(model: torch.nn.Module, target: int) -> torch.nn.Module:
    return model.model.norm if target == FINAL_NORM else get_decoder_layers(model)[target]


def attach(model: torch.nn.Module, targets: Sequence[int], deltas: Sequence[np.ndarray]) -> torch.nn.Module:
    """Apply each ``I + deltas[i]`` to the hidden state entering ``targets[i]`` (a kept block's index in the
    pruned ``model``, or :data:`FINAL_NORM`), in place; returns ``model``."""
    for target, delta in zip(targets, deltas, strict=True):
        module = _module(model, target)
        device = next(module.parameters()).device
        patch = Patch(delta, device)

        def pre_hook(_module, args, kwargs, patch=patch):
            if args:
                return (patch(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": patch(kwargs["hidden_states"])}

        handle = module.register_forward_pre_hook(pre_hook, with_kwargs=True)
        hooks = module.__dict__.setdefault(HOOKS_ATTR, [])
        hooks.append((handle, patch))
    return model


def detach(model: torch.nn.Module) -> None:
    """Remove every patch :func:`attach` placed (the pruned model again)."""
    for module in model.modules():
        for handle, _ in module.__dict__.pop(HOOKS_ATTR, []):
            handle.remove()


def patch_tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """The correction ``D`` of every patch :func:`attach` placed on ``model`` (none for a model without):
    what a patched model holds beyond its parameters."""
    return [patch.delta for module in model.modules() for _, patch in module.__dict__.get(HOOKS_ATTR, [])]
