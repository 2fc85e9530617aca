"""The tiny workflow config on the embedded model and the helpers that run Snakemake on a copy of the
workflow; shared by the workflow and Slurm tests (the session fixtures are in conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ZEROSHOT_DIR = ROOT.parent / "shared" / "data" / "zeroshot"
TASKS = ["arc_easy", "copa"]
METHODS = ["lorp", "shortgpt", "streamline", "angular"]
EXPORTED = ("shortgpt", "streamline")  # exported as checkpoints at budget 3 where the config runs them
CORES = "2"


def tiny_config(**overrides) -> dict:
    """A few seconds of every stage: 4 x 64 calibration tokens, four methods at budget 3, two windows
    of perplexity, two zero-shot tasks on 4 examples (where the task files are beside the checkout), and
    the checkpoints of :data:`EXPORTED` at budget 3 (of the methods the config runs)."""
    cfg = {
        "models": {"smol": {"source": "embedded"}},
        "calibration": {"docs": {"source": "python-docs", "n_samples": 4, "seqlen": 64}},
        "activations": {"batch_size": 4},
        "methods": {m: {} for m in METHODS},
        "budgets": [3],
        "evaluation": {"seqlen": 64, "max_windows": 2, "batch_size": 2,
                       "datasets": {"python-docs": {"source": "python-docs"}}},
        "efficiency": {"batch_size": 1, "seqlen": 16, "decode_tokens": 4, "warmup": 1, "repeats": 2},
    }
    if ZEROSHOT_DIR.is_dir():  # the task files live beside the checkout (also in CI)
        cfg["zeroshot"] = {"tasks": TASKS, "data_dir": str(ZEROSHOT_DIR), "limit": 4, "batch_size": 4}
    cfg.update(overrides)
    if "checkpoints" not in overrides:
        cfg["checkpoints"] = {"export": [f"{m}-3" for m in EXPORTED if m in cfg["methods"] and 3 in cfg["budgets"]]}
    return cfg


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow's code in ``dest`` (tests may edit it)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "rules", "scripts", "schemas", "src", "envs", "report", "slurm", "profiles"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def copy_run(src: Path, dest: Path, results: tuple[str, ...] | None = None) -> Path:
    """A copy of a workflow directory (code, results and Snakemake's metadata) that Snakemake sees in the
    same state: ``copytree`` copies with ``copy2`` and then the folders' times, so every mtime is kept. No
    path in the metadata needs rewriting: every input path is relative to the working directory (the
    zero-shot task definitions included, ``zeroshot_data`` in rules/common.smk), so a moved results
    directory stays up to date. Snakemake's IO cache is left out. With ``results``, of ``results/`` only
    those paths (relative to it) are copied."""
    src, dest = Path(src).resolve(), Path(dest).resolve()

    def ignored(dirpath: str, names: list[str]) -> set[str]:
        out = {name for name in names if name in ("__pycache__", "iocache")}
        rel = Path(dirpath).relative_to(src)
        if results is not None and rel.parts[:1] == ("results",):
            inside = [(rel / name).relative_to("results").as_posix() for name in names]
            out |= {name for name, path in zip(names, inside)
                    if not any(path == k or k.startswith(path + "/") or path.startswith(k + "/") for k in results)}
        return out

    shutil.copytree(src, dest, symlinks=True, ignore=ignored)
    return dest


def write_config(workdir: Path, config: dict, path: Path | None = None) -> Path:
    """The config written to ``path`` (``workdir/config.yaml`` by default; a run that must leave the
    working directory as it was writes it elsewhere)."""
    path = path or workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_cmd(workdir: Path, config: dict, *args: str, configfile: Path | None = None) -> list[str]:
    path = write_config(workdir, config, configfile)
    return [sys.executable, "-m", "snakemake", "--directory", str(workdir), "--configfile", str(path),
            "--cores", CORES, *args]


def snakemake(workdir: Path, config: dict, *args: str, env: dict | None = None,
              configfile: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(workdir, config, *args, configfile=configfile), cwd=workdir,
                          capture_output=True, text=True, env=env)
