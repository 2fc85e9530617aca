"""Warm job starts (lorp.workflow.warm): a job's script runs in a fork of a server that imported PyTorch,
with the job's streams, directory, environment, arguments and exit status; without a server it runs in
its own interpreter. The tiny workflow's jobs start warm (tests/workflow/test_warm_start.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lorp.workflow import warm

pytestmark = pytest.mark.skipif(not warm.enabled(), reason="warm starts need Linux and fork")

SRC = str(Path(__file__).resolve().parents[1] / "src")

# A job script as Snakemake would run it: it asks the server first (what lorp.workflow.jobs.job does).
SCRIPT = textwrap.dedent("""
    import os, sys, time
    already = sorted(m for m in sys.modules if m == "lorp" or m.startswith("lorp."))
    from lorp.workflow import warm
    status = warm.delegate()
    if status is not None:
        print(f"delegated {status}", file=sys.stderr)
        sys.exit(status)
    mode = sys.argv[1]
    print(f"pid={os.getpid()} warm={os.environ.get(warm.CHILD_ENV)} cwd={os.getcwd()} "
          f"token={os.environ.get('JOB_TOKEN')} torch={'torch' in sys.modules} lorp_before={already} "
          f"argv={sys.argv[1:]}", flush=True)
    if mode == "fail":
        raise ValueError("the job's own error")
    if mode == "exit":
        sys.exit(int(sys.argv[2]))
    if mode == "atexit":  # what a job leaves to the end of its interpreter still happens
        import atexit, threading
        atexit.register(lambda: open(sys.argv[2], "a").write("exit handler\\n"))
        threading.Thread(target=lambda: (time.sleep(0.5), open(sys.argv[2], "a").write("thread\\n"))).start()
    if mode == "sleep":
        open(sys.argv[2], "w").write(str(os.getpid()))
        time.sleep(60)
""")


def job_env(server=None, **extra: str) -> dict[str, str]:
    """The environment of a job (or, without ``server``, of a server): this checkout's package, no
    inherited warm-start variables, one import-time variable (Transformers' default verbosity, so a job can
    lack one the server has), ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if k not in (warm.SOCKET_ENV, warm.CHILD_ENV)}
    env["PYTHONPATH"] = SRC
    env["TRANSFORMERS_VERBOSITY"] = "warning"
    env.update(extra)
    if server is not None:
        env[warm.SOCKET_ENV] = str(server.socket)
    return env


@pytest.fixture(scope="module")
def server():
    srv = warm.launch(job_env())
    try:
        assert srv.ready(120), srv.log.read_text()
        yield srv
    finally:
        srv.stop()


def run_job(tmp_path: Path, server: warm.Server | None, *args: str, unset: tuple[str, ...] = (),
            **env: str) -> subprocess.CompletedProcess:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    environment = job_env(server, **{"JOB_TOKEN": "t-42", **env})
    for name in unset:
        del environment[name]
    return subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=120)


def fields(stdout: str) -> dict[str, str]:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("pid="))
    head, argv = line.split(" argv=")
    return {**dict(kv.split("=", 1) for kv in head.split(" ")), "argv": argv}


def test_a_job_runs_in_a_fork_with_its_own_streams_directory_environment_and_arguments(server, tmp_path):
    out = run_job(tmp_path, server, "ok", "x y")
    assert out.returncode == 0, out.stderr
    got = fields(out.stdout)
    assert got["warm"] == "1" and got["torch"] == "True"  # the server's imports, reused
    assert got["cwd"] == str(tmp_path) and got["token"] == "t-42" and got["argv"] == "['ok', 'x y']"
    assert got["lorp_before"] == "[]"  # the package is imported from disk by the job, not kept from the server
    assert "delegated 0" in out.stderr  # the job's own process only waited


def test_the_job_without_a_server_runs_in_its_own_interpreter(tmp_path):
    out = run_job(tmp_path, None, "ok")
    assert out.returncode == 0, out.stderr
    assert fields(out.stdout)["warm"] == "None" and "delegated" not in out.stderr


