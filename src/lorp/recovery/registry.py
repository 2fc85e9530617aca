"""The recovery methods: each one registration (its parameters with their defaults, what it reads, how it
fits and how it rebuilds the recovered model), as the depth methods and sparse allocations are registered.

A recovery runs after a depth plan: ``fit`` writes what is needed to rebuild the recovered model into the
recover stage's directory and returns its log rows; ``rebuild`` turns the pruned model into the recovered
one in memory from that directory (as the evaluations and exports build every model); ``export`` says which
files a checkpoint carries beside its weights to be reloaded (:func:`lorp.recovery.load_recovered`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..registry import Registry, parameter_defaults, parameters_schema

if TYPE_CHECKING:  # the config check imports this registry: no torch there
    import torch

PATCH_FILE = "patches.npz"
ADAPTER_DIR = "adapter"


@dataclass
class RecoverInputs:
    """What a recovery's fit may read: the stored activations of the plan's calibration (``activations``),
    and a loader of the pruned model on the compute device with its tokenizer (``pruned``) with the training
    corpus' spec (``data``) for the fine-tuned ones."""

    activations: Path | None = None
    pruned: Callable[[], tuple[torch.nn.Module, Any]] | None = None
    data: Mapping[str, Any] | None = None

    def require(self, name: str, recovery: str) -> Any:
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"recovery {recovery!r} needs {name}, which its rule did not give")
        return value


@dataclass(frozen=True)
class Recovery:
    """A recovery method.

    Attributes:
        name: the key under ``recovery.methods`` and the suffix of its models (``{method}-{budget}+{name}``).
        fit: ``fit(inputs, plan, params, out_dir) -> log rows`` (a plan's JSON; writes into ``out_dir``).
        rebuild: ``rebuild(pruned_model, plan, out_dir) -> model``: the recovered model from the pruned one.
        parameters: each parameter's JSON-schema fragment, with its default (the config schema is built
            from them).
        inputs: what the recover rule gives its fit: ``activations`` (the plan's stored calibration
            activations) or ``model`` (the prepared model, and the training corpus).
        fused: whether the recovered model is a plain Hugging Face model (its checkpoint needs no loader).
        linestyle: its line style in the figures (the colour is the depth method's).
        summary: one line for the docs and the config schema.
    """

    name: str
    fit: Callable[[RecoverInputs, Mapping[str, Any], Mapping[str, Any], Path], list[dict[str, Any]]]
    rebuild: Callable[[torch.nn.Module, Mapping[str, Any], Path], torch.nn.Module]
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    inputs: tuple[str, ...] = ("activations",)
    fused: bool = True
    linestyle: str = "--"
    summary: str = ""

    def defaults(self) -> dict[str, Any]:
        return parameter_defaults(self.parameters)

    def schema(self) -> dict[str, Any]:
        """The JSON schema of ``recovery.methods.<name>`` in the config."""
        return parameters_schema(self.parameters, self.summary)


RECOVERIES: Registry[Recovery] = Registry("recovery")
"""Every recovery method by name, in declaration order."""

RECOVERY_SEPARATOR = "+"
"""Between a pruned model's name and its recovery's: ``lorp-8+patch``; its rows' method is ``lorp+patch``."""


def register(recovery: Recovery) -> Recovery:
    return RECOVERIES.add(recovery)


def get_recovery(name: str) -> Recovery:
    return RECOVERIES.lookup(name)


def recovered_name(method: str, recovery: str | None) -> str:
    """A recovered model's rows' method, ``shortgpt+patch``; ``method`` itself without a recovery."""
    return f"{method}{RECOVERY_SEPARATOR}{recovery}" if recovery else method


def split_recovered(method: str) -> tuple[str, str | None]:
    """A row's method ``shortgpt+patch`` as ``("shortgpt", "patch")``; ``("shortgpt", None)`` otherwise."""
    base, sep, recovery = method.partition(RECOVERY_SEPARATOR)
    return (base, recovery) if sep and recovery in RECOVERIES else (method, None)


# ---------------------------------------------------------------- patch
def _fit_patch(inputs: RecoverInputs, plan: Mapping[str, Any], params: Mapping[str, Any],
               out_dir: Path) -> list[dict[str, Any]]:
    from .patch import fit_plan_patches, save_patches

    patches = fit_plan_patches(inputs.require("activations", "patch"), plan["pruned"], int(plan["n_layers"]),
                               float(params["ridge"]))
    save_patches(out_dir / PATCH_FILE, patches)
    return [{"span": i, "start": p.start, "length": p.length, "n_tokens": p.n_tokens, "lam": p.lam,
             "mse_identity": p.baseline, "mse_patch": p.residual,
             "explained": 1.0 - p.residual / p.baseline if p.baseline > 0 else 0.0}
            for i, p in enumerate(patches)]


