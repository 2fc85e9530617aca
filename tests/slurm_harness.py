"""A real single-node Slurm cluster for the tests, and helpers to read what it ran.

It reuses the recipe beside the checkout (``../shared/tools/slurm``: Debian's Slurm 22.05, munge,
slurmdbd with MariaDB for ``sacct``, one fake GPU), which needs root. :func:`start` returns None
with the reason when Slurm cannot be started here, so the tests can skip with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT.parent / "shared" / "tools" / "slurm"
ORIGINAL_PATH = os.environ.get("PATH", "")
"""The PATH as the test session began (read when the tests are collected), before conftest's
``no_slurm_controller`` put an ``scontrol`` that fails first: test_slurm.py's cluster needs the real one."""


def cannot_start() -> str | None:
    """Why Slurm cannot be started on this machine, or None if it can."""
    if not (RECIPE / "start-slurm.sh").is_file():
        return f"the Slurm recipe {RECIPE}/start-slurm.sh is not beside the checkout"
    if os.geteuid() != 0:
        return "starting the Slurm daemons needs root (CI runs as root)"
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        return "neither Slurm nor apt-get (to install Debian's Slurm) is on this machine"
    return None


def start(timeout: int = 900) -> str | None:
    """Bring the cluster up (installs the Debian packages the first time); None when it is up, else why not."""
    reason = cannot_start()
    if reason:
        return reason
    out = subprocess.run([str(RECIPE / "start-slurm.sh")], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        return f"start-slurm.sh failed ({out.returncode}): {(out.stdout + out.stderr)[-1500:]}"
    return None


def stop() -> None:
    """Stop every daemon the recipe started (cancelling queued jobs first); nothing to do without the recipe."""
    script = RECIPE / "stop-slurm.sh"
    if script.is_file():
        subprocess.run([str(script)], capture_output=True, text=True, timeout=300)


def jobs_by_rule(log_dir: Path) -> dict[str, list[str]]:
    """Slurm job ids per rule, from the plugin's per-job logs (``<log_dir>/rule_<name>/.../<id>.log``)."""
    found: dict[str, list[str]] = {}
    for log in sorted(log_dir.rglob("*.log")):
        rule_dir = next(p for p in log.relative_to(log_dir).parts if p.startswith("rule_"))
        found.setdefault(rule_dir.removeprefix("rule_"), []).append(log.stem)
    return found


def sacct(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """Accounting records (state, allocated TRES, exit code) of whole jobs, by job id."""
    out = subprocess.run(["sacct", "-n", "-P", "-X", "-j", ",".join(job_ids),
                          "--format=JobID,State,AllocTRES,ExitCode"], capture_output=True, text=True, check=True)
    records = {}
    for line in out.stdout.splitlines():
        job_id, state, tres, code = line.split("|")
        records[job_id] = {"state": state, "tres": tres, "exit": code}
    return records


def wait_for_state(job_id: str, prefix: str, timeout: float = 120) -> str:
    """Poll sacct until the job's state starts with ``prefix`` (accounting may lag the controller);
    returns the last state seen ("" when sacct has no record yet)."""
    import time

    deadline, state = time.time() + timeout, ""
    while time.time() < deadline:
        try:
            state = sacct([job_id]).get(job_id, {}).get("state", "")
        except subprocess.CalledProcessError:
            state = ""
        if state.startswith(prefix):
            break
        time.sleep(1)
    return state


def running_job(comment_prefix: str) -> str | None:
    """The id of a running job whose comment (``rule_<name>_wildcards_...``) starts with the prefix."""
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        job_id, _, comment = line.partition("|")
        if comment.startswith(comment_prefix):
            return job_id
    return None