def test_warm_starts_switched_off_run_the_job_here(server, tmp_path):
    out = run_job(tmp_path, server, "ok", **{warm.SWITCH_ENV: "0"})
    assert out.returncode == 0, out.stderr
    assert fields(out.stdout)["warm"] == "None"


def test_a_job_with_another_import_path_is_refused_and_runs_here(server, tmp_path):
    out = run_job(tmp_path, server, "ok", PYTHONPATH=os.pathsep.join([SRC, str(tmp_path)]))
    assert out.returncode == 0, out.stderr
    assert fields(out.stdout)["warm"] == "None"
    assert "refused: the job's PYTHONPATH" in server.log.read_text()


@pytest.mark.parametrize("change, named", [
    ({"HF_HOME": "{tmp}/hf"}, "HF_HOME (set in the job only)"),
    ({"TRANSFORMERS_OFFLINE": "1"}, "TRANSFORMERS_OFFLINE (set in the job only)"),
    ({"TRANSFORMERS_VERBOSITY": "error"}, "TRANSFORMERS_VERBOSITY (changed)"),
    ({"unset": ("TRANSFORMERS_VERBOSITY",)}, "TRANSFORMERS_VERBOSITY (unset in the job)"),
    ({"PYTHONHASHSEED": "0", "TORCH_HOME": "{tmp}/torch"}, "PYTHONHASHSEED (set in the job only), TORCH_HOME"),
])
def test_a_job_with_another_import_time_environment_is_refused_and_runs_cold(server, tmp_path, change, named):
    """The server's libraries read these variables when it imported them: a fork would run the job with the
    server's hub cache, offline mode, verbosity or hash seed. The job runs in its own interpreter instead,
    with the exit status and output a warm start gives."""
    change = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in change.items()}
    seen = len(server.log.read_text())
    cold = run_job(tmp_path, server, "exit", "3", **change)
    assert cold.returncode == 3, cold.stderr
    got = fields(cold.stdout)
    assert got["warm"] == "None" and "delegated" not in cold.stderr
    log = server.log.read_text()[seen:]
    assert f"refused: the job's import-time environment is not the server's: {named}" in log, log
    warm_run = run_job(tmp_path, server, "exit", "3")
    assert warm_run.returncode == cold.returncode == 3 and "delegated 3" in warm_run.stderr, warm_run.stderr
    warm_ = fields(warm_run.stdout)
    assert warm_["warm"] == "1"
    assert {k: got[k] for k in ("cwd", "token", "argv")} == {k: warm_[k] for k in ("cwd", "token", "argv")}


@pytest.mark.parametrize("change", [{"FOO": "1", "LORP_SOMETHING": "x"},
                                    {name: "2" for name in warm.PER_JOB_ENV}])  # what Snakemake sets per job
def test_other_variables_and_the_jobs_thread_counts_do_not_refuse_a_job(server, tmp_path, change):
    seen = len(server.log.read_text())
    out = run_job(tmp_path, server, "ok", **change)
    assert out.returncode == 0, out.stderr
    assert fields(out.stdout)["warm"] == "1", server.log.read_text()[seen:]


def test_the_server_started_for_a_run_logs_under_its_results_logs(tmp_path, monkeypatch):
    """The log of :func:`warm.start` is results/logs/warm-start.log of the working directory, appended to and
    kept once the server stops; the socket is in a private directory elsewhere."""
    monkeypatch.chdir(tmp_path)
    for name, value in job_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(warm.SOCKET_ENV, raising=False)
    log = tmp_path / "results" / "logs" / "warm-start.log"
    log.parent.mkdir(parents=True)
    log.write_text("an earlier run\n")
    srv = warm.start()
    try:
        assert srv.log == log and srv.ready(120), log.read_text()
        assert srv.socket.parent.stat().st_mode & 0o777 == 0o700 and tmp_path not in srv.socket.parents
        out = run_job(tmp_path, srv, "ok")
        assert fields(out.stdout)["warm"] == "1", out.stderr
    finally:
        warm.stop()
    text = log.read_text()
    assert text.startswith("an earlier run\n[lorp-warm] ") and f"in {tmp_path}" in text, text
    assert "[lorp-warm] served 1 jobs; stopped" in text and not srv.socket.parent.exists()


