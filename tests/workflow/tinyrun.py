"""Helpers for the tests on the tiny workflow run: the jobs a dry run plans and the jobs a change is
expected to plan, copies of a completed run, the check that a shared run was left as it was, the audit,
and the sparse family's config."""

from __future__ import annotations

import csv
import hashlib
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from lorp.workflow.audit import audit
from tiny import CORES, EXPORTED, METHODS, ZEROSHOT_DIR, snakemake, tiny_config, write_config


# ------------------------------------------------------------------------------ runs and copies
# what a run that changes nothing may still write: Snakemake's own logs and locks, Python's byte code
SCRATCH = {".snakemake/log", ".snakemake/locks", ".snakemake/auxiliary", ".snakemake/iocache"}


def snapshot(workdir: Path, hash_below: int = 1 << 20) -> dict[str, tuple]:
    """Size and mtime of every file of a workflow directory (and the sha256 of the small ones, so a change
    whose mtime was put back is seen too), Snakemake's scratch folders left out."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(workdir):
        rel_dir = Path(dirpath).relative_to(workdir)
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and str(rel_dir / d) not in SCRATCH]
        for name in filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = sha(path) if st.st_size < hash_below and path.is_file() and not path.is_symlink() else None
            state[str(rel_dir / name)] = (st.st_size, st.st_mtime_ns, digest)
    return state


@contextmanager
def unchanged(workdir: Path):
    """Around a test that shares ``workdir`` with others: it fails if the test changed, added or removed
    any file of it (results, code, config or metadata)."""
    before = snapshot(workdir)
    yield workdir
    after = snapshot(workdir)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a test changed the shared run in {workdir}: {changed[:20]}"


def age(directory: Path, before: float) -> None:
    """Move the modification times of every file and folder under ``directory`` back by one amount, so that
    the newest is older than ``before`` (seconds since the epoch) and their order is kept: results as they
    would be had the data they read been copied again after them."""
    paths = [Path(d) / n for d, dirs, files in os.walk(directory) for n in dirs + files] + [Path(directory)]
    newest = max(p.lstat().st_mtime_ns for p in paths)
    shift = newest - int((before - 3600) * 1e9)
    for path in paths:
        st = path.lstat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - shift), follow_symlinks=False)


# ------------------------------------------------------------------------------------ dry runs
def dry_run(workdir: Path, config: dict, *args: str) -> dict[tuple[str, str], set[str]]:
    """(rule, wildcards) -> outputs of every job a dry run would execute, 'all' excluded. The config is
    written outside ``workdir``, which the dry run leaves as it was."""
    with tempfile.TemporaryDirectory(prefix="lorp-config-") as tmp:
        out = snakemake(workdir, config, "-n", *args, configfile=Path(tmp) / "config.yaml")
    assert out.returncode == 0, out.stderr[-3000:]
    jobs, rule, outputs = {}, None, set()
    for line in (out.stdout + out.stderr).splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            if rule:
                jobs[(rule, "")] = outputs
            rule, outputs = m.group(1), set()
            continue
        m = re.match(r"^\s+output: (.*)$", line)
        if m and rule:
            outputs = set(m.group(1).split(", "))
        m = re.match(r"^\s+wildcards: (.*)$", line)
        if m and rule:
            jobs[(rule, m.group(1))] = outputs
            rule = None
    if rule:
        jobs[(rule, "")] = outputs
    jobs.pop(("all", ""), None)
    return jobs


def planned_jobs(workdir: Path, config: dict) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would execute, 'all' excluded."""
    return set(dry_run(workdir, config))


def planned_jobs_each(*dry_runs: tuple[Path, dict]) -> list[set[tuple[str, str]]]:
    """:func:`planned_jobs` of each (working directory, config), in order, the dry runs :data:`tiny.CORES` at
    a time (each is one Snakemake process that keeps one core busy for seconds; a dry run takes no lock and
    writes nothing)."""
    with ThreadPoolExecutor(max_workers=int(CORES)) as pool:
        return list(pool.map(lambda run: planned_jobs(*run), dry_runs))


