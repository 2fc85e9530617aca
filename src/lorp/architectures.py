"""What differs between the decoder-only architectures the workflow runs, by ``config.model_type``: where a
causal LM keeps its decoder blocks and its decoder stack. This table is the one place that knows; the rest of
the package asks :func:`lorp.models.get_decoder_layers` and :func:`lorp.models.get_decoder_stack`, and finds
a block's linear layers by walking its modules (:func:`lorp.sparse.norms.block_linears`), whatever their names
(``q_proj`` .. ``down_proj`` in Llama, ``out_proj``, ``fc1``, ``fc2`` in OPT).

It imports no torch. The supported families, and how each is tested, are in docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Where a causal LM keeps its parts, as dotted attribute paths from the ``*ForCausalLM`` module."""

    blocks: str
    """The ``ModuleList`` of decoder blocks, in order (what depth pruning cuts and sparse pruning walks)."""
    stack: str
    """The decoder stack without the LM head: called with ``input_ids`` and ``use_cache``, it embeds the
    tokens (and learned positions, where the family has them), runs the blocks and the final norm, and returns
    ``last_hidden_state``; the LM head is ``lm_head``."""


DEFAULT_LAYOUT = Layout(blocks="model.layers", stack="model")
"""Llama and the families built like it (Qwen2/3, Mistral, OLMo, Gemma 1/2/3), and any causal LM whose blocks
are at ``model.model.layers``."""

LAYOUTS: dict[str, Layout] = {
    # OPT: OPTForCausalLM.model is an OPTModel whose decoder holds the blocks, the token and learned position
    # embeddings, the final layer norm and the optional projections in and out; OPTModel returns the last hidden
    # state after all of them, as LlamaModel does.
    "opt": Layout(blocks="model.decoder.layers", stack="model"),
    # Gemma 3 with its vision tower (4B and larger; Gemma3ForConditionalGeneration): the text model is
    # model.language_model, the blocks its layers; the text-only 270M and 1B (gemma3_text) are built like Llama.
    "gemma3": Layout(blocks="model.language_model.layers", stack="model.language_model"),
}
"""The families whose layout differs from :data:`DEFAULT_LAYOUT`, by ``config.model_type``."""

SUPPORTED_FAMILIES = ("llama", "qwen2", "qwen3", "mistral", "olmo", "olmo2", "gemma", "gemma2", "gemma3",
                      "gemma3_text", "opt")
"""The model types run by the workflow (docs/models.md says how each is tested)."""


def layout_of(model_type: str | None) -> Layout:
    """The layout of a ``config.model_type`` (:data:`DEFAULT_LAYOUT` for any type not in :data:`LAYOUTS`)."""
    return LAYOUTS.get(str(model_type), DEFAULT_LAYOUT)


def describe_layouts() -> str:
    """Where the blocks are looked for, for error messages: ``model.layers (opt: model.decoder.layers)``."""
    others = ", ".join(f"{name}: model.{layout.blocks}" for name, layout in LAYOUTS.items())
    return f"model.{DEFAULT_LAYOUT.blocks}" + (f" ({others})" if others else "")
