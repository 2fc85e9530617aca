"""The stage of the sources (``rules/sources.smk``): a model or corpus checked completely and fetched, before
any stage reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ...io import write_json


FIXES = {"model": "give the path of a complete model directory, a .gguf file, a hub id or embedded",
         "corpus": "mend the file, or point the key at another corpus"}


def fetch_source(entry: Mapping[str, Any], record_path: str | Path, keys: Sequence[str] = ()) -> dict[str, Any]:
    """Stage 0a: check the source ``entry`` (a :func:`lorp.workflow.config.source_entry`) and fetch it
    (:func:`lorp.fetch.fetch_model`, :func:`lorp.fetch.fetch_corpus`); write what was found. An error
    names the config ``keys`` that give the source, and the fix. A local corpus must still have the bytes
    it was planned with (``file_sha256``: they name its record)."""
    from ...fetch import SourceError, fetch_corpus, fetch_model
    from ...sources import SourceUnavailableError
    from ..config import local_corpus_file
    from ..provenance import sha256_file

    path = local_corpus_file(entry)
    found = sha256_file(path) if path is not None and path.is_file() else None
    if found is not None and found != entry.get("file_sha256"):
        raise SourceError(f"{' and '.join(keys) or 'source'} = {entry['source']!r}: the file changed after the "
                          f"workflow was planned (sha256 {found[:12]}, planned {str(entry.get('file_sha256'))[:12]}); "
                          "run snakemake again once it is no longer being written")
    try:
        record = fetch_model(entry["source"]) if entry["kind"] == "model" else fetch_corpus(entry)
    except (OSError, ValueError, KeyError) as err:  # a source that cannot be had or read: the key, then the fix
        text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        fix = "" if isinstance(err, SourceUnavailableError) else f"; {FIXES[entry['kind']]}"  # it names its own
        raise SourceError(f"{' and '.join(keys) or 'source'} = {entry['source']!r}: {text}{fix}") from None
    write_json(record_path, record)
    return record
