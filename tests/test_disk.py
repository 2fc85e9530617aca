"""A full disk (lorp.disk): a write whose size is known is refused before it starts, with the bytes needed and
free; a write that finds no space anyway (ENOSPC, EDQUOT, or a native writer's error naming them) says the
same; the capture reserves its memory-mapped files, so a disk that fills raises instead of SIGBUS; a
checkpoint is refused the same way. On a tiny random Llama; a real small tmpfs where mounting works."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections import namedtuple

import numpy as np
import pytest
import torch

from lorp import disk

Usage = namedtuple("Usage", "total used free")


def _free(monkeypatch, free: int) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * free + 1, 9 * free, free))


def _tiny_llama(layers: int = 3):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def _tokens(n: int = 4, seqlen: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 64, size=(n, seqlen)).astype(np.int32)


@pytest.mark.parametrize("n, text", [(512, "512 B"), (12_345, "12.3 kB"), (188_000_000, "188.0 MB"),
                                     (1_800_000_000, "1.8 GB"), (2.5e12, "2.5 TB")])
def test_sizes_read_as_people_write_them(n, text):
    assert disk.human(n) == text


def test_a_write_too_large_for_the_disk_is_refused_with_the_numbers(tmp_path, monkeypatch):
    _free(monkeypatch, 4_200_000)
    target = tmp_path / "not" / "yet" / "there"
    with pytest.raises(disk.DiskFullError) as caught:
        disk.require_free(target, 9_100_000, "the activations")
    err = caught.value
    assert str(err) == f"no space left on {target} for the activations: needed 9.1 MB, free 4.2 MB"
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC and (err.needed, err.free) == (9_100_000, 4_200_000)
    assert disk.require_free(target, 4_200_000, "the activations") == 4_200_000  # exactly enough is enough
    assert not (tmp_path / "not").exists()


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on '
                 'device" })'),  # safetensors' writer
])
def test_a_write_that_finds_no_space_says_so_with_the_numbers(tmp_path, monkeypatch, error):
    _free(monkeypatch, 50_000_000)
    with pytest.raises(disk.DiskFullError) as caught:
        with disk.space_for(tmp_path, 20_000_000, "the checkpoint x"):
            raise error
    assert str(caught.value) == f"no space left on {tmp_path} for the checkpoint x: needed 20.0 MB, free 50.0 MB"
    assert caught.value.__cause__ is error


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(PermissionError):
        with disk.space_for(tmp_path, 1, "x"):
            raise PermissionError(errno.EACCES, "denied")


def test_the_capture_is_refused_before_it_writes_anything(tmp_path, monkeypatch):
    from lorp.capture import activation_bytes, capture_activations

    needed = activation_bytes(4 * 16, 32, 3, "float16")
    # four layer files of 128 + 64 x 32 x 2 bytes (2 blocks of 4096 each) and the manifest's 24 x 64 + 65536
    # bytes (17 blocks)
    assert needed == 4 * 8192 + 17 * 4096 == 102_400
    _free(monkeypatch, needed // 2)
    with pytest.raises(disk.DiskFullError, match=r"^no space left on .*act for the activations \(4 layers of 64 x "
                                                 r"32 float16\): needed 102\.4 kB, free 51\.2 kB$"):
        capture_activations(_tiny_llama(), _tokens(), tmp_path / "act" / "docs")
    assert not (tmp_path / "act").exists() or not list((tmp_path / "act").iterdir())


def test_a_disk_that_fills_during_the_capture_raises_enospc_not_sigbus(tmp_path, monkeypatch):
    """The reservation of a memory-mapped file fails (injected): the capture stops with the message, and
    leaves no temporary behind."""
    from lorp.capture import capture_activations

    calls = []

    def full(fd, offset, size):
        calls.append(size)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(disk.DiskFullError, match=r"^no space left on .* for the activations \(4 layers of 64 x 32 "
                                                 r"float16\): needed .*, free "):
        capture_activations(_tiny_llama(), _tokens(), tmp_path / "docs")
    assert calls[0] == 128 + 64 * 32 * 2  # each file reserved whole, header included
    assert list(tmp_path.iterdir()) == []


def test_a_filesystem_that_cannot_reserve_still_captures(tmp_path, monkeypatch):
    from lorp.capture import capture_activations

    def unsupported(fd, offset, size):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    expected = capture_activations(_tiny_llama(), _tokens(), tmp_path / "a")
    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    assert capture_activations(_tiny_llama(), _tokens(), tmp_path / "b") == expected
    for name in expected["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_checkpoint_is_refused_before_it_writes_anything(tmp_path, monkeypatch):
    from lorp.models import save_checkpoint

    model = _tiny_llama()
    needed = disk.checkpoint_bytes(model)
    weights = sum(p.numel() for p in model.parameters()) * 4
    assert needed == weights + 64 * 128 + 1_000_000  # the weights, 128 bytes a token of the vocabulary, 1 MB
    _free(monkeypatch, needed - 1)
    with pytest.raises(disk.DiskFullError, match=r"for the checkpoint lorp-3: needed "):
        save_checkpoint(model, None, tmp_path / "lorp-3", {})
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MB tmpfs (skipped where mounting is refused: not root, a container without the right)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_on_a_real_full_disk_the_capture_raises_with_the_numbers(small_tmpfs, monkeypatch):
    """With the check before the capture switched off, the reservation meets the real full disk: an error
    with the numbers, not a SIGBUS half way, and nothing left on the disk."""
    from lorp import capture

    monkeypatch.setattr(disk, "require_free", lambda path, needed, what: disk.free_bytes(path))  # no check first
    tokens = _tokens(n=64, seqlen=64)  # 4 files of 4096 x 32 float16: 1 MB and their headers
    needed = disk.human(capture.activation_bytes(64 * 64, 32, 3, "float16"))
    with pytest.raises(disk.DiskFullError, match=rf"^no space left on {small_tmpfs} for the activations .*: "
                                                 rf"needed {needed}, free 1\.0 MB$"):
        capture.capture_activations(_tiny_llama(), tokens, small_tmpfs / "docs", batch_size=64)
    assert list(small_tmpfs.iterdir()) == []
