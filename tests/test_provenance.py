"""Fingerprints and their comparison, on hand-built files (no model)."""

import numpy as np

from lorp.workflow import provenance as pv


def test_small_file_gets_a_full_sha256(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hello")
    fp = pv.fingerprint(path)
    assert fp["method"] == "sha256" and fp["size"] == 5
    assert fp["sha256"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_large_file_gets_a_sampled_hash_that_sees_a_change_in_a_sampled_block(tmp_path, monkeypatch):
    monkeypatch.setattr(pv, "FULL_HASH_LIMIT", 1024)
    monkeypatch.setattr(pv, "BLOCK", 256)
    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8).tobytes())
    path.write_bytes(bytes(data))
    fp = pv.fingerprint(path)
    assert fp["method"] == "sampled-sha256:8x256" and fp["size"] == 10_000 and "mtime_ns" in fp
    assert pv.compare(path, fp) == []
    data[0] ^= 0xFF  # the first block is always sampled
    path.write_bytes(bytes(data))
    assert "content differs" in pv.compare(path, fp)[0]
    path.write_bytes(bytes(data[:-1]))
    assert "size" in pv.compare(path, fp)[0]


def test_directory_fingerprint_ignores_records_and_snakemake_markers(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_text("{}")
    fp = pv.fingerprint(d)
    (d / "provenance.json").write_text("{}")
    (d / ".snakemake_timestamp").write_text("")
    assert pv.compare(d, fp) == []
    (d / "extra.bin").write_text("x")
    assert pv.compare(d, fp) == [f"{d / 'extra.bin'}: not in the provenance record"]
    (d / "extra.bin").unlink()
    (d / "config.json").unlink()
    assert pv.compare(d, fp) == [f"{d / 'config.json'}: missing"]