@pytest.mark.parametrize("args, status", [(("exit", "3"), 3), (("exit", "0"), 0), (("fail",), 1)])
def test_the_job_exits_with_the_status_of_its_fork(server, tmp_path, args, status):
    out = run_job(tmp_path, server, *args)
    assert out.returncode == status, out.stderr
    assert fields(out.stdout)["warm"] == "1"
    if args[0] == "fail":
        assert "ValueError: the job's own error" in out.stderr  # the traceback on the job's stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie has exited, it only waits to be reaped
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


def _start_sleeping_job(tmp_path: Path, server: warm.Server) -> tuple[subprocess.Popen, int]:
    script, marker = tmp_path / "job.py", tmp_path / "fork.pid"
    script.write_text(SCRIPT)
    job = subprocess.Popen([sys.executable, str(script), "sleep", str(marker)], cwd=tmp_path, env=job_env(server),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (marker.exists() and marker.read_text()):
        assert time.time() < deadline and job.poll() is None, job.communicate()
        time.sleep(0.05)
    return job, int(marker.read_text())


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.time() + within_s
    while time.time() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_signal_to_the_job_reaches_its_fork(server, tmp_path):
    job, fork = _start_sleeping_job(tmp_path, server)
    assert fork != job.pid
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=30) == 128 + signal.SIGTERM
    assert _gone(fork)


def test_a_killed_job_takes_its_fork_with_it(server, tmp_path):
    job, fork = _start_sleeping_job(tmp_path, server)
    job.kill()
    job.wait(timeout=30)
    assert _gone(fork), "the fork of a killed job went on running"


def test_the_server_stops_when_the_process_that_started_it_dies(tmp_path):
    code = ("import sys, time; from lorp.workflow import warm; s = warm.launch(); "
            "print(s.process.pid, s.socket, flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", code], env=job_env(), stdout=subprocess.PIPE, text=True)
    pid, sock = parent.stdout.readline().split()
    deadline = time.time() + 120
    while not Path(sock).exists():
        assert time.time() < deadline, "the server never listened"
        time.sleep(0.1)
    parent.kill()
    parent.wait()
    assert _gone(int(pid), 10), "the server outlived the run that started it"
    assert not Path(sock).parent.exists(), "the orphaned server left its directory"


def test_a_job_waits_for_a_server_that_still_imports(tmp_path):
    srv = warm.launch(job_env())
    try:
        assert not srv.socket.exists()  # it imports PyTorch first
        out = run_job(tmp_path, srv, "ok")
        assert out.returncode == 0, out.stderr
        assert fields(out.stdout)["warm"] == "1"
    finally:
        srv.stop()


def test_a_server_that_declined_is_not_waited_for(tmp_path):
    (tmp_path / "srv").mkdir()
    warm.declined(tmp_path / "srv" / "socket").touch()  # e.g. a CUDA device was visible
    fake = type("Declined", (), {"socket": tmp_path / "srv" / "socket"})()
    start = time.monotonic()
    out = run_job(tmp_path, fake, "ok")
    assert out.returncode == 0, out.stderr
    assert fields(out.stdout)["warm"] == "None"
    assert time.monotonic() - start < warm.WAIT_S


def test_a_forks_threads_and_exit_handlers_finish_as_in_a_new_interpreter(server, tmp_path):
    out = run_job(tmp_path, server, "atexit", str(tmp_path / "ended.txt"))
    assert out.returncode == 0, out.stderr
    assert fields(out.stdout)["warm"] == "1"
    assert (tmp_path / "ended.txt").read_text() == "thread\nexit handler\n"


