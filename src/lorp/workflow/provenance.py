"""Provenance records: what produced an artifact, from which inputs, with which code and software.

Every job writes one JSON record beside its outputs (``*.provenance.json`` or ``provenance.json``)
holding the rule, wildcards, the config slice it depended on, fingerprints of its inputs and
outputs, the versions of the software that matter, the project's git commit (and whether the
tree was dirty), the device, the wall time and the peak memory. :mod:`lorp.workflow.audit` checks them.

Fingerprints: files up to ``FULL_HASH_LIMIT`` bytes get a full sha256; larger files (activations,
weights) get their size, mtime and a sha256 of ``SAMPLES`` evenly spaced 1 MiB blocks, with the
method written down, so fingerprinting a 70 GB activation set takes seconds.
"""

from __future__ import annotations

import hashlib
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

FULL_HASH_LIMIT = 16 << 20
BLOCK = 1 << 20
SAMPLES = 8
PROVENANCE_SUFFIX = ".provenance.json"
PACKAGES = ("lorp", "torch", "transformers", "numpy", "scikit-learn", "safetensors", "tokenizers", "snakemake")


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(BLOCK), b""):
            h.update(chunk)
    return h.hexdigest()


def _sampled_sha256(path: Path, size: int) -> str:
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        for k in range(SAMPLES):
            fh.seek(max(0, (size - BLOCK) * k // (SAMPLES - 1)))
            h.update(fh.read(BLOCK))
    return h.hexdigest()


def is_provenance(path: Path) -> bool:
    return path.name == "provenance.json" or path.name.endswith(PROVENANCE_SUFFIX)


def _tracked(path: Path) -> bool:
    """Files of a directory artifact that its fingerprint covers: not provenance records, not the
    ``.snakemake_timestamp`` marker Snakemake adds to directory outputs after the job."""
    return path.is_file() and not is_provenance(path) and not path.name.startswith(".snakemake")


def fingerprint_file(path: str | Path) -> dict[str, Any]:
    """A file's fingerprint: full sha256 when small, size + mtime + sampled sha256 when large."""
    path = Path(path)
    st = path.stat()
    if st.st_size <= FULL_HASH_LIMIT:
        return {"method": "sha256", "size": st.st_size, "sha256": sha256_file(path)}
    return {"method": f"sampled-sha256:{SAMPLES}x{BLOCK}", "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": _sampled_sha256(path, st.st_size)}


def fingerprint(path: str | Path) -> dict[str, Any]:
    """Fingerprint of a file, or of every file in a directory (keyed by relative path)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if _tracked(p))
        return {"method": "tree", "files": {str(p.relative_to(path)): fingerprint_file(p) for p in files}}
    return fingerprint_file(path)


def compare(path: str | Path, recorded: Mapping[str, Any]) -> list[str]:
    """Differences between ``path`` now and a recorded fingerprint (empty when it still matches)."""
    path = Path(path)
    if not path.exists():
        return [f"{path}: missing"]
    if recorded.get("method") == "tree":
        if not path.is_dir():
            return [f"{path}: expected a directory"]
        problems = []
        now = {str(p.relative_to(path)) for p in path.rglob("*") if _tracked(p)}
        for rel in sorted(set(recorded["files"]) - now):
            problems.append(f"{path / rel}: missing")
        for rel in sorted(now - set(recorded["files"])):
            problems.append(f"{path / rel}: not in the provenance record")
        for rel in sorted(set(recorded["files"]) & now):
            problems += compare(path / rel, recorded["files"][rel])
        return problems
    current = fingerprint_file(path)
    if current["size"] != recorded.get("size"):
        return [f"{path}: size {current['size']} != recorded {recorded.get('size')}"]
    if current["sha256"] != recorded.get("sha256"):
        return [f"{path}: content differs from the recorded {recorded.get('method')} fingerprint"]
    return []


def software_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(directory: str | Path) -> dict[str, Any]:
    """The commit of the repository holding ``directory`` and whether its tree has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {"host": platform.node(), "cpu": platform.processor() or platform.machine()}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
        info["cuda_peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return info


def peak_memory_mib() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def record(
    rule: str,
    wildcards: Mapping[str, str],
    params: Mapping[str, Any],
    inputs: Iterable[str | Path],
    outputs: Iterable[str | Path],
    wall_time_s: float,
    repo_dir: str | Path,
) -> dict[str, Any]:
    """The provenance record of one finished job."""
    return {
        "rule": rule,
        "wildcards": dict(wildcards),
        "params": dict(params),
        "inputs": {str(p): fingerprint(p) for p in inputs},
        "outputs": {str(p): fingerprint(p) for p in outputs},
        "software": software_versions(),
        "git": git_state(repo_dir),
        "device": device_info(),
        "wall_time_s": round(wall_time_s, 3),
        "peak_memory_mib": peak_memory_mib(),
    }
