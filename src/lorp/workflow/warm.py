"""Warm job starts on one machine: each job runs in a fresh fork of a process that imported PyTorch once.

Every job of a Snakemake run is a new Python interpreter, and a job that touches a model first imports
PyTorch and Transformers: about 5 s of a CPU core, as much as the forward passes of many of the embedded
default's jobs. A local run (``snakemake --cores N`` on one machine) therefore starts one server
(:func:`start`, from the Snakefile's ``onstart``; the server itself is :mod:`lorp.workflow.warm_server`) that
imports those libraries (:data:`PRELOAD`) and waits.
The script of each job, on entering :func:`lorp.workflow.jobs.job`, asks the server to run it
(:func:`delegate`): the server forks, and the fork runs the same script, with the job's working
directory, environment, arguments and standard streams, while the job's own process waits, forwards the
signals it receives and exits with the fork's status. A fork is a copy of the server as it was after the
imports, never of another job, and it imports the ``lorp`` package anew, so the code that runs is the
code on disk, as in a new interpreter.

The job runs in its own interpreter, as before, whenever the server is not there or does not apply: a
cluster job, a dry run, ``--no-hooks``, ``LORP_WARM_START=0``, another Python than the server's (a conda
environment, a container), an import-time environment other than the server's (:data:`IMPORT_ENV_PREFIXES`:
the libraries the server imported read those variables once, at import), a machine with a CUDA device (the
CUDA runtime does not survive a fork once it is initialised; on a GPU the imports are a small part of a
job), or a system without ``fork`` (only Linux is served).

The server's log is ``results/logs/warm-start.log`` under the run's working directory (:data:`LOG`): one file
that every run appends to, each run's part starting with a dated line, and kept when the server stops;
it names every job served and every job refused, with the reason. The socket lives in a private directory
(mode 0700) under the system's temporary directory, removed when the server stops.

Protocol (a Unix socket in a private directory): the job sends one byte with its three standard streams
(``SCM_RIGHTS``), then one JSON line (``argv``, ``cwd``, ``env``, ``executable``, ``prefix``, ``version``);
the server answers a JSON line ``{"pid": ...}`` (or ``{"refused": why}``), and once the fork has exited
``{"status": exit code}`` (negative: killed by that signal).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SOCKET_ENV = "LORP_WARM_SOCKET"
"""Where the jobs of a local run find the server (set in Snakemake's environment, inherited by jobs)."""
CHILD_ENV = "LORP_WARM_CHILD"
"""Set in a fork that runs a job, so that the job does not ask again."""
SWITCH_ENV = "LORP_WARM_START"
"""``0`` turns warm starts off: every job starts its own interpreter."""

PRELOAD = (
    "numpy",
    "pandas",
    "tqdm.auto",
    "torch",
    "safetensors.torch",
    "transformers",
    "transformers.modeling_utils",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
)
"""The modules the server imports once: the libraries every model-loading job needs (not ``lorp``)."""

IMPORT_ENV_PREFIXES = (
    "PYTHON",  # the interpreter's own settings, read at its start (PYTHONHASHSEED, PYTHONWARNINGS, ...)
    "LD_",  # which shared libraries load (LD_LIBRARY_PATH, LD_PRELOAD)
    "HF_", "HUGGINGFACE_", "XDG_CACHE_HOME",  # huggingface_hub's and Transformers' constants (HF_HOME, HF_HUB_OFFLINE)
    "TRANSFORMERS_", "TOKENIZERS_", "SAFETENSORS_",
    "TORCH", "PYTORCH_", "CUDA_",  # TORCH_HOME, TORCHINDUCTOR_*, PYTORCH_CUDA_ALLOC_CONF, CUDA_VISIBLE_DEVICES
    "NUMPY_", "OMP_", "KMP_", "GOMP_", "MKL_", "OPENBLAS_", "GOTO_", "VECLIB_", "BLIS_", "NUMEXPR_",  # math libraries
)
"""The environment variables (by prefix) that the libraries the server preloads read when they are imported:
a job whose values of them differ from the server's at its start (set, unset or changed) is refused and
runs in its own interpreter, as the fork would have libraries set up for another environment. Except
:data:`PER_JOB_ENV`."""

PER_JOB_ENV = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "KMP_DUPLICATE_LIB_OK")
"""Not compared, as every job has its own value whoever runs it: Snakemake sets the thread counts to each
job's ``threads`` (``snakemake/shell.py``), and :func:`lorp.workflow.jobs.job` sizes the thread pools of the
libraries a fork already has loaded to them (``torch.set_num_threads``, ``threadpoolctl``); threadpoolctl,
which :mod:`lorp.workflow.jobs` imports before it asks the server, sets ``KMP_DUPLICATE_LIB_OK=True`` in the
job's process (if unset), which only lets a second Intel OpenMP runtime load (the server's imports did
without)."""

