"""Fine-tuned recovery: a short LoRA fine-tune of the pruned model with ``peft`` (Shortened LLaMA's
setting by default: rank 8, alpha 16, dropout 0.05 on the seven projections of every kept block).

The model is trained with next-token cross-entropy on windows of a corpus disjoint from the calibration and
evaluation data, ``batch_size`` windows drawn (with a seeded generator) per step, AdamW at a constant learning
rate. The adapter (``adapter_config.json``, ``adapter_model.safetensors``) is what the recover stage stores;
:func:`merge_adapter` rebuilds the recovered model from the pruned one and it, with the update merged into the
weights (``W + (alpha / r) B A``), so the recovered model is a plain Hugging Face model of the pruned shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The seven projections of a Llama-style block."""


def train_lora(model: torch.nn.Module, windows: np.ndarray, rank: int, alpha: float, dropout: float,
               targets: Sequence[str], steps: int, lr: float, batch_size: int, seed: int,
               progress: Callable[[dict[str, Any]], None] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """Fine-tune LoRA adapters on ``model`` (modified: wrapped by peft) over token ``windows`` [n, seqlen];
    returns the peft model and one log row per step (``step``, ``loss``, ``tokens`` seen so far)."""
    from peft import LoraConfig, get_peft_model

    if len(windows) < 1:
        raise ValueError("no training windows")
    torch.manual_seed(seed)
    config = LoraConfig(r=int(rank), lora_alpha=float(alpha), lora_dropout=float(dropout),
                        target_modules=list(targets), bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=float(lr), weight_decay=0.0)
    rng = np.random.default_rng(seed)
    device = next(peft_model.parameters()).device
    peft_model.train()
    log, tokens = [], 0
    for step in range(1, int(steps) + 1):
        index = rng.choice(len(windows), size=min(int(batch_size), len(windows)), replace=False)
        ids = torch.from_numpy(np.asarray(windows[np.sort(index)], dtype=np.int64)).to(device)
        loss = peft_model(input_ids=ids, labels=ids, use_cache=False).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        tokens += int(ids.numel())
        row = {"step": step, "loss": float(loss.detach()), "tokens": tokens}
        log.append(row)
        if progress is not None:
            progress(row)
    peft_model.eval()
    return peft_model, log


def save_adapter(peft_model: Any, out_dir: str | Path) -> None:
    """The adapter's config and weights (peft's own format) in ``out_dir``."""
    peft_model.save_pretrained(str(out_dir))


def merge_adapter(model: torch.nn.Module, adapter_dir: str | Path) -> torch.nn.Module:
    """``model`` (the pruned model the adapter was trained on) with the adapter of ``adapter_dir`` merged into
    its weights: a plain Hugging Face model again."""
    from peft import PeftModel

    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.eval()
    return merged