JOB_SCRIPT = textwrap.dedent("""
    import os, sys, types
    from lorp.workflow.jobs import job
    smk = types.SimpleNamespace(rule="probe", threads=int(sys.argv[1]), log=[], wildcards=None, output=None,
                                input=None)
    with job(smk):
        import threadpoolctl, torch
        pools = {p["internal_api"]: p["num_threads"] for p in threadpoolctl.threadpool_info()}
        print(f"warm={os.environ.get('LORP_WARM_CHILD')} torch={torch.get_num_threads()} "
              f"blas={pools.get('openblas', pools.get('mkl'))}", flush=True)
""")


@pytest.mark.parametrize("threads", [1, 2])
def test_a_warm_jobs_thread_pools_are_its_threads(server, tmp_path, threads):
    """The server loaded numpy's BLAS and PyTorch before any job's thread count was known: the job sizes
    them (lorp.workflow.jobs.job), as a new interpreter sized from Snakemake's environment would be."""
    script = tmp_path / "probe.py"
    script.write_text(JOB_SCRIPT)
    out = subprocess.run([sys.executable, str(script), str(threads)], cwd=tmp_path, env=job_env(server),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"warm=1 torch={threads} blas={threads}" in out.stdout, out.stdout


KILLED_SCRIPT = textwrap.dedent("""
    import os, signal, sys, types
    from lorp.workflow.jobs import job
    smk = types.SimpleNamespace(rule="capture_activations", threads=1, log=[sys.argv[2]], wildcards=None,
                                output=None, input=None)
    with job(smk):
        print("writing", flush=True)
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
""")


@pytest.mark.parametrize("name, cause", [
    ("SIGBUS", "bus error: a memory-mapped write failed, often a full disk"),
    ("SIGKILL", "often by the out-of-memory killer"),
])
def test_a_warm_job_killed_by_a_signal_names_it_on_the_terminal_and_in_its_log(server, tmp_path, name, cause):
    """The fork's death by a signal reaches the job's process as a status only: it names the signal and its
    likely cause on stderr (Snakemake's terminal) and at the end of the job's log, which stopped mid-way."""
    script, log = tmp_path / "killed.py", tmp_path / "job.log"
    script.write_text(KILLED_SCRIPT)
    out = subprocess.run([sys.executable, str(script), name, str(log)], cwd=tmp_path, env=job_env(server),
                         capture_output=True, text=True, timeout=120)
    sig = getattr(signal, name)
    assert out.returncode == 128 + sig, out.stderr
    line = f"[lorp] capture_activations killed by {name} ("
    assert line in out.stderr and cause in out.stderr, out.stderr
    text = log.read_text()
    assert "(warm start" in text.splitlines()[0] and "writing" in text
    assert text.rstrip().splitlines()[-1].startswith(line) and cause in text, text
    assert f"exit status {-sig} ({warm.killed_by(sig)})" in server.log.read_text()


def test_a_cold_job_killed_by_sigbus_names_it_in_its_log(tmp_path):
    """Without a server (LORP_WARM_START=0, a cluster) the job's own process dies: Snakemake names the signal
    on the terminal ("died with <Signals.SIGBUS: 7>"), and Python's fatal-error handler writes it, with where
    the job was, into the log."""
    script, log = tmp_path / "killed.py", tmp_path / "job.log"
    script.write_text(KILLED_SCRIPT)
    out = subprocess.run([sys.executable, str(script), "SIGBUS", str(log)], cwd=tmp_path,
                         env=job_env(**{warm.SWITCH_ENV: "0"}), capture_output=True, text=True, timeout=120)
    assert out.returncode == -signal.SIGBUS, out.stderr
    text = log.read_text()
    assert "warm start" not in text and "Fatal Python error: Bus error" in text and "killed.py" in text, text


def test_signal_names_and_causes():
    assert warm.killed_by(signal.SIGBUS) == ("killed by SIGBUS (bus error: a memory-mapped write failed, often a "
                                             "full disk)")
    assert warm.killed_by(signal.SIGTERM) == "killed by SIGTERM (cancelled)"
    assert warm.killed_by(signal.SIGUSR1).startswith("killed by SIGUSR1 (user defined signal 1")
    assert warm.killed_by(200) == "killed by signal 200"
