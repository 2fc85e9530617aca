"""Every source is checked before the first job, whether or not results exist: model sources resolved
(hub ids in the cache or on a hub that answers), corpus files read far enough to know they parse, and
calibrations that ask for more text than their corpus holds refused. No model is loaded."""

import copy
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lorp import data, sources
from lorp.workflow.config import ConfigError, ModelShape, check_config, model_shape

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "config.yaml").read_text())


def problems(tmp_path, models=None, calibration=None, **changes):
    """The config check's error lines for the default config with ``changes``: every model source checked,
    and taken for one of 30 blocks and 8192 positions (reading the embedded GGUF's header takes seconds)."""
    cfg = copy.deepcopy(BASE)
    cfg.update(changes)
    if models is not None:
        cfg["models"] = models
    if calibration is not None:
        cfg["calibration"] = calibration
    try:
        check_config(cfg, lambda m: sources.check_source(cfg["models"][m]["source"], ROOT) and ModelShape(30, 8192),
                     base_dir=ROOT)
    except ConfigError as err:
        return str(err).splitlines()[1:]
    return []


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path / "hf" / "hub"


def local_model(path: Path, layers=4, context=128) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": layers,
                                                  "max_position_embeddings": context, "hidden_size": 64,
                                                  "num_attention_heads": 4, "intermediate_size": 128}))
    return path


# ------------------------------------------------------------------------------------ model sources
def test_good_model_sources_are_accepted(tmp_path):
    assert sources.check_source("embedded").kind == "embedded"
    local = local_model(tmp_path / "model")
    assert sources.check_source(str(local)) == sources.ModelSource("local", str(local.resolve()))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert sources.check_source("m.gguf", tmp_path).kind == "gguf"
    assert model_shape({"source": str(local)}, tmp_path / "none.json").num_hidden_layers == 4


def test_a_prepared_model_json_gives_the_shape_only_for_its_own_source(tmp_path):
    local = local_model(tmp_path / "model", layers=4, context=128)
    manifest = tmp_path / "model.json"
    manifest.write_text(json.dumps({"source": f"local:{local.resolve()}", "num_hidden_layers": 12,
                                    "max_position_embeddings": 512}))
    assert model_shape({"source": str(local)}, manifest) == ModelShape(12, 512)  # from model.json
    other = local_model(tmp_path / "other", layers=6, context=256)  # another source: its own metadata
    assert model_shape({"source": str(other)}, manifest) == ModelShape(6, 256)


@pytest.mark.parametrize("source,match", [
    ("nope_model_dir", r"models\.m\.source: 'nope_model_dir' is neither an existing path .* nor a Hugging Face "
                       r"hub id \(owner/name\); give the path of a model directory"),
    ("./nope/model", r"models\.m\.source: model path .*nope/model does not exist"),
    ("nope.gguf", r"models\.m\.source: GGUF file .*nope\.gguf does not exist"),
    ("embedded:llama", r"models\.m\.source: unknown embedded model 'embedded:llama'; choose embedded"),
])
def test_a_model_source_that_names_nothing_is_an_error_naming_the_key(tmp_path, source, match):
    lines = problems(tmp_path, models={"m": {"source": source}})
    assert any(re.match(match, line.strip()) for line in lines), lines


def test_a_directory_without_config_json_is_not_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    lines = problems(tmp_path, models={"m": {"source": str(tmp_path / "empty")}})
    assert lines == [f"  models.m.source: {tmp_path / 'empty'} is a directory without config.json: not a Hugging "
                     "Face model"]


