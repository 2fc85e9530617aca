"""Recovery after depth pruning: the closed-form patch (:mod:`.patch`, attached by :mod:`.attach`) and a LoRA
fine-tune with peft (:mod:`.lora`), each one registration in :mod:`.registry`.

A recovered model is named ``{method}-{budget}+{recovery}`` (its rows' method is ``{method}+{recovery}``); it is
built in memory from the prepared model, the plan and the recover stage's directory (:func:`recover_model`),
and an exported one reloads offline with :func:`load_recovered`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # the config check imports the registry, under this package: no torch there
    import torch

    from .registry import Recovery

RECOVERY_RECORD = "recovery.json"
"""The file of an exported recovered checkpoint that names its recovery and the patches to attach."""


def recovery_of(recovery_dir: str | Path) -> Recovery:
    """The registered recovery that wrote the recover stage's output ``recovery_dir`` (its ``recovery.json``)."""
    from ..io import read_json
    from .registry import get_recovery

    return get_recovery(read_json(Path(recovery_dir) / RECOVERY_RECORD)["recovery"])


def recover_model(model: torch.nn.Module, plan: Mapping[str, Any], recovery_dir: str | Path) -> torch.nn.Module:
    """The pruned ``model`` (pruned to ``plan`` already) recovered by the recover stage's output
    ``recovery_dir``, whose ``recovery.json`` names the recovery."""
    return recovery_of(recovery_dir).rebuild(model, plan, Path(recovery_dir))


def recovery_records(plan: Mapping[str, Any], recovery_dir: str | Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """What an exported recovered checkpoint carries beside its weights, as (JSON records, files to copy):
    ``recovery.json`` (the recovery, its parameters, and for a patch where each one sits in the pruned model)
    and ``recovery/patches.npz``; a fused recovery (LoRA, merged) needs no file."""
    from ..io import read_json
    from .attach import patch_targets
    from .patch import load_patches
    from .registry import PATCH_FILE

    source = Path(recovery_dir)
    record = dict(read_json(source / RECOVERY_RECORD))
    record.pop("plan", None)  # the checkpoint's plan.json
    files = {}
    if (source / PATCH_FILE).is_file():
        spans = [(s, n) for s, n, _ in load_patches(source / PATCH_FILE)]
        record.update(patch_file=f"recovery/{PATCH_FILE}",
                      patch_targets=patch_targets(plan["pruned"], int(plan["n_layers"]), spans))
        files[record["patch_file"]] = source / PATCH_FILE
    return {RECOVERY_RECORD: record}, files


def load_recovered(checkpoint_dir: str | Path, device: str = "cpu", dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A recovered checkpoint written by the workflow (``checkpoints.export``), offline: the Hugging Face
    weights, and where its ``recovery.json`` names patches (``recovery/patches.npz``), those attached before
    the blocks that follow each removed span (:mod:`lorp.recovery.attach`). A LoRA checkpoint holds merged
    weights and loads as any Hugging Face model."""
    from transformers import AutoModelForCausalLM

    from ..io import read_json
    from .attach import attach
    from .patch import load_patches

    root = Path(checkpoint_dir)
    model = AutoModelForCausalLM.from_pretrained(root, dtype=dtype or "auto", local_files_only=True).to(device)
    model.eval()
    record = read_json(root / RECOVERY_RECORD)
    if record.get("patch_file"):
        spans = load_patches(root / record["patch_file"])
        attach(model, record["patch_targets"], [d for _, _, d in spans])
    return model
