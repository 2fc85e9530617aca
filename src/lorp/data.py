"""Text corpora for calibration and evaluation, and calibration windows.

A corpus spec (a mapping from the config) has a ``source``:

* ``python-docs``: the English text of the Python standard library's bundled documentation
  (``pydoc_data.topics``), present on every machine. Topics are split deterministically: every
  fifth topic in sorted order is the evaluation part, the rest the calibration part, so the two
  never overlap.
* ``c4``, ``wikitext2``, ``ptb``: the Hugging Face hub datasets used in the paper (C4 ``en``
  train shard 0 streamed for calibration and validation shard 0 for evaluation, WikiText-2 raw,
  Penn Treebank); they need the ``datasets`` package and network access or a warm cache.
* a path to a local file: ``format: text`` (one record per line, as the hub stores WikiText),
  ``format: jsonl`` (one JSON object per line, text in ``field``, default ``text``) or ``format: parquet``
  (the text column ``field``); ``auto`` goes by the suffix (``.jsonl``/``.json``, ``.parquet``, else text).

Records are joined with ``join`` (default a blank line, the paper protocol) before tokenising.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

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


LOCAL_FORMATS = ("text", "jsonl", "parquet")
CHECKED_RECORDS = 20
"""How many records of a local corpus file :func:`check_corpus_file` reads."""


def local_format(path: str | Path, fmt: str) -> str:
    """The format of a local corpus file: ``fmt``, or for ``auto`` the one its suffix names (``.jsonl`` and
    ``.json``: jsonl; ``.parquet``: parquet; anything else: text)."""
    if fmt != "auto":
        if fmt not in LOCAL_FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose auto, {', '.join(LOCAL_FORMATS)}")
        return fmt
    suffix = Path(path).suffix
    return "jsonl" if suffix in (".jsonl", ".json") else "parquet" if suffix == ".parquet" else "text"


def _parquet_texts(path: Path, field: str, max_documents: int | None) -> list[str]:
    import pyarrow.parquet as pq  # installed with datasets; imported lazily

    if field not in pq.read_schema(path).names:
        raise KeyError(f"{path}: no column {field!r} (set 'field' in the config)")
    texts = [t for t in pq.read_table(path, columns=[field]).column(field).to_pylist() if t is not None]
    return texts[:max_documents] if max_documents else texts


def _local_texts(path: Path, fmt: str, field: str, max_documents: int | None) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} does not exist")
    fmt = local_format(path, fmt)
    if fmt == "parquet":
        return _parquet_texts(path, field, max_documents)
    texts: list[str] = []
    for lineno, line in _utf8_lines(path, f"{path}: "):
        if fmt == "text":
            texts.append(line.rstrip("\r\n") if line.endswith("\r\n") else line.rstrip("\n"))
        elif line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{lineno}: a JSON {type(record).__name__}, not an object with a "
                                 f"field {field!r}")
            if field not in record:
                raise KeyError(f"{path}:{lineno}: no field {field!r} (set 'field' in the config)")
            texts.append(str(record[field]))
        if max_documents and len(texts) >= max_documents:
            break
    return texts


def _utf8_lines(path: Path, prefix: str = "") -> Iterator[tuple[int, str]]:
    """(line number, line) of a file, decoded one line at a time, so that a byte that is not UTF-8 names its
    line (``prefix`` before the message: the file, where the caller names no key)."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{prefix}line {lineno} is not UTF-8 text ({err.reason} at byte {err.start}); "
                                 "convert the file to UTF-8") from None


