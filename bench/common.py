"""Shared pieces of the benchmarks: the embedded model prepared once under ``results/bench/``, the
calibration and evaluation tokens of the default config, paired timing with ``torch.utils.benchmark``,
peak memory of a child process, and the last line every benchmark prints (``name: ratio (target)``).

Every benchmark measures the things it compares side by side in one run, alternating them, so that a
ratio is never taken between numbers measured at different moments.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
WORK = ROOT / "results" / "bench"  # ignored by git, like every result
DEFAULT_CALIBRATION = {"source": "python-docs", "n_samples": 32, "seqlen": 256, "seed": 0, "sampling": "stream",
                       "join": "\n\n", "max_documents": None}


def embedded_model(name: str = "embedded") -> Path:
    """The embedded model (``embedded`` or ``embedded:gemma3-270m``) prepared once as a safetensors directory."""
    from lorp.workflow.stages.model import prepare_model

    out = WORK / name.replace(":", "-") / "model"
    if not (out / "model.json").is_file():
        prepare_model(name, out, "bfloat16")
    return out


def calibration(model_dir: Path, n_samples: int = 32, seqlen: int = 256) -> Any:
    """The default config's calibration windows (int32 [n_samples, seqlen]) for the model's tokenizer."""
    from lorp import data, models

    spec = {**DEFAULT_CALIBRATION, "n_samples": n_samples, "seqlen": seqlen}
    windows, _ = data.calibration_tokens(spec, models.load_tokenizer(models.source_of(model_dir)[0]))
    return windows


def timed_once(fn: Callable[[], Any]) -> float:
    """Seconds of one call of ``fn``, timed by ``torch.utils.benchmark`` (which synchronises CUDA) with the
    process's thread count (the Timer's own default is one thread)."""
    import torch
    from torch.utils.benchmark import Timer

    return Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).timeit(1).times[0]


def alternate(fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Each function timed ``repeats`` times, the functions alternating (order reversed every other round)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names, out = list(fns), {name: [] for name in fns}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            out[name].append(timed_once(fns[name]))
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def child_peak_rss_mib(code: str, python: str | None = None) -> tuple[float, str]:
    """Run ``code`` in a fresh Python (this one, with ``src`` importable, or the interpreter ``python`` of
    another virtualenv, without it) and return its own peak resident set size in MiB (``ru_maxrss`` read at
    its end) and what it printed."""
    footer = "\nimport resource as _r\nprint('PEAK_RSS_KIB', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss)\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")} if python is None else \
        {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run([python or sys.executable, "-c", code + footer], capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        raise RuntimeError(f"the child Python failed ({out.returncode}):\n{out.stderr[-3000:]}")
    lines = out.stdout.strip().splitlines()
    peak = int(lines[-1].split()[1])
    return peak / 1024, "\n".join(lines[:-1])


def report(name: str, ratio: float, target: str, details: Mapping[str, Any]) -> None:
    """Print the benchmark's figures as JSON, then its last line ``name: ratio (target)``; also keep them
    in ``results/bench/<name>.json``."""
    WORK.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "ratio": ratio, "target": target, **details}
    (WORK / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(details, indent=2))
    print(f"{name}: {ratio:.3f} ({target})")