def _rebuild_patch(model: torch.nn.Module, plan: Mapping[str, Any], out_dir: Path) -> torch.nn.Module:
    from .attach import attach, patch_targets
    from .patch import load_patches

    spans = load_patches(Path(out_dir) / PATCH_FILE)
    targets = patch_targets(plan["pruned"], int(plan["n_layers"]), [(s, n) for s, n, _ in spans])
    return attach(model, targets, [d for _, _, d in spans])


register(Recovery(
    name="patch",
    fit=_fit_patch,
    rebuild=_rebuild_patch,
    parameters={"ridge": {"type": "number", "minimum": 0, "default": 0.01,
                          "description": "ridge strength relative to the mean squared coordinate of the span's "
                                         "input (0: least squares; large: the identity, plain pruning)"}},
    inputs=("activations",),
    fused=False,
    linestyle="--",
    summary="closed-form patch: per removed span, I + D fitted on the stored activations (ridge toward I)",
))


# ---------------------------------------------------------------- lora
def _fit_lora(inputs: RecoverInputs, plan: Mapping[str, Any], params: Mapping[str, Any],
              out_dir: Path) -> list[dict[str, Any]]:
    from .. import data
    from ..evaluation.perplexity import make_windows
    from .lora import save_adapter, train_lora

    model, tokenizer = inputs.require("pruned", "lora")()
    spec = inputs.require("data", "lora")
    stream = data.tokenize_stream(data.load_texts(spec, "recovery"), tokenizer, spec["join"])
    windows = make_windows(stream, int(params["seqlen"]), params["max_windows"])
    print(f"lora: {len(windows)} windows of {params['seqlen']} tokens from {spec['source']}")
    last = {}

    def progress(row: Mapping[str, Any]) -> None:
        if row["step"] == 1 or row["step"] % 10 == 0 or row["step"] == params["steps"]:
            print(f"step {row['step']}: loss {row['loss']:.4f}")
        last.update(row)

    peft_model, log = train_lora(model.float(), windows, params["rank"], params["alpha"], params["dropout"],
                                 params["targets"], params["steps"], params["lr"], params["batch_size"],
                                 params["seed"], progress)
    save_adapter(peft_model, out_dir / ADAPTER_DIR)
    return log


def _rebuild_lora(model: torch.nn.Module, plan: Mapping[str, Any], out_dir: Path) -> torch.nn.Module:
    from .lora import merge_adapter

    return merge_adapter(model, Path(out_dir) / ADAPTER_DIR)


register(Recovery(
    name="lora",
    fit=_fit_lora,
    rebuild=_rebuild_lora,
    parameters={
        "rank": {"type": "integer", "minimum": 1, "default": 8, "description": "LoRA rank r"},
        "alpha": {"type": "number", "exclusiveMinimum": 0, "default": 16, "description": "LoRA alpha (scale alpha / r)"},
        "dropout": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.05, "description": "LoRA dropout"},
        "targets": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True,
                    "default": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                    "description": "the projections of every kept block that get an adapter"},
        "steps": {"type": "integer", "minimum": 1, "default": 100, "description": "optimiser steps"},
        "lr": {"type": "number", "exclusiveMinimum": 0, "default": 1e-4, "description": "AdamW learning rate (constant)"},
        "batch_size": {"type": "integer", "minimum": 1, "default": 4, "description": "windows per step"},
        "seqlen": {"type": "integer", "minimum": 8, "default": 256, "description": "tokens per window"},
        "max_windows": {"type": ["integer", "null"], "minimum": 1, "default": None,
                        "description": "use only the first windows of the corpus (null: all)"},
        "seed": {"type": "integer", "minimum": 0, "default": 0, "description": "adapter initialisation and batches"},
        "data": {"$ref": "#/$defs/corpus", "default": {"source": "../shared/data/c4/c4_validation_2k_sample.jsonl"},
                 "description": "the training corpus (as a calibration source); disjoint from every calibration "
                                "and evaluation corpus of the config"},
    },
    inputs=("model",),
    fused=True,
    linestyle=":",
    summary="LoRA fine-tune with peft of the pruned model (merged into its weights)",
))
