"""The warm-start server (:mod:`lorp.workflow.warm`): ``python -m lorp.workflow.warm_server SOCKET PARENT_PID``
imports the preloaded libraries once, then forks a fresh copy of itself for each job that asks, after
checking that the job's interpreter and import-time environment are its own."""

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
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .warm import CHILD_ENV, IMPORT_ENV_PREFIXES, PER_JOB_ENV, PRELOAD, cuda_visible, declined, killed_by

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
            code = os.waitstatus_to_exitcode(status)
            print(f"[lorp-warm] job {pid}: exit status {code}" + (f" ({killed_by(-code)})" if code < 0 else ""),
                  flush=True)
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
