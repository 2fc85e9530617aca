"""Run a workflow job: log to the rule's log file, size thread pools, write the provenance record.

Used by the thin adapters in ``scripts/``; it takes the ``snakemake`` object by duck typing and
does not import Snakemake.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

import threadpoolctl

from ..io import write_json
from . import warm
from .provenance import record

PROVENANCE_KEY = "provenance"


def _named(namedlist: Any) -> dict[str, Any]:
    return dict(namedlist.items()) if hasattr(namedlist, "items") else {}


def write_provenance(smk: Any, wall_time_s: float) -> None:
    """Write the record of a finished job to its ``provenance`` output, if the rule declares one."""
    outputs = _named(smk.output)
    target = outputs.get(PROVENANCE_KEY)
    if target is None:
        return
    products = [p for p in smk.output if p != target]
    repo = Path(getattr(smk, "scriptdir", ".")).resolve().parent
    rec = record(smk.rule, _named(smk.wildcards), _named(smk.params), list(smk.input), products,
                 wall_time_s, repo)
    write_json(target, rec)


USER_ERRORS = (OSError, ValueError, KeyError, MemoryError)
"""Errors whose message names a cause the user can fix (a missing or bad file, a bad record, a full disk, an
unreachable hub, too little memory): the terminal shows the message alone."""


def failure_line(smk: Any, err: BaseException, log: str) -> str:
    """The one line a failed job prints on the terminal and into its log: the cause and the fix, and where
    the traceback is. Out of memory names the batch size to lower."""
    # a KeyError of a sentence is a message (a record without its field); of a bare key, a bug
    sentence = isinstance(err, KeyError) and err.args and " " in str(err.args[0])
    text = str(err.args[0]) if sentence else str(err)
    text = " ".join(text.split()) or type(err).__name__
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError
        section = BATCH_SIZES.get(smk.rule)
        fix = (f"lower {section}.batch_size (now {batch_size(smk)}) or give the job more memory" if section
               else "give the job more memory (resources: mem_mb, or a larger GPU)")
        cause = f"out of memory ({text[:300]}); {fix}"
    elif isinstance(err, USER_ERRORS) and (sentence or not isinstance(err, KeyError)):
        cause = text
    else:
        cause = f"{type(err).__name__}: {text} (unexpected: please report it with the log)"
    return f"[lorp] {smk.rule} failed: {cause} (traceback in {log})"


@contextlib.contextmanager
def _fatal_errors_to(fh: Any) -> Iterator[None]:
    """Python's fatal-error report (:mod:`faulthandler`: the signal and where each thread was) goes to ``fh``
    while the job runs, then back to where it went before (stderr, or nowhere)."""
    was = faulthandler.is_enabled()
    faulthandler.enable(file=fh)
    try:
        yield
    finally:
        faulthandler.disable()
        if was and sys.__stderr__ is not None:
            faulthandler.enable(file=sys.__stderr__)


@contextlib.contextmanager
def job(smk: Any) -> Iterator[None]:
    """Redirect stdout and stderr to ``smk.log[0]``, size thread pools to ``smk.threads``, and on
    success write the job's provenance record.

    In a local run with a warm-start server (:mod:`lorp.workflow.warm`), the script runs instead in a fork
    of the server, which has PyTorch and Transformers imported, and this process exits with its status; a
    fork killed by a signal is reported by name here, on stderr and in the log (:func:`warm.report_signal`).
    A job that runs here and is killed by SIGBUS, SIGSEGV, SIGABRT, SIGFPE or SIGILL leaves Python's fatal
    error and the place it was in its log (:mod:`faulthandler`); Snakemake names the signal on the terminal."""
    log = list(getattr(smk, "log", []) or [])
    status = warm.delegate(getattr(smk, "rule", None), log[0] if log else None)
    if status is not None:
        raise SystemExit(status)
    threads = max(1, int(getattr(smk, "threads", 1) or 1))
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when it is first imported
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    # The pools of the libraries already loaded (numpy's BLAS; in a warm fork, also PyTorch's OpenMP), which
    # read their size from the environment when they load, before this job's threads were known.
    threadpoolctl.threadpool_limits(threads)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if log:
            Path(log[0]).parent.mkdir(parents=True, exist_ok=True)
            fh = stack.enter_context(open(log[0], "w", buffering=1, encoding="utf-8"))
            stack.enter_context(contextlib.redirect_stdout(fh))
            stack.enter_context(contextlib.redirect_stderr(fh))
            stack.enter_context(_fatal_errors_to(fh))  # a fatal signal (SIGBUS, SIGSEGV) names itself in the log
        started = " (warm start: a fork of the server that imported PyTorch)" if os.environ.get(warm.CHILD_ENV) else ""
        print(f"[lorp] rule {smk.rule}, wildcards {_named(smk.wildcards)}{started}", flush=True)
        try:
            yield
            write_provenance(smk, time.perf_counter() - start)
        except Exception as err:
            traceback.print_exc()  # into the log
            if not log:
                raise
            line = failure_line(smk, err, log[0])
            print(line, flush=True)
            print(line, file=sys.__stderr__, flush=True)  # the cause on the terminal, without the traceback
            raise SystemExit(1) from None
        except BaseException:
            traceback.print_exc()
            raise
        finally:
            print(f"[lorp] {time.perf_counter() - start:.1f} s", flush=True)


SOURCE_KEYS = ("model", "plan", "pruning", "measured", "weights", "recovery")
"""The inputs a model under evaluation is built from (see :func:`lorp.workflow.stages.model.load_evaluated`)."""


def evaluation_sources(smk: Any) -> dict[str, str]:
    """The job's inputs that build the model it evaluates or exports: the prepared model, and for a pruned
    model its plan (and a sparse plan's pruning norms, measurement and stored weights)."""
    inputs = _named(smk.input)
    return {key: inputs[key] for key in SOURCE_KEYS if key in inputs}


REUSED_PREFIX = "candidate_"
"""The input keys of the candidate evaluations an ``auto`` evaluation may copy (``rules/evaluation.smk``)."""

ENTRY_SEPARATOR = "_"
"""Between a source key and an efficiency entry's index in the efficiency rule's input keys (``plan_3``)."""


def reused_evaluations(smk: Any) -> list[str]:
    """The evaluations of other plans the job may copy instead of evaluating the same model again (an
    ``auto`` plan's evaluated candidates, keyed ``candidate_<i>``), in order."""
    return [path for key, path in _named(smk.input).items() if key.startswith(REUSED_PREFIX)]


def evaluation_labels(smk: Any) -> dict[str, Any]:
    """The identifying columns of an evaluation row: model, calib, method, budget, the prepared model the
    evaluated one was built from, and for a pruned model its plan (``-`` for the dense model); a recovered
    model's method is ``<method>+<recovery>``."""
    from ..recovery.registry import recovered_name

    w = smk.wildcards
    pruned = "plan" in smk.input.keys()
    return {
        "model": w.model,
        "calib": w.get("calib", "-"),
        "method": recovered_name(w.get("method", "dense"), w.get("recovery")),
        "budget": int(w.get("budget", 0)),
        "base_model": smk.input.model,
        "plan": smk.input.plan if pruned else "-",
    }


def efficiency_entries(smk: Any) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The pruned models an efficiency job measures, as (labels, sources): the labels from its ``entries``
    param, the sources from its inputs (``model``, and ``<key>_<i>`` for the i-th entry's plan, pruning
    norms and measurement)."""
    inputs = _named(smk.input)
    out = []
    for i, labels in enumerate(smk.params.entries):
        suffix = f"{ENTRY_SEPARATOR}{i}"
        sources = {"model": inputs["model"], **{key[:-len(suffix)]: path for key, path in inputs.items()
                                                 if key.endswith(suffix) and key[:-len(suffix)] in SOURCE_KEYS}}
        out.append((dict(labels), sources))
    return out


BATCH_SIZES = {"capture_activations": "activations", "input_norms": "activations", "obs_norms": "activations",
               "sparse_prune": "activations",
               "auto_plan": "evaluation", "model_plan": "evaluation", "evaluate_dense": "evaluation",
               "evaluate_pruned": "evaluation", "evaluate_recovered": "evaluation", "evaluate_tasks_dense": "zeroshot",
               "evaluate_tasks_pruned": "zeroshot", "evaluate_tasks_recovered": "zeroshot"}
"""The config section whose ``batch_size`` each rule's job runs with."""


def batch_size(smk: Any) -> int:
    """The batch size a job runs with: ``<section>.batch_size`` of the config (:data:`BATCH_SIZES`).

    A batch size changes the speed of a job, not its numbers, so it is not a param: Snakemake reruns a job
    whose params change (its ``params`` rerun trigger), and a faster setting must not cost a rerun (see
    docs/reruns.md). This is the one place a job reads the config directly."""
    return int(smk.config[BATCH_SIZES[smk.rule]]["batch_size"])