def audited(workdir: Path, config: dict | None = None) -> list:
    """The audit's problems in ``workdir`` for ``config`` (the tiny one by default), the config written
    outside ``workdir``."""
    with tempfile.TemporaryDirectory(prefix="lorp-config-") as tmp:
        configfile = write_config(workdir, config or tiny_config(), Path(tmp) / "config.yaml")
        return [f for f in audit(configfile, workdir, workdir / "Snakefile") if f.is_problem]


# ----------------------------------------------------------------------------- expected jobs
def fetched(config: dict, before: dict | None = None) -> set[tuple[str, str]]:
    """The ``fetch_source`` jobs of the sources ``config`` reads and ``before`` (the tiny config by
    default) does not: a changed source is checked and fetched as a new one."""
    import copy

    from lorp.workflow.config import source_entries, validate_schema

    def digests(cfg):
        return source_entries(validate_schema(copy.deepcopy(cfg)))

    old, new = digests(before or tiny_config()), digests(config)
    return {("fetch_source", f"kind={new[d]['kind']}, digest={d}") for d in new.keys() - old.keys()}


def job(rule, model="smol", calib=None, method=None, budget=None):
    parts = [f"model={model}"] if model else []
    parts += [f"calib={calib}"] if calib else []
    parts += [f"method={method}"] if method else []
    parts += [f"budget={budget}"] if budget is not None else []
    return (rule, ", ".join(parts))


def evaluation_rules(kind):
    """The evaluation rules of one kind (ppl, tasks, efficiency) that the tiny config runs."""
    if kind == "tasks" and not ZEROSHOT_DIR.is_dir():
        return []
    return [{"ppl": "evaluate", "tasks": "evaluate_tasks", "efficiency": "efficiency"}[kind]]


def per_plan_rules(kinds):
    """The per-plan evaluation rules of ``kinds`` (efficiency is one job per model)."""
    return [f"{r}_pruned" for k in kinds if k != "efficiency" for r in evaluation_rules(k)]


def summaries(*kinds):
    kinds = kinds or ("ppl", "tasks", "efficiency")
    names = {"ppl": "summary", "tasks": "summary_tasks", "efficiency": "summary_efficiency"}
    return {(names[k], "") for k in kinds if evaluation_rules(k)}


def dense_jobs(*kinds, model="smol"):
    """The dense model's evaluations, and with efficiency the model's efficiency job (which also times
    every pruned model)."""
    kinds = kinds or ("ppl", "tasks", "efficiency")
    dense = {job(f"{r}_dense", model) for k in kinds if k != "efficiency" for r in evaluation_rules(k)}
    return dense | ({job("efficiency", model)} if "efficiency" in kinds else set())


def pruned_jobs(methods=METHODS, budgets=(3,), model="smol", calib="docs", kinds=("ppl", "tasks", "efficiency"),
                selection=True):
    """The jobs of the plans of ``methods`` at ``budgets``: with ``selection`` the plan and, for the exported
    names (tiny.EXPORTED at budget 3), the checkpoint; the per-plan evaluations of ``kinds``, and with
    efficiency the model's efficiency job."""
    out = {job(r, model, calib, m, b) for r in (["plan"] if selection else []) + per_plan_rules(kinds)
           for m in methods for b in budgets}
    if selection:
        out |= {job("prune_checkpoint", model, calib, m, b) for m in methods for b in budgets
                if m in EXPORTED and b == 3}
    return out | ({job("efficiency", model)} if "efficiency" in kinds else set())


def analysis_jobs(model="smol", calib="docs", from_rule="calibration_tokens"):
    order = ["calibration_tokens", "capture_activations", "similarity", "structure"]
    return {job(r, model, calib) for r in order[order.index(from_rule):]}


