"""Remove decoder blocks from a Hugging Face causal LM, keeping its config consistent (a pruned model
saves and reloads as any Hugging Face checkpoint: :func:`lorp.workflow.stages.model.export_checkpoint`)."""

from __future__ import annotations

from typing import Sequence

import torch

from ..models import get_decoder_layers, set_decoder_layers


def prune_layers(model: torch.nn.Module, pruned: Sequence[int]) -> torch.nn.Module:
    """Remove the blocks ``pruned`` from ``model`` in place and return it.

    Keeps the config consistent with the new depth: ``num_hidden_layers`` is set to the kept
    count, every per-layer list of length N in the (text) config (``layer_types`` and the like)
    is cut to the kept blocks, and each kept block's ``layer_idx`` attributes (used by the KV
    cache) are renumbered 0..kept-1. The blocks are found, and put back, where the model's family keeps
    them (``model.model.layers``, OPT's ``model.model.decoder.layers``: :mod:`lorp.architectures`); nothing
    else depends on the depth in the families supported (OPT's learned positions are per token, not per block).
    """
    layers = get_decoder_layers(model)
    n = len(layers)
    removed = set(int(i) for i in pruned)
    if any(not 0 <= i < n for i in removed):
        raise ValueError(f"layers {sorted(removed)} out of range for a {n}-layer model")
    kept = [i for i in range(n) if i not in removed]
    if not kept:
        raise ValueError("cannot remove every decoder block")

    set_decoder_layers(model, torch.nn.ModuleList([layers[i] for i in kept]))
    configs = {id(model.config): model.config}
    text_config = model.config.get_text_config()
    configs[id(text_config)] = text_config
    for cfg in configs.values():
        for key, value in list(vars(cfg).items()):
            if key.startswith("_"):
                continue
            if isinstance(value, (list, tuple)) and len(value) == n:
                setattr(cfg, key, type(value)(value[i] for i in kept))
        if hasattr(cfg, "num_hidden_layers"):
            cfg.num_hidden_layers = len(kept)
    for new_idx, block in enumerate(get_decoder_layers(model)):
        for module in block.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_idx
    return model
