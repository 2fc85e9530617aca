"""Free space before large writes, and a full disk reported with the numbers.

A stage whose output size is known from shapes (the activations, a converted or exported model) checks the
free space of the filesystem it writes to before it writes anything (:func:`require_free`), and runs its
writes inside :func:`space_for`, which turns a write that fails anyway with ENOSPC or EDQUOT (another process
filled the disk meanwhile, a filesystem that reports free space it does not have) into the same message:

    no space left on results/smol/activations for the activations results/smol/activations/docs: needed 9.1 MB,
    free 4.2 MB

Both raise :class:`DiskFullError`, an :class:`OSError` with errno ENOSPC. Torch-free: nothing here imports
PyTorch (a model is taken by duck typing in :func:`checkpoint_bytes`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
"""The errors of a write that found no space: the disk is full, or the user's quota is spent."""

_FULL_TEXTS = ("no space left on device", "disk quota exceeded", "storagefull", "quotaexceeded")
"""How a full disk reads in errors that are not an ``OSError`` (safetensors' Rust writer raises a
``SafetensorError`` naming the OS error)."""


def human(n: int | float) -> str:
    """A byte count for people: ``512 B``, ``12.3 kB``, ``188.0 MB``, ``1.8 GB`` (powers of 1000)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


class DiskFullError(OSError):
    """No space left for a write: names the directory, what was written, the bytes needed and free."""

    def __init__(self, where: str | os.PathLike[str], what: str, needed: int | None, free: int) -> None:
        need = f"needed {human(needed)}" if needed is not None else "needed more"
        message = f"no space left on {os.fspath(where)} for {what}: {need}, free {human(free)}"
        super().__init__(errno.ENOSPC, message)
        self.where, self.what, self.needed, self.free = os.fspath(where), what, needed, free
        self.message = message

    def __str__(self) -> str:  # the message alone, not "[Errno 28] ..."
        return self.message

    def __reduce__(self) -> Any:
        return type(self), (self.where, self.what, self.needed, self.free)


def existing_dir(path: str | os.PathLike[str]) -> Path:
    """The directory ``path`` will be written into, or its nearest existing ancestor (where the free space
    of the filesystem that will hold it can be asked)."""
    p = Path(path)
    while not p.is_dir():
        if p.parent == p:
            break
        p = p.parent
    return p


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged write may still take on the filesystem holding ``path`` (or its nearest
    existing ancestor), as ``shutil.disk_usage`` reports them."""
    return int(shutil.disk_usage(existing_dir(path)).free)


def require_free(path: str | os.PathLike[str], needed: int, what: str) -> int:
    """Raise :class:`DiskFullError` unless the filesystem of ``path`` (a directory to be written into,
    created or not) has ``needed`` bytes free for ``what``; return the free bytes."""
    free = free_bytes(path)
    if needed > free:
        raise DiskFullError(path, what, needed, free)
    return free


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is a write that found no space (ENOSPC, EDQUOT, or an error of a native writer that
    names them)."""
    if isinstance(err, DiskFullError):
        return False  # already reported
    if isinstance(err, OSError) and err.errno in FULL_ERRNOS:
        return True
    text = str(err).lower().replace(" ", "") if isinstance(err, Exception) else ""
    return any(t.replace(" ", "") in text for t in _FULL_TEXTS)


@contextlib.contextmanager
def space_for(path: str | os.PathLike[str], needed: int | None, what: str) -> Iterator[int]:
    """Around the writes of ``what`` into the directory ``path``: first :func:`require_free` (when ``needed``
    is known), then any error of a write that found no space is raised again as :class:`DiskFullError` with
    the bytes needed and the bytes that were free when the writes began. Yields those free bytes."""
    free = require_free(path, needed, what) if needed is not None else free_bytes(path)
    try:
        yield free
    except Exception as err:
        if is_disk_full(err):
            raise DiskFullError(path, what, needed, free) from err
        raise


def reserve(fd: int, size: int) -> None:
    """Allocate ``size`` bytes of the open file ``fd`` now (``posix_fallocate``), so a memory-mapped write
    into it cannot fail later: on a full disk a write through a memory map kills the process with SIGBUS,
    where a reservation raises ENOSPC here. Does nothing where the call is missing or the filesystem does
    not support it; ENOSPC and EDQUOT are raised."""
    if size <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno in FULL_ERRNOS:
            raise
        # EINVAL, EOPNOTSUPP, ENODEV: the filesystem cannot reserve; the write goes on unreserved


BLOCK = 4096
"""What a file takes at least, and the unit it grows in, on most filesystems."""


def on_disk(n_bytes: int) -> int:
    """``n_bytes`` of a file rounded up to whole blocks."""
    return -(-int(n_bytes) // BLOCK) * BLOCK


def checkpoint_bytes(model: Any) -> int:
    """What ``model`` written as a Hugging Face directory takes, about: its distinct parameters (a tied head
    once) in their dtype, plus the tokenizer (``vocab_size`` x 128 bytes, an upper bound of the tokenizer
    files of the supported families) and 1 MB for the config files."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(weights) + int(getattr(config, "vocab_size", 0) or 0) * 128 + 1_000_000


def tree_bytes(path: str | os.PathLike[str]) -> int:
    """The space a file or directory tree takes on disk (allocated blocks: a sparse file counts what it
    holds, not its length)."""
    p = Path(path)
    try:
        if not p.is_dir() or p.is_symlink():
            return p.lstat().st_blocks * 512
    except OSError:
        return 0
    total = 0
    for dirpath, _dirnames, filenames in os.walk(p):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total