def test_an_uncached_hub_model_offline_is_an_error_naming_the_cache_and_the_fix(tmp_path, empty_hf_cache,
                                                                                   monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lines = problems(tmp_path, models={"m": {"source": "someone/some-model"}})
    assert lines == [f"  models.m.source: 'someone/some-model' is not in the Hugging Face cache ({empty_hf_cache}) "
                     "and the hub is not asked (HF_HUB_OFFLINE is set); set HF_HOME to a cache that holds it, run "
                     "once where the hub can be reached, or give the path of a local model directory or .gguf file"]


def test_an_uncached_hub_model_fails_its_source_check_naming_the_key_the_cause_and_the_fixes_once(tmp_path):
    """The source check (rule fetch_source) words an unavailable hub model as the config check does, with the
    key in front and the fixes once (lorp.sources.unavailable is the one wording)."""
    code = ("from lorp.workflow.config import source_entry\n"
            "from lorp.workflow.stages.sources import fetch_source\n"
            "entry = source_entry('model', {'source': 'someone/some-model'}, 'model')\n"
            f"fetch_source(entry, {str(tmp_path / 'record.json')!r}, ['models.m.source'])")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    last = out.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"lorp\.fetch\.SourceError: models\.m\.source = 'someone/some-model': 'someone/some-model' is not in the "
        r"Hugging Face cache \(.*hf/hub\) and could not be fetched \(.+\); set HF_HOME to a cache that holds it, "
        r"run once where the hub can be reached, or give the path of a local model directory or \.gguf file", last), last
    assert not (tmp_path / "record.json").exists()


