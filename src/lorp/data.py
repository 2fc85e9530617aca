"""Text corpora for calibration and evaluation, and calibration windows.

A corpus spec (a mapping from the config) has a ``source``:

* ``python-docs``: the English text of the Python standard library's bundled documentation
  (``pydoc_data.topics``), present on every machine. Topics are split deterministically: every
  fifth topic in sorted order is the evaluation part, the rest the calibration part, so the two
  never overlap.
* ``c4``, ``wikitext2``, ``ptb``: the Hugging Face hub datasets used in the paper (C4 ``en``
  train shard 0 streamed for calibration and validation shard 0 for evaluation, WikiText-2 raw,
  Penn Treebank); they need the ``datasets`` package and network access or a warm cache.
* a path to a local file: ``format: text`` (one record per line, as the hub stores WikiText) or
  ``format: jsonl`` (one JSON object per line, text in ``field``, default ``text``).

Records are joined with ``join`` (default a blank line, the paper protocol) before tokenising.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

HUB_SOURCES = ("c4", "wikitext2", "ptb")
BUILTIN_SOURCES = ("python-docs",) + HUB_SOURCES
DEFAULT_JOIN = "\n\n"


def python_docs_topics(part: str) -> list[str]:
    """The ``calibration`` or ``evaluation`` part of ``pydoc_data.topics``, in sorted topic order."""
    from pydoc_data.topics import topics

    if part not in ("calibration", "evaluation"):
        raise ValueError(f"part must be 'calibration' or 'evaluation', got {part!r}")
    keys = sorted(topics)
    want_eval = part == "evaluation"
    return [topics[k] for i, k in enumerate(keys) if (i % 5 == 4) == want_eval]


def _hub_texts(name: str, purpose: str, max_documents: int | None) -> list[str]:
    from datasets import load_dataset  # imported lazily: only hub users need it

    if name == "c4":
        shard = ("en/c4-train.00000-of-01024.json.gz" if purpose == "calibration"
                 else "en/c4-validation.00000-of-00008.json.gz")
        split = "train" if purpose == "calibration" else "validation"
        ds = load_dataset("allenai/c4", data_files={split: shard}, split=split, streaming=True)
        limit = max_documents or (20000 if purpose == "calibration" else 1100)
        return [row["text"] for _, row in zip(range(limit), ds)]
    if name == "wikitext2":
        split = "train" if purpose == "calibration" else "test"
        texts = list(load_dataset("wikitext", "wikitext-2-raw-v1", split=split)["text"])
    elif name == "ptb":
        split = "train" if purpose == "calibration" else "test"
        texts = list(load_dataset("ptb_text_only", "penn_treebank", split=split)["sentence"])
    else:  # pragma: no cover - guarded by the schema
        raise ValueError(f"unknown hub corpus {name!r}")
    return texts[:max_documents] if max_documents else texts


def _local_texts(path: Path, fmt: str, field: str, max_documents: int | None) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} does not exist")
    if fmt == "auto":
        fmt = "jsonl" if path.suffix in (".jsonl", ".json") else "text"
    texts: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if fmt == "text":
                texts.append(line.rstrip("\n"))
            elif line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
                if field not in record:
                    raise KeyError(f"{path}:{lineno}: no field {field!r} (set 'field' in the config)")
                texts.append(str(record[field]))
            if max_documents and len(texts) >= max_documents:
                break
    if fmt not in ("text", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}; choose text, jsonl or auto")
    return texts


def load_texts(spec: Mapping[str, Any], purpose: str, base_dir: str | Path = ".") -> list[str]:
    """The records of a corpus for ``purpose`` (``calibration`` or ``evaluation``)."""
    source = str(spec["source"])
    max_documents = spec.get("max_documents")
    if source == "python-docs":
        texts = python_docs_topics(purpose)
        return texts[:max_documents] if max_documents else texts
    if source in HUB_SOURCES:
        return _hub_texts(source, purpose, max_documents)
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    return _local_texts(path, str(spec.get("format", "auto")), str(spec.get("field", "text")), max_documents)


def tokenize_stream(texts: Sequence[str], tokenizer: Any, join: str = DEFAULT_JOIN) -> np.ndarray:
    """Token ids of ``join.join(texts)`` without special tokens, as int64."""
    ids = tokenizer(join.join(texts), add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return np.asarray(ids, dtype=np.int64)


def special_prefix(tokenizer: Any) -> list[int]:
    """The token ids the tokenizer puts before a text when adding special tokens (``[bos_id]`` for
    Gemma and Llama 3; ``[]`` for SmolLM2 and Qwen, whose tokenizers add none)."""
    probe = "The same text."
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i:i + len(plain)] == plain:
            return list(full[:i])
    raise ValueError("could not find the text inside the tokenizer's output with special tokens; "
                     "set bos_per_window: false for this model (models.<name>.bos_per_window)")


def sample_stream_windows(stream: np.ndarray, n_samples: int, seqlen: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_samples`` random windows of ``seqlen`` tokens from one token stream.

    Returns the windows (int32 [n_samples, seqlen]) and their start offsets.
    """
    if len(stream) < seqlen + 1:
        raise ValueError(
            f"the corpus has {len(stream)} tokens, fewer than one window of seqlen={seqlen}: "
            "use a shorter seqlen or a larger corpus"
        )
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(stream) - seqlen, size=n_samples)
    windows = np.stack([stream[s:s + seqlen] for s in starts]).astype(np.int32)
    return windows, starts