LOG = Path("results", "logs", "warm-start.log")
"""The server's log, under the working directory of the run that starts it (:func:`start`); appended to."""

WAIT_S = 30.0
"""How long a job waits for a server that is still importing before it starts its own interpreter."""

_SERVER: Server | None = None


def enabled() -> bool:
    """Whether warm starts may be used on this machine (Linux with ``fork``, not switched off)."""
    return (sys.platform.startswith("linux") and hasattr(os, "fork")
            and os.environ.get(SWITCH_ENV, "1").strip().lower() not in {"0", "false", "no", "off"})


# ------------------------------------------------------------------------------------------- server side
class Server:
    """A running warm-start server: its process, its socket (in a private directory) and its log."""

    def __init__(self, directory: Path, process: subprocess.Popen, log: Path | None = None) -> None:
        self.directory = directory
        self.socket = directory / "socket"
        self.log = log or directory / "server.log"
        self.process = process

    def ready(self, timeout_s: float = 0.0) -> bool:
        """Whether the server listens (waiting up to ``timeout_s``; ``False`` if it exited)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.socket.exists():
                return True
            if self.process.poll() is not None or time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (its running forks are the jobs' own: they finish or are stopped by their jobs)
        and remove its directory (and the log, if it is there)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def launch(env: dict[str, str] | None = None, log: str | Path | None = None) -> Server:
    """Start a server process (with ``env``, else this process's environment) with its socket in a new
    private directory, appending its output to ``log`` (else ``server.log`` in that directory, removed with
    it). It imports in the background and listens once :meth:`Server.ready`; jobs find it through
    ``LORP_WARM_SOCKET`` (:func:`start` sets it). It stops with :meth:`Server.stop` or when this process
    dies."""
    directory = Path(tempfile.mkdtemp(prefix="lorp-warm-"))  # 0700, and short: a socket path has 107 bytes
    path = Path(log).resolve() if log is not None else directory / "server.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lorp.workflow.warm_server", str(directory / "socket"), str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=dict(env or os.environ))
    return Server(directory, process, path)


def start() -> Server | None:
    """Start the server for the jobs this process will start and point them to it (``LORP_WARM_SOCKET`` in
    ``os.environ``, which they inherit); ``None`` where warm starts are off. Its log is :data:`LOG` under the
    working directory. It stops with :func:`stop`, at this process's exit, or when this process dies. Jobs
    that start while it still imports wait for it (:func:`delegate`)."""
    global _SERVER
    if not enabled():
        return None
    if _SERVER is None:
        _SERVER = launch(log=LOG)
        os.environ[SOCKET_ENV] = str(_SERVER.socket)
        atexit.register(stop)
    return _SERVER


def stop() -> None:
    """Stop the server :func:`start` started, if any, and stop pointing jobs to it."""
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None
    os.environ.pop(SOCKET_ENV, None)


def cuda_visible() -> bool:
    """Whether PyTorch sees a CUDA device, asked without initialising CUDA (NVML), so a fork could still
    use it; the server does not serve then."""
    import torch

    return torch.version.cuda is not None and torch.cuda.is_available()


SIGNAL_CAUSES = {
    "SIGBUS": "bus error: a memory-mapped write failed, often a full disk",
    "SIGKILL": "killed outright, often by the out-of-memory killer (see dmesg) or a scheduler's memory limit",
    "SIGSEGV": "segmentation fault: a crash in native code",
    "SIGABRT": "aborted by native code",
    "SIGTERM": "cancelled",
    "SIGINT": "cancelled",
    "SIGHUP": "cancelled: its terminal was closed",
    "SIGXFSZ": "a file grew past the size limit",
}
"""What a job killed by each signal most likely met, for :func:`killed_by`."""


def killed_by(sig: int) -> str:
    """``killed by SIGBUS (bus error: ...)``: a signal that ended a job, by name and likely cause."""
    try:
        name = signal.Signals(sig).name
    except ValueError:
        return f"killed by signal {sig}"
    cause = SIGNAL_CAUSES.get(name) or (signal.strsignal(sig) or "").lower()
    return f"killed by {name}" + (f" ({cause})" if cause else "")


def report_signal(sig: int, label: str | None = None, log: str | os.PathLike[str] | None = None) -> str:
    """Say on stderr, and at the end of the job's ``log`` when given, that the job ``label`` was killed by
    the signal ``sig`` (its name and likely cause); returns the line. The fork that ran the job cannot say it
    itself, and its exit status alone (``128 + sig``) is all Snakemake would show."""
    line = f"[lorp] {label or os.path.basename(sys.argv[0] if sys.argv else 'job')} {killed_by(sig)}"
    if log:
        with contextlib.suppress(OSError):
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"\n{line}\n")
    print(line + (f" (log: {log})" if log else ""), file=sys.stderr, flush=True)
    return line


def delegate(label: str | None = None, log: str | os.PathLike[str] | None = None) -> int | None:
    """Run this job's script in a fork of the warm-start server, if there is one for it: the fork's exit
    status (a signal ``s`` as ``128 + s``), or ``None`` when the job must run here (no server, a refusal,
    or this process is already a fork of it). A server that still imports is waited for (at most
    :data:`WAIT_S`), as the job would otherwise spend that time importing the same libraries. A fork killed
    by a signal is reported by name, as ``label`` (the rule), on stderr and in the job's ``log``
    (:func:`report_signal`)."""
    path = os.environ.get(SOCKET_ENV)
    if not path or os.environ.get(CHILD_ENV) or not enabled() or not sys.argv or not sys.argv[0]:
        return None
    deadline = time.monotonic() + WAIT_S
    while not os.path.exists(path):  # the server still imports: as long as a new interpreter would
        if declined(path).exists() or not os.path.isdir(os.path.dirname(path)) or time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = {"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ),
                   "executable": sys.executable, "prefix": sys.prefix, "version": sys.version}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        socket.send_fds(conn, [b"R"], [0, 1, 2])
        conn.sendall(json.dumps(request).encode() + b"\n")
        replies = conn.makefile("rb")
        first = json.loads(replies.readline() or b"{}")
    except (OSError, ValueError):
        conn.close()
        return None
    if "pid" not in first:
        conn.close()
        return None
    pid = int(first["pid"])

    def forward(sig: int, _frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        line = replies.readline()
    except OSError:
        line = b""
    finally:
        conn.close()
    if not line:  # the server is gone: the fork's outcome is unknown, so it is stopped and the job fails
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        print("[lorp] the warm-start server stopped while it ran this job; run the job again", file=sys.stderr,
              flush=True)
        return 1
    status = int(json.loads(line)["status"])
    if status < 0:
        report_signal(-status, label, log)
    return 128 - status if status < 0 else status


def declined(path: str | Path) -> Path:
    """The file a server leaves beside its socket ``path`` once it does not serve (any more): jobs that wait
    for it to listen stop waiting."""
    return Path(f"{path}.declined")
