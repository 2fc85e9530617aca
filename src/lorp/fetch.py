"""Check a source completely and bring it within reach, before any stage reads it.

The config check before any job reads a source's metadata and first records only (it must stay fast);
these functions read all of it: every record of a corpus, the header of every weight file of a model, and a
hub model's files downloaded into the Hugging Face cache. The ``fetch_source`` rule
(``rules/sources.smk``) runs them in a job of its own, so that a source that fails here fails before any job
whose outputs Snakemake would remove (docs/reruns.md, "A mistaken source").
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from . import data

MODEL_FILES = ("*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.py")
"""The files of a hub model a run needs: config, tokenizer, generation config and safetensors weights
(``pytorch_model*.bin`` where a model has no safetensors)."""

SKIPPED_FILES = ("consolidated*", "original/*")
"""Files of a hub model no run reads: the single-file copies of the weights some repositories ship beside
the shards (Mistral's ``consolidated.safetensors``, Llama's ``original/``)."""


class SourceError(ValueError):
    """A source that cannot be read as the config declares it; the message names the cause and the fix."""


def _weights(directory: Path) -> dict[str, int]:
    """The weight files of a Hugging Face model directory with their sizes; each safetensors file's header
    is read, so a truncated or foreign file is found here."""
    from safetensors import safe_open

    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    if not files:
        raise SourceError(f"{directory} holds no weights (no *.safetensors or pytorch_model*.bin file)")
    for path in files:
        if path.suffix == ".safetensors":
            try:
                with safe_open(str(path), framework="numpy") as fh:
                    fh.keys()
            except Exception as err:  # safetensors raises its own error types
                raise SourceError(f"{path} is not a readable safetensors file ({err}); download or convert the "
                                  "model again") from None
    return {path.name: path.stat().st_size for path in files}


def _config(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SourceError(f"{directory / 'config.json'} cannot be read as JSON ({err})") from None


def fetch_model(source: str, base_dir: str | Path = ".") -> dict[str, Any]:
    """Check a model source and fetch it: a GGUF file's header is read; a local directory's config and every
    weight file's header; a hub model's files are downloaded into the Hugging Face cache (or found there
    with ``HF_HUB_OFFLINE=1``) and checked as a local directory. Returns a record of what was found."""
    from .sources import resolve_source, unavailable

    src = resolve_source(source, base_dir)
    record: dict[str, Any] = {"kind": "model", "source": source, "resolved": src.kind}
    if src.gguf_file:
        import gguf

        path = Path(src.path) / src.gguf_file
        try:
            reader = gguf.GGUFReader(str(path))
        except Exception as err:  # gguf raises ValueError or struct errors on a damaged file
            raise SourceError(f"{path} is not a readable GGUF file ({err})") from None
        return {**record, "path": str(path), "bytes": path.stat().st_size, "tensors": len(reader.tensors)}
    directory = Path(src.path)
    if src.kind == "hub":
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            directory = Path(snapshot_download(src.path, allow_patterns=list(MODEL_FILES),
                                               ignore_patterns=list(SKIPPED_FILES)))
            if not any(directory.glob("*.safetensors")):  # an older model: its PyTorch weights
                directory = Path(snapshot_download(src.path, allow_patterns=["pytorch_model*.bin"]))
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
            raise unavailable(src.path, f"could not be fetched ({str(err).splitlines()[0][:200]})") from None
        record["revision"] = directory.name
    config = _config(directory)
    return {**record, "path": str(directory), "model_type": config.get("model_type"), "weights": _weights(directory)}


def fetch_corpus(entry: Mapping[str, Any], base_dir: str | Path = ".") -> dict[str, Any]:
    """Read every record of a corpus (``entry``: the corpus keys of a spec and its ``purpose``, see
    :func:`lorp.workflow.config.source_entry`); a record that does not parse stops with its line, and a
    corpus without text is refused. Returns the count of records and bytes, and the sha256 of the
    records, so an audit can tell whether the corpus changed."""
    texts = data.load_texts(entry, str(entry["purpose"]), base_dir)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    if not any(t.strip() for t in texts):
        raise SourceError(f"{entry['source']}: no text in its {entry['purpose']} part ({len(texts)} records, all "
                          "blank); point the source at a file with text")
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return {**dict(entry), "records": len(texts), "bytes": n_bytes, "sha256": digest.hexdigest()}