def sample_document_windows(
    texts: Sequence[str], tokenizer: Any, n_samples: int, seqlen: int, seed: int, max_tries: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """The SparseGPT/ShortGPT protocol: pick a random document longer than ``seqlen`` tokens, then a
    random window inside it, ``n_samples`` times. Returns windows and the chosen document indices."""
    rng = np.random.default_rng(seed)
    windows, docs = [], []
    for _ in range(max_tries):
        if len(windows) == n_samples:
            break
        d = int(rng.integers(0, len(texts)))
        ids = tokenizer(texts[d], add_special_tokens=False, return_attention_mask=False)["input_ids"]
        if len(ids) <= seqlen:
            continue
        start = int(rng.integers(0, len(ids) - seqlen))
        windows.append(ids[start:start + seqlen])
        docs.append(d)
    if len(windows) < n_samples:
        raise ValueError(
            f"found only {len(windows)} documents longer than seqlen={seqlen} tokens; "
            "use sampling: stream, a shorter seqlen or more documents"
        )
    return np.asarray(windows, dtype=np.int32), np.asarray(docs, dtype=np.int64)


def calibration_tokens(spec: Mapping[str, Any], tokenizer: Any, base_dir: str | Path = ".") -> tuple[np.ndarray, dict[str, Any]]:
    """Calibration windows for a calibration spec, and a description for ``meta.json``."""
    n, seqlen, seed = int(spec["n_samples"]), int(spec["seqlen"]), int(spec.get("seed", 0))
    sampling = spec.get("sampling", "auto")
    if sampling == "auto":
        sampling = "document" if spec["source"] == "c4" else "stream"
    texts = load_texts(spec, "calibration", base_dir)
    meta: dict[str, Any] = {"source": spec["source"], "n_documents": len(texts), "sampling": sampling,
                            "n_samples": n, "seqlen": seqlen, "seed": seed}
    if sampling == "document":
        windows, docs = sample_document_windows(texts, tokenizer, n, seqlen, seed)
        meta["document_indices"] = docs.tolist()
    elif sampling == "stream":
        stream = tokenize_stream(texts, tokenizer, spec.get("join", DEFAULT_JOIN))
        windows, starts = sample_stream_windows(stream, n, seqlen, seed)
        meta.update(stream_tokens=int(len(stream)), window_starts=starts.tolist())
    else:
        raise ValueError(f"unknown sampling {sampling!r}; choose auto, document or stream")
    return windows, meta
