"""Atomic writes, deterministic JSON, corpora and calibration windows (with a stand-in tokenizer)."""

import json

import numpy as np
import pytest

from lorp import data
from lorp.io import atomic_path, dumps_json, write_json


def test_atomic_file_is_all_or_nothing(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"b": 1, "a": [1.5, float("nan")]})
    assert target.read_text() == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(target.read_text())["b"] == 1  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_directory_replaces_only_on_success(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_path(target, directory=True) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(ValueError):
        with atomic_path(target, directory=True) as tmp:
            (tmp / "b").write_text("2")
            raise ValueError
    assert [p.name for p in target.iterdir()] == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_json_is_deterministic():
    assert dumps_json({"x": np.float32(0.5), "y": np.arange(2)}) == dumps_json({"y": [0, 1], "x": 0.5})


def test_python_docs_parts_are_disjoint_and_cover_all_topics():
    from pydoc_data.topics import topics

    cal, ev = data.python_docs_topics("calibration"), data.python_docs_topics("evaluation")
    assert not set(cal) & set(ev)
    assert len(cal) + len(ev) == len(topics) and len(ev) == len(topics) // 5


class CharTokenizer:
    """Stand-in tokenizer: one token per character."""

    def __call__(self, text, add_special_tokens=False, return_attention_mask=False):
        return {"input_ids": [ord(c) for c in text]}


class BosEosTokenizer(CharTokenizer):
    """Adds BOS (1) before and EOS (2) after a text when asked for special tokens, like Gemma's with
    add_eos_token."""

    def __call__(self, text, add_special_tokens=False, return_attention_mask=False):
        ids = super().__call__(text)["input_ids"]
        return {"input_ids": [1] + ids + [2] if add_special_tokens else ids}


def test_special_prefix_is_what_the_tokenizer_puts_before_a_text():
    assert data.special_prefix(CharTokenizer()) == []
    assert data.special_prefix(BosEosTokenizer()) == [1]


def test_evaluation_windows_with_and_without_a_prefix():
    from lorp.evaluation.perplexity import make_windows

    stream = np.arange(10, 30)
    plain = make_windows(stream, 8)
    assert plain.shape == (2, 8) and np.array_equal(plain.ravel(), np.arange(10, 26))
    bos = make_windows(stream, 8, prefix=[1])
    assert bos.shape == (2, 8) and (bos[:, 0] == 1).all()
    assert np.array_equal(bos[:, 1:].ravel(), np.arange(10, 24))  # 7 text tokens per window, in order
    assert make_windows(stream, 8, max_windows=1, prefix=[1]).shape == (1, 8)
    with pytest.raises(ValueError, match="cannot hold the 2-token prefix"):
        make_windows(stream, 2, prefix=[1, 2])
    with pytest.raises(ValueError, match="fewer than one window"):
        make_windows(np.arange(5), 8)


def test_stream_windows_are_seeded_and_inside_the_stream():
    stream = np.arange(1000)
    a, starts = data.sample_stream_windows(stream, 5, 64, seed=3)
    b, _ = data.sample_stream_windows(stream, 5, 64, seed=3)
    assert a.dtype == np.int32 and a.shape == (5, 64) and np.array_equal(a, b)
    for row, s in zip(a, starts):
        assert np.array_equal(row, np.arange(s, s + 64))
    with pytest.raises(ValueError, match="fewer than one window"):
        data.sample_stream_windows(np.arange(10), 1, 64, 0)


def test_document_windows_skip_short_documents():
    texts = ["short", "x" * 100, "tiny"]
    windows, docs = data.sample_document_windows(texts, CharTokenizer(), 4, 20, seed=0)
    assert windows.shape == (4, 20) and set(docs.tolist()) == {1}
    with pytest.raises(ValueError, match="longer than seqlen"):
        data.sample_document_windows(["ab"], CharTokenizer(), 1, 20, seed=0, max_tries=50)


def test_local_corpora(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text(" = Title = \n\n body line \n")
    assert data.load_texts({"source": str(txt)}, "evaluation") == [" = Title = ", "", " body line "]
    jl = tmp_path / "a.jsonl"
    jl.write_text('{"text": "one"}\n{"text": "two"}\n')
    assert data.load_texts({"source": str(jl), "max_documents": 1}, "calibration") == ["one"]
    jl.write_text('{"body": "one"}\n')
    with pytest.raises(KeyError, match="no field 'text'"):
        data.load_texts({"source": str(jl)}, "calibration")
    with pytest.raises(FileNotFoundError):
        data.load_texts({"source": str(tmp_path / "missing.txt")}, "calibration")


def test_calibration_meta_records_the_windows():
    windows, meta = data.calibration_tokens({"source": "python-docs", "n_samples": 3, "seqlen": 32, "seed": 7},
                                            CharTokenizer())
    assert windows.shape == (3, 32) and meta["sampling"] == "stream" and len(meta["window_starts"]) == 3


def test_temporaries_of_a_killed_job_are_cleaned_up(tmp_path):
    target = tmp_path / "act"
    (tmp_path / ".act.tmp-dead").mkdir()
    (tmp_path / ".act.tmp-dead" / "layer_000.npy").write_bytes(b"partial")
    (tmp_path / ".other.tmp-keep").mkdir()
    with atomic_path(target, directory=True) as tmp:
        (tmp / "ok").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-keep", "act"]


def test_a_larger_draw_starts_with_the_smaller_one():
    """The held-out windows of methods.auto are those that follow the calibration's in a larger draw with the
    same seed: both samplers must give the smaller draw as the larger one's first windows."""
    from lorp import data

    stream = np.arange(5000)
    small, _ = data.sample_stream_windows(stream, 6, 32, seed=3)
    large, _ = data.sample_stream_windows(stream, 10, 32, seed=3)
    np.testing.assert_array_equal(large[:6], small)

    class Words:
        def __call__(self, text, add_special_tokens=False, return_attention_mask=False):
            return {"input_ids": [len(w) for w in text.split()]}

    texts = [" ".join("w" * (1 + (i * j) % 7) for j in range(20 + 15 * (i % 4))) for i in range(30)]
    small, _ = data.sample_document_windows(texts, Words(), 5, 24, seed=1)
    large, _ = data.sample_document_windows(texts, Words(), 9, 24, seed=1)
    np.testing.assert_array_equal(large[:5], small)
