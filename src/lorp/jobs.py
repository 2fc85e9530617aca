"""Run a workflow job: log to the rule's log file, size torch's thread pool, keep the traceback.

Used by the thin adapters in ``scripts/``; it takes the ``snakemake`` object by duck typing and
does not import Snakemake.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def job(smk: Any) -> Iterator[None]:
    """Redirect stdout and stderr to ``smk.log[0]`` (when given) and size thread pools to ``smk.threads``."""
    threads = max(1, int(getattr(smk, "threads", 1) or 1))
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when it is first imported
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    log = list(getattr(smk, "log", []) or [])
    if not log:
        yield
        return
    Path(log[0]).parent.mkdir(parents=True, exist_ok=True)
    with open(log[0], "w", buffering=1, encoding="utf-8") as fh, \
            contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        rule = getattr(smk, "rule", "?")
        print(f"[lorp] rule {rule}, wildcards {dict(getattr(smk, 'wildcards', {}))}", flush=True)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            traceback.print_exc(file=fh)
            raise
        finally:
            print(f"[lorp] {time.perf_counter() - start:.1f} s", flush=True)
            sys.stdout.flush()
