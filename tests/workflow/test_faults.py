"""A SIGKILLed capture job (the whole run killed while it writes) leaves nothing a rerun would trust, and
the rerun gives the results of an uninterrupted capture. In a private copy of the completed tiny run."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tiny import snakemake, snakemake_cmd, tiny_config
from tinyrun import audited, sha

pytestmark = pytest.mark.slow


def test_killed_capture_job_leaves_nothing_trusted_and_rerun_matches(own_copy):
    """SIGKILL the whole run while the capture job writes; rerun; compare with an uninterrupted capture.

    The killed run captures one sequence at a time, so that it is still writing when it is killed; the rerun
    and the uninterrupted capture take 16 at a time (the batch size is no setting a rerun follows, and the
    two runs compared use the same one)."""
    workdir = own_copy
    cfg = tiny_config(activations={"batch_size": 1, "tokens_per_sequence": 32},
                      calibration={"docs": {"source": "python-docs", "n_samples": 48, "seqlen": 64}})
    target = "results/smol/activations/docs"
    act_dir = workdir / "results/smol/activations"
    proc = subprocess.Popen(snakemake_cmd(workdir, cfg, target), cwd=workdir, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not any(act_dir.glob(".docs.tmp-*/layer_030.npy")):
            assert proc.poll() is None, "snakemake finished before it could be killed"
            time.sleep(0.2)
        time.sleep(1.0)  # let a few batches land in the memory-mapped files
        assert any(act_dir.glob(".docs.tmp-*")), "capture never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # SIGKILL leaves the run's warm-start server no chance to remove its directory (lorp.workflow.warm)
        for log in Path(tempfile.gettempdir()).glob("lorp-warm-*/server.log"):
            if str(workdir) in log.read_text(errors="replace"):
                shutil.rmtree(log.parent, ignore_errors=True)
    assert not (act_dir / "docs").exists(), "a killed capture left an output that a rerun would trust"

    subprocess.run([sys.executable, "-m", "snakemake", "--directory", str(workdir), "--unlock",
                    "--configfile", str(workdir / "config.yaml")], cwd=workdir, capture_output=True, check=True)
    cfg["activations"]["batch_size"] = 16
    out = snakemake(workdir, cfg, target)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "rule capture_activations:" in out.stdout + out.stderr  # the capture was run again
    assert not list(act_dir.glob(".docs.tmp-*")), "the killed job's temporaries were not cleaned up"
    after_kill = {p.name: sha(p) for p in (act_dir / "docs").iterdir()}

    out = snakemake(workdir, cfg, target, "--forcerun", "capture_activations")
    assert out.returncode == 0, out.stderr[-3000:]
    assert {p.name: sha(p) for p in (act_dir / "docs").iterdir()} == after_kill


def _mount_tmpfs(path: Path, size_kb: int) -> bool:
    """Mount a tmpfs of ``size_kb`` at ``path``; False where mounting is refused (not root, a container)."""
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_refuses_the_capture_with_the_numbers_and_the_rerun_matches(own_copy):
    """The activations' filesystem is a tmpfs half their size: the capture is refused before it writes, the
    terminal names the directory with the bytes needed and free, nothing is left that the audit does not
    report; with the space back, the rerun writes the clean run's bytes."""
    workdir = own_copy
    act_dir = workdir / "results/smol/activations"
    target = "results/smol/activations/docs"
    clean = {p.name: sha(p) for p in (workdir / target).iterdir()}
    size = sum((workdir / target / name).stat().st_size for name in clean)
    shutil.rmtree(act_dir)
    act_dir.mkdir()
    if not _mount_tmpfs(act_dir, max(64, size // 2048)):
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = snakemake(workdir, tiny_config(), target)
        assert out.returncode != 0, out.stderr[-3000:]
        m = re.search(r"no space left on results/smol/activations for the activations \(31 layers of \d+ x 576 "
                      r"float16\): needed ([\d.]+) MB, free ([\d.]+) MB", out.stderr)
        assert m, out.stderr[-3000:]
        assert float(m.group(1)) * 1e6 >= size > float(m.group(2)) * 1e6
        assert list(act_dir.iterdir()) == []  # refused before anything was written
        findings = {(f.kind, f.path) for f in audited(workdir)}
        assert findings == {("missing", target)}, findings  # nothing unexplained, no leftover
    finally:
        subprocess.run(["umount", str(act_dir)], check=True)
    out = snakemake(workdir, tiny_config(), target)
    assert out.returncode == 0, out.stderr[-3000:]
    assert {p.name: sha(p) for p in (workdir / target).iterdir()} == clean
