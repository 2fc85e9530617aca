"""Warm job starts on one machine: each job runs in a fresh fork of a process that imported PyTorch once.

Every job of a Snakemake run is a new Python interpreter, and a job that touches a model first imports
PyTorch and Transformers: about 5 s of a CPU core, as much as the forward passes of many of the embedded
default's jobs. A local run (``snakemake --cores N`` on one machine) therefore starts one server
(:func:`start`, from the Snakefile's ``onstart``) that imports those libraries (:data:`PRELOAD`) and waits.
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
import importlib
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
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
            [sys.executable, "-m", "lorp.workflow.warm", str(directory / "socket"), str(os.getpid())],
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


def _same_python(request: dict[str, Any]) -> str | None:
    """Why the job's interpreter is not the server's, or ``None``."""
    for key, mine in (("executable", os.path.realpath(sys.executable)), ("prefix", sys.prefix),
                      ("version", sys.version)):
        theirs = request.get(key)
        theirs = os.path.realpath(theirs) if key == "executable" and theirs else theirs
        if theirs != mine:
            return f"the job's Python {key} is {theirs!r}, the server's {mine!r}"
    theirs, mine = request.get("env", {}).get("PYTHONPATH"), os.environ.get("PYTHONPATH")
    if theirs != mine:  # the server's import path was set from its own
        return f"the job's PYTHONPATH is {theirs!r}, the server's {mine!r}"
    return None


def import_environment(env: dict[str, str]) -> dict[str, str]:
    """The variables of ``env`` that the preloaded libraries read at import (:data:`IMPORT_ENV_PREFIXES`,
    less :data:`PER_JOB_ENV`)."""
    return {k: v for k, v in env.items() if k.startswith(IMPORT_ENV_PREFIXES) and k not in PER_JOB_ENV}


def _same_environment(request: dict[str, Any], mine: dict[str, str]) -> str | None:
    """Why the job's import-time environment is not the server's (``mine``, as it started), or ``None``.
    Names the variables, never their values (``HF_TOKEN`` is one)."""
    theirs = import_environment(request.get("env", {}))
    how = {k: "set in the job only" if k not in mine else "unset in the job" if k not in theirs else "changed"
           for k in theirs.keys() | mine.keys() if theirs.get(k) != mine.get(k)}
    differ = [f"{k} ({how[k]})" for k in sorted(how)]
    return f"the job's import-time environment is not the server's: {', '.join(differ)}" if differ else None


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """A job's request: its JSON line, and the descriptors of its standard streams."""
    conn.settimeout(10)
    _, fds, _, _ = socket.recv_fds(conn, 1, 3)
    try:
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the job closed the connection before its request was complete")
            data += chunk
        conn.settimeout(None)
        return json.loads(data), list(fds)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _run_fork(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """In the fork: become the job's process (streams, directory, environment, arguments), run its script
    as ``__main__`` and exit with its status. Never returns."""
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[CHILD_ENV] = "1"
        sys.argv = list(request["argv"])
        sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
        for name in [m for m in sys.modules if m == "lorp" or m.startswith("lorp.")]:
            del sys.modules[name]  # the job imports the package from disk, as a new interpreter would
        random.seed()  # a new interpreter seeds from the OS, not from the server's state
        with contextlib.suppress(ImportError):
            import numpy

            numpy.random.seed()

        def orphaned() -> None:  # the job's process is gone (killed): stop, as its own process would have
            with contextlib.suppress(OSError):
                while conn.recv(1024):
                    pass
            os._exit(128 + signal.SIGKILL)

        threading.Thread(target=orphaned, daemon=True, name="lorp-warm-watch").start()
        import runpy

        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
            code = 0
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        except BaseException:
            traceback.print_exc()
            code = 1
    finally:
        # What a new interpreter does at its end, then leave without unwinding into the server's loop:
        # wait for the job's own threads, run the exit handlers, flush the streams.
        with contextlib.suppress(BaseException):
            for thread in threading.enumerate():
                if thread is not threading.main_thread() and not thread.daemon:
                    thread.join()
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def serve(path: str, parent_pid: int) -> int:
    """The server: import :data:`PRELOAD`, listen on ``path``, fork one process per job request, report
    each fork's exit status to its job; return when the process ``parent_pid`` (Snakemake) is gone or on
    SIGTERM/SIGINT."""
    environment = import_environment(dict(os.environ))  # as it started, before the line below
    print(f"[lorp-warm] {time.strftime('%Y-%m-%d %H:%M:%S')}: server {os.getpid()} for process {parent_pid} in "
          f"{os.getcwd()}, socket {path}", flush=True)
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # ask NVML, not the CUDA runtime
    os.environ[CHILD_ENV] = "1"  # nothing the server imports may ask itself to run a job
    start_s = time.perf_counter()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as err:
            print(f"[lorp-warm] not preloaded: {name} ({err})", flush=True)
    if cuda_visible():
        print("[lorp-warm] a CUDA device is visible: not serving (jobs start their own interpreter)", flush=True)
        return 0
    import torch

    if torch.cuda.is_initialized():  # pragma: no cover - the check above does not initialise CUDA
        print("[lorp-warm] CUDA was initialised by an import: not serving", flush=True)
        return 0
    print(f"[lorp-warm] for process {parent_pid} in {os.getcwd()}: imported {', '.join(PRELOAD)} in "
          f"{time.perf_counter() - start_s:.1f} s", flush=True)

    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.append(True))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{path}.tmp"
    listener.bind(tmp)
    listener.listen(64)
    os.rename(tmp, path)  # the socket appears only once it listens
    jobs: dict[int, socket.socket] = {}
    served = 0
    while not stopping and os.getppid() == parent_pid:
        with contextlib.suppress(InterruptedError):
            ready, _, _ = select.select([listener], [], [], 0.2)
            if ready:
                conn, _ = listener.accept()
                try:
                    request, fds = _receive(conn)
                except (OSError, ValueError, ConnectionError) as err:
                    print(f"[lorp-warm] bad request: {err}", flush=True)
                    conn.close()
                    continue
                why = ((_same_python(request) or _same_environment(request, environment)) if len(fds) == 3
                       else "the job did not send its three standard streams")
                if why:
                    print(f"[lorp-warm] refused: {why}", flush=True)
                    _send(conn, {"refused": why})
                    for fd in fds:
                        os.close(fd)
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    for other in jobs.values():
                        other.close()
                    _run_fork(conn, fds, request)
                for fd in fds:
                    os.close(fd)
                jobs[pid] = conn
                served += 1
                _send(conn, {"pid": pid})
                print(f"[lorp-warm] job {pid}: {' '.join(request['argv'])}", flush=True)
        while jobs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = jobs.pop(pid, None)
            print(f"[lorp-warm] job {pid}: exit status {os.waitstatus_to_exitcode(status)}", flush=True)
            if conn is not None:
                _send(conn, {"status": os.waitstatus_to_exitcode(status)})
                conn.close()
    listener.close()
    with contextlib.suppress(OSError):
        os.unlink(path)
    print(f"[lorp-warm] served {served} jobs; {'stopped' if stopping else 'its process is gone'}", flush=True)
    if not stopping:  # orphaned: nobody stops it, so it removes its own directory
        shutil.rmtree(Path(path).parent, ignore_errors=True)
    return 0


# ---------------------------------------------------------------------------------------------- job side
def delegate() -> int | None:
    """Run this job's script in a fork of the warm-start server, if there is one for it: the fork's exit
    status (a signal ``s`` as ``128 + s``), or ``None`` when the job must run here (no server, a refusal,
    or this process is already a fork of it). A server that still imports is waited for (at most
    :data:`WAIT_S`), as the job would otherwise spend that time importing the same libraries."""
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
    return 128 - status if status < 0 else status


def declined(path: str | Path) -> Path:
    """The file a server leaves beside its socket ``path`` once it does not serve (any more): jobs that wait
    for it to listen stop waiting."""
    return Path(f"{path}.declined")


def main(argv: list[str]) -> int:
    """``python -m lorp.workflow.warm SOCKET PARENT_PID``: :func:`serve`, and whatever ends it, mark the
    socket :func:`declined`."""
    path, parent = argv[0], int(argv[1])
    try:
        return serve(path, parent)
    finally:
        with contextlib.suppress(OSError):
            declined(path).touch()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