def check_corpus_file(path: str | Path, fmt: str = "auto", field: str = "text",
                      records: int = CHECKED_RECORDS) -> None:
    """Check, before any job, that a local corpus file can be read as ``fmt`` (``auto``: by its suffix): it
    exists and is not empty, and its first ``records`` records parse (for text, non-blank UTF-8 lines; for
    jsonl, JSON objects whose ``field`` is a string; for parquet, a file with a text column ``field`` and
    rows). Raises ``ValueError`` with ``<cause>; <fix>``, naming the line or column at fault."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"the file {path} does not exist; give the path of a corpus file (relative paths are "
                         f"read from the working directory) or one of {', '.join(BUILTIN_SOURCES)}")
    if path.stat().st_size == 0:
        raise ValueError("the file is empty; give a file with text in it, or another source")
    fmt = local_format(path, fmt)
    if fmt == "parquet":
        _check_parquet(path, field, records)
        return
    seen = 0
    for lineno, line in _utf8_lines(path):
        if not line.strip():
            continue
        if fmt == "jsonl":
            _check_json_line(line, lineno, field)
        seen += 1
        if seen == records:
            return
    if not seen:
        raise ValueError("the file has only blank lines, no text; give a file with text in it, or another source")


def _check_json_line(line: str, lineno: int, field: str) -> None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"line {lineno} is not valid JSON ({err.msg} at column {err.colno}); fix the line, or "
                         "set format: text to read the file's lines as text") from None
    if not isinstance(record, dict):
        raise ValueError(f"line {lineno} is a JSON {type(record).__name__}, not an object; give one JSON object "
                         "per line, or set format: text to read the file's lines as text")
    if field not in record:
        raise ValueError(f"line {lineno} has no field {field!r} (it has {', '.join(map(repr, record)) or 'none'}); "
                         "set field: to the one holding the text")
    if not isinstance(record[field], str):
        raise ValueError(f"line {lineno}: field {field!r} holds a JSON {type(record[field]).__name__}, not a "
                         "string; set field: to the one holding the text")


def _check_parquet(path: Path, field: str, records: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"not a Parquet file ({str(err).splitlines()[0][:200]}); give a Parquet file, or set "
                         "format: to the file's format (text or jsonl)") from None
    schema = parquet.schema_arrow
    if field not in schema.names:
        raise ValueError(f"no column {field!r} (it has {', '.join(map(repr, schema.names)) or 'none'}); set field: "
                         "to the column holding the text")
    kind = schema.field(field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or getattr(pa.types, "is_string_view", lambda _: False)(kind)):
        raise ValueError(f"column {field!r} holds {kind}, not strings; set field: to the column holding the text")
    if parquet.metadata.num_rows == 0:
        raise ValueError("the file has no rows; give a file with text in it, or another source")
    first = next(parquet.iter_batches(batch_size=records, columns=[field])).column(0).to_pylist()
    if all(not t for t in first):
        raise ValueError(f"the first {len(first)} rows of column {field!r} are empty; give a file with text in it, "
                         "or another source")


@functools.lru_cache(maxsize=8)
def _python_docs_bytes(purpose: str, max_documents: int | None, join: str) -> int:
    texts = python_docs_topics(purpose)
    texts = texts[:max_documents] if max_documents else texts
    return len(join.join(texts).encode("utf-8"))


def max_tokens(spec: Mapping[str, Any], purpose: str, base_dir: str | Path = ".") -> int | None:
    """An upper bound on the tokens the ``purpose`` part of a corpus yields under any tokenizer whose
    tokens each cover at least one UTF-8 byte (byte-level BPE, and SentencePiece with byte fallback): the
    UTF-8 bytes of its records joined, known before any download for ``python-docs`` and local text and
    JSON-lines files; None where it is not (hub corpora, Parquet, a missing file)."""
    source = str(spec["source"])
    join = str(spec.get("join", DEFAULT_JOIN))
    if source == "python-docs":
        return _python_docs_bytes(purpose, spec.get("max_documents"), join)
    if source in HUB_SOURCES:
        return None
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    try:
        fmt, size = local_format(path, str(spec.get("format", "auto"))), path.stat().st_size
    except (OSError, ValueError):
        return None
    if fmt == "parquet":  # compressed and dictionary-encoded: its size bounds nothing
        return None
    # each record's line holds at least one byte (its newline, or for jsonl the braces around it) that the
    # join replaces: the joined text is at most the file's bytes with every such byte made a join
    return size * max(1, len(join.encode("utf-8")))


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