SUMMARY = summaries()


def figures(*names, model="smol", calib="docs"):
    """Figure jobs: per model and calibration (structure, pruned_layers), across models (locality,
    vs_ppl, vs_tasks)."""
    out = set()
    for name in names:
        if name in ("structure", "pruned_layers"):
            out.add(job(f"figure_{name}", model, calib))
        elif name == "locality":
            out.add(("figure_locality", ""))
        elif name == "vs_ppl" or (name == "vs_tasks" and evaluation_rules("tasks")):
            out.add(("figure_vs_budget", f"kind={name[3:]}"))
    return out


PLAN_FIGURES = figures("structure", "pruned_layers", "vs_ppl", "vs_tasks")  # what a changed plan redraws
ALL_FIGURES = PLAN_FIGURES | figures("locality")


# ------------------------------------------------------------------------------------ sparse family
SPARSE = {"targets": [50], "metrics": ["wanda", "magnitude"], "sweep": {"outlier_m": [3, 5]}}
ALLOCATIONS = ("uniform", "owl", "mrp")
SPARSE_METHODS = [f"{metric}-{allocation}" for metric in ("wanda", "magnitude") for allocation in ALLOCATIONS]
SPARSE_EXPORT = ("wanda-mrp", "magnitude-owl")  # exported at 50% beside the depth exports


def sparse_config(**sparsity):
    """The tiny config with the sparse family at 50% (perplexity only: efficiency and zero-shot tasks
    take the same code path as for the depth methods) and two sparse checkpoints exported."""
    export = [f"{m}-3" for m in EXPORTED] + [f"{m}-50" for m in SPARSE_EXPORT]
    return tiny_config(sparsity={**SPARSE, **sparsity}, zeroshot={"tasks": []}, efficiency={"enabled": False},
                       checkpoints={"export": export})


def sjob(rule, **wildcards):
    return (rule, ", ".join(f"{k}={v}" for k, v in {"model": "smol", "calib": "docs", **wildcards}.items()))


def sparse_jobs(metrics=("wanda", "magnitude"), allocations=ALLOCATIONS, targets=(50,), pruned=True,
                aggregates=True, sweep=True):
    """The sparse jobs of the given plans (plan; with ``pruned`` the pruned model, its perplexity and the
    exported checkpoints), and with ``aggregates`` what gathers them (redundancy, figures, summaries; the
    MRP sweep with ``sweep``)."""
    out = set()
    for metric in metrics:
        for allocation in allocations:
            for t in targets:
                out.add(sjob("sparse_plan", metric=metric, allocation=allocation, target=t))
                if pruned:
                    out.add(sjob("sparse_prune", metric=metric, allocation=allocation, target=t))
                    out.add(job("evaluate_pruned", "smol", "docs", f"{metric}-{allocation}", t))
                    if f"{metric}-{allocation}" in SPARSE_EXPORT and t == 50:
                        out.add(sjob("sparse_checkpoint", metric=metric, allocation=allocation, target=t))
    if aggregates:
        out |= {sjob(rule, metric=metric) for rule in ("redundancy", "mrp_sweep")[:2 if sweep else 1]
                for metric in metrics}
        out |= {sjob("figure_sparsity"), ("summary_sparsity", ""), ("figure_vs_sparsity", "kind=ppl")}
        if pruned:
            out |= summaries("ppl") | figures("vs_ppl")
    return out


# ------------------------------------------------------------------------------------ files
def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def artifact_hashes(results: Path) -> dict[str, str]:
    """sha256 of every artifact that a rerun reproduces bit for bit (timings and records excluded)."""
    return {str(p.relative_to(results)): sha(p) for p in sorted(results.rglob("*"))
            if p.is_file() and "logs" not in p.parts and "provenance" not in p.name and not p.name.startswith(".")
            and "efficiency" not in p.name and "tasks" not in p.name and p.suffix != ".png" and "summary" not in p.parts}