def test_a_cached_hub_model_is_accepted_offline(empty_hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = empty_hf_cache / "models--someone--some-model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (empty_hf_cache / "models--someone--some-model" / "refs").mkdir()
    (empty_hf_cache / "models--someone--some-model" / "refs" / "main").write_text("abc123")
    assert sources.check_source("someone/some-model").kind == "hub"


def test_an_unreachable_hub_is_an_error_without_waiting(empty_hf_cache, monkeypatch):
    """Refused at once (a closed port), or after the timeout (a server that never answers)."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read once, when first imported
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed.getsockname()[1]}")
    closed.close()
    with pytest.raises(sources.SourceUnavailableError, match=r"the Hugging Face hub could not be reached \(.*(refused|"
                                                             r"connect)"):
        sources.check_source("someone/some-model")
    silent = socket.socket()  # accepts connections and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
    try:
        start = time.monotonic()
        answer = sources.hub_answer("someone/some-model", timeout=0.5)
        assert time.monotonic() - start < 2
        # whichever of the thread's wait and the request's own timeout ends first
        assert re.fullmatch(r"the Hugging Face hub (did not answer within 0\.5 s|could not be reached "
                            r"\(.*timed out.*\))", answer), answer
    finally:
        silent.close()


def test_checking_sources_and_reading_shapes_imports_no_torch(tmp_path):
    """The embedded model prepared (its model.json), and a local model directory not yet prepared."""
    local = local_model(tmp_path / "model", layers=4, context=128)
    prepared = tmp_path / "model.json"
    prepared.write_text(json.dumps({"source": sources.resolve_source("embedded").describe(), "num_hidden_layers": 30,
                                    "max_position_embeddings": 8192}))
    code = ("import sys\nfrom lorp.workflow.config import model_shape\n"
            f"print(model_shape({{'source': 'embedded'}}, {str(prepared)!r}))\n"
            f"print(model_shape({{'source': {str(local)!r}}}, {str(tmp_path / 'none.json')!r}))\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["ModelShape(num_hidden_layers=30, max_position_embeddings=8192)",
                                       "ModelShape(num_hidden_layers=4, max_position_embeddings=128)"]


# ------------------------------------------------------------------------------------ corpus files
def write_parquet(path: Path, **columns) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def test_good_corpus_files_are_accepted_and_read(tmp_path):
    text = tmp_path / "c.txt"
    text.write_text("\n\nfirst line\nsecond line\n")
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('\n{"body": "first", "n": 1}\n{"body": "second"}\n')
    parquet = write_parquet(tmp_path / "c.parquet", body=["first", "second"], n=[1, 2])
    data.check_corpus_file(text)
    data.check_corpus_file(jsonl, "auto", "body")
    data.check_corpus_file(parquet, "auto", "body")
    data.check_corpus_file(jsonl, "text")  # any UTF-8 lines are text
    assert data.load_texts({"source": str(parquet), "field": "body"}, "calibration") == ["first", "second"]
    assert data.load_texts({"source": str(parquet), "field": "body", "max_documents": 1}, "calibration") == ["first"]
    assert data.load_texts({"source": str(jsonl), "field": "body"}, "calibration") == ["first", "second"]


@pytest.mark.parametrize("name,content,fmt,field,match", [
    ("e.txt", b"", "auto", "text", "the file is empty; give a file with text in it, or another source"),
    ("b.txt", b"\n  \n\n", "auto", "text", "the file has only blank lines, no text;"),
    ("u.txt", b"fine\n\xff\xfe\n", "auto", "text", r"line 2 is not UTF-8 text \(invalid start byte at byte 0\); "
                                                   "convert the file to UTF-8"),
    ("j.jsonl", b'not json\n{"text": "x"}\n', "auto", "text",
     r"line 1 is not valid JSON \(Expecting value at column 1\); fix the line, or set format: text"),
    ("j.txt", b'{"text": "x"}\n\n{"text": "y",}\n', "jsonl", "text", r"line 3 is not valid JSON"),
    ("k.jsonl", b'{"body": "x"}\n', "auto", "text",
     r"line 1 has no field 'text' \(it has 'body'\); set field: to the one holding the text"),
    ("s.jsonl", b'{"text": 3}\n', "auto", "text", r"line 1: field 'text' holds a JSON int, not a string"),
    ("l.jsonl", b'["x"]\n', "auto", "text", r"line 1 is a JSON list, not an object"),
    ("p.parquet", b"PAR1 not really", "auto", "text", r"not a Parquet file \(.*\); give a Parquet file"),
])
def test_a_corpus_file_that_does_not_parse_is_refused_naming_the_line(tmp_path, name, content, fmt, field, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        data.check_corpus_file(path, fmt, field)


def test_a_parquet_file_needs_a_text_column_with_rows(tmp_path):
    with pytest.raises(ValueError, match=r"no column 'text' \(it has 'body'\); set field: to the column"):
        data.check_corpus_file(write_parquet(tmp_path / "a.parquet", body=["x"]))
    with pytest.raises(ValueError, match=r"column 'n' holds int64, not strings"):
        data.check_corpus_file(write_parquet(tmp_path / "b.parquet", n=[1]), "parquet", "n")
    import pyarrow as pa

    with pytest.raises(ValueError, match="the file has no rows"):
        data.check_corpus_file(write_parquet(tmp_path / "c.parquet", text=pa.array([], pa.string())))


def test_corpus_file_problems_name_each_key(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    empty, bad = str(tmp_path / "empty.txt"), str(tmp_path / "bad.jsonl")
    lines = problems(tmp_path, calibration={"c": {"source": empty}},
                     evaluation={"datasets": {"d": {"source": bad}}},
                     sensitivity={"variations": {"v": {"source": bad}}})
    assert lines == [
        f"  calibration.c.source: {empty}: the file is empty; give a file with text in it, or another source",
        f"  sensitivity.variations.v.source: {bad}: line 1 is not valid JSON (Expecting property name enclosed in "
        "double quotes at column 2); fix the line, or set format: text to read the file's lines as text",
        f"  evaluation.datasets.d.source: {bad}: line 1 is not valid JSON (Expecting property name enclosed in double "
        "quotes at column 2); fix the line, or set format: text to read the file's lines as text",
    ]


# ------------------------------------------------------------------------------------ corpus size
def test_more_tokens_than_python_docs_holds_is_refused_naming_both_numbers(tmp_path):
    held = data.max_tokens({"source": "python-docs"}, "calibration")
    assert held == len("\n\n".join(data.python_docs_topics("calibration")).encode())
    lines = problems(tmp_path, calibration={"c": {"source": "python-docs", "n_samples": 100000, "seqlen": 256}})
    assert lines == [f"  calibration.c.n_samples: 100004 windows (100000 + 4 held out for auto) of 256 tokens need "
                     f"25601024 tokens, and the calibration part of python-docs holds at most {held} (its UTF-8 "
                     "bytes: a token is at least one); lower n_samples or seqlen, or use a larger corpus"]
    assert problems(tmp_path, calibration={"c": {"source": "python-docs", "n_samples": 64, "seqlen": 256}}) == []


def test_auto_held_out_windows_count_and_hub_corpora_are_not_sized(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("x" * 99 + "\n")  # 100 bytes: at most 200 tokens with the joins
    calib = {"c": {"source": str(corpus), "n_samples": 2, "seqlen": 90}}
    assert problems(tmp_path, calibration=calib, methods={"lorp": {}, "shortgpt": {}},
                    checkpoints={"export": []}) == []
    lines = problems(tmp_path, calibration=calib)  # with auto's 4 held-out windows
    assert len(lines) == 1 and lines[0].startswith("  calibration.c.n_samples: 6 windows (2 + 4 held out for auto) "
                                                   "of 90 tokens need 540 tokens, and the calibration part of ")
    assert "holds at most 200" in lines[0]
    assert data.max_tokens({"source": "c4"}, "calibration") is None
    assert data.max_tokens({"source": str(write_parquet(tmp_path / "p.parquet", text=["x"]))}, "calibration") is None


def test_a_sensitivity_variation_asking_for_too_much_is_refused_naming_it(tmp_path):
    lines = problems(tmp_path, sensitivity={"variations": {"many": {"n_samples": 5000}, "long": {"seqlen": 512}}})
    assert len(lines) == 1 and lines[0].startswith("  sensitivity.variations.many.n_samples: 5000 windows of 256 "
                                                   "tokens need 1280000 tokens")  # not evaluated: no held-out windows


def test_a_local_corpus_is_named_by_its_bytes_and_a_file_changed_after_planning_is_refused(tmp_path, monkeypatch):
    """A local corpus's source entry holds the sha256 of its bytes: a copy or touch with the same bytes is the
    same source (the same record), an edit another; a file that changes between the plan and its check fails
    the check, naming the key and both digests, and writes no record."""
    import hashlib
    import os

    from lorp.fetch import SourceError
    from lorp.workflow.config import local_corpus_file, source_digest, source_entry
    from lorp.workflow.stages.sources import fetch_source

    monkeypatch.chdir(tmp_path)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The first line.\nThe second line.\n")
    spec = {"source": "corpus.txt", "format": "text"}
    entry = source_entry("corpus", spec, "evaluation")
    assert entry["file_sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert local_corpus_file(entry) == Path("corpus.txt")
    assert local_corpus_file(source_entry("corpus", {"source": "python-docs"}, "evaluation")) is None
    os.utime(corpus, (time.time() + 60, time.time() + 60))  # touched: the same source
    assert source_digest(source_entry("corpus", spec, "evaluation")) == source_digest(entry)
    assert fetch_source(entry, tmp_path / "record.json", ["evaluation.datasets.mine.source"])["records"] == 2
    corpus.write_text("The first line.\nAn edited second line.\n")
    assert source_digest(source_entry("corpus", spec, "evaluation")) != source_digest(entry)
    with pytest.raises(SourceError, match=r"evaluation.datasets.mine.source = 'corpus.txt': the file changed after "
                                          r"the workflow was planned \(sha256 [0-9a-f]{12}, planned [0-9a-f]{12}\)"):
        fetch_source(entry, tmp_path / "again.json", ["evaluation.datasets.mine.source"])
    assert not (tmp_path / "again.json").exists()
