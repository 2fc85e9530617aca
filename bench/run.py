"""Run the benchmarks, each in its own process, and print every benchmark's last line at the end.

    .venv/bin/python bench/run.py                 # all, in order
    .venv/bin/python bench/run.py perplexity capture

Each writes its figures to ``results/bench/<name>.json``; nothing else runs while they do (they time
against each other in one run, but another process on the machine still disturbs both sides).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["capture", "sweep", "similarity", "perplexity", "subsample", "scaling", "sparse", "workflow"]


def main(argv: list[str]) -> int:
    names = argv or [n for n in ORDER if (HERE / f"{n}.py").is_file()]
    unknown = [n for n in names if not (HERE / f"{n}.py").is_file()]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
              f"{', '.join(n for n in ORDER if (HERE / f'{n}.py').is_file())}", file=sys.stderr)
        return 2
    lines, failed = [], []
    for name in names:
        print(f"== {name}", flush=True)
        proc = subprocess.run([sys.executable, str(HERE / f"{name}.py")], stdout=subprocess.PIPE, text=True)
        print(proc.stdout, end="", flush=True)
        if proc.returncode:
            failed.append(name)
            lines.append(f"{name}: failed (exit status {proc.returncode})")
        else:
            lines.append(proc.stdout.strip().splitlines()[-1])
    print("\n".join(["== summary", *lines]))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
