"""Audit ``results/`` against the current config and the provenance records.

For every job the config implies, the audit checks that its provenance record exists, that the
outputs still match their recorded fingerprints, that the record's config slice and the fingerprint of
the package code its rule reaches equal the current ones (else the artifact is stale: made under another
config, or by older code), and that the inputs it was made from are still the
files on disk (else an upstream stage was rerun after it). It then checks consistency across
stages: every plan's kept-layer count against its exported checkpoint, every evaluation against the
prepared model and plan it names, every sparse model's measurement against its export. Run it as ``python -m lorp.workflow.audit`` (exit status 1 on any problem).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..io import dumps_json, read_json
from .dag import SNAKEFILE, Job, workflow_jobs
from .provenance import compare, fingerprint


@dataclass(frozen=True)
class Finding:
    """One problem (``missing``, ``modified``, ``stale``, ``inconsistent``, ``leftover``) or note (``extra``),
    and the job whose outputs must be made again to repair it (None for a note, and for a ``leftover``: a
    staging temporary to delete, :func:`leftovers`)."""

    kind: str
    path: str
    message: str
    job: Job | None = field(default=None, compare=False, repr=False)

    @property
    def is_problem(self) -> bool:
        return self.kind != "extra"

    def __str__(self) -> str:
        return f"{self.kind:12s} {self.path}: {self.message}"


def _norm(value: Any) -> Any:
    """``value`` as it reads back from a JSON record (tuples as lists, keys as strings)."""
    return json.loads(dumps_json(value))


def _check_job(job: Job, root: Path, fingerprints: Callable[[str], dict | None]) -> list[Finding]:
    prov_path = root / job.provenance
    outputs = list(job.outputs.values())
    if not prov_path.is_file():
        present = [o for o in outputs if (root / o).exists()]
        what = "outputs exist without a provenance record" if present else "not produced yet"
        return [Finding("missing", outputs[0], f"{job.rule}: {what}", job)]
    rec = read_json(prov_path)
    findings: list[Finding] = []
    for out in outputs:
        recorded = rec["outputs"].get(out)
        if recorded is None:
            findings.append(Finding("inconsistent", out, f"not listed in {job.provenance}", job))
        else:
            findings += [Finding("missing" if p.endswith("missing") else "modified", out, p, job)
                         for p in compare(root / out, recorded)]
    recorded_params = dict(rec.get("params") or {})
    current_params = dict(_norm(job.params))
    recorded_code, current_code = recorded_params.pop("code", None), current_params.pop("code", None)
    if recorded_code != current_code:
        findings.append(Finding("stale", outputs[0],
                                f"{job.rule} was made by older code (fingerprint {recorded_code}, the package now "
                                f"gives {current_code}; it covers {', '.join(code_changes(job))})",
                                job))
    if current_params != recorded_params:
        findings.append(Finding("stale", outputs[0],
                                f"{job.rule} ran with params {json.dumps(recorded_params, sort_keys=True)}, "
                                f"the config now gives {json.dumps(current_params, sort_keys=True)}", job))
    for path, recorded in rec.get("inputs", {}).items():
        current = fingerprints(path)
        if current is None:
            continue  # the upstream artifact is reported on its own (missing)
        if _norm(current) != recorded:
            findings.append(Finding("stale", outputs[0], f"input {path} changed after this was made", job))
    return findings


def code_changes(job: Job) -> list[str]:
    """Where to look for a job's code change: the package modules its fingerprint covers."""
    from .fingerprint import definitions

    return sorted({d.split(":")[0] for d in definitions(job.script, job.wildcards, rule=job.rule)}) if job.script else []


def _plan_consistency(job: Job, checkpoint_job: Job | None, root: Path) -> list[Finding]:
    """A plan's kept and pruned layers partition the model, and its exported checkpoint (when present) agrees."""
    plan_path = job.outputs["plan"]
    plan = read_json(root / plan_path)
    kept, pruned = plan.get("kept", []), plan.get("pruned", [])
    findings = []
    if sorted(set(kept) | set(pruned)) != list(range(plan.get("n_layers", -1))) or set(kept) & set(pruned):
        findings.append(Finding("inconsistent", plan_path, "kept and pruned do not partition the layers", job))
    if checkpoint_job is None:
        return findings
    ckpt = checkpoint_job.outputs["checkpoint"]
    if (root / ckpt / "config.json").is_file():
        n = read_json(root / ckpt / "config.json").get("num_hidden_layers")
        if n != len(kept):
            findings.append(Finding("inconsistent", ckpt, f"checkpoint has {n} layers, its plan keeps {len(kept)}",
                                    checkpoint_job))
        copy = root / ckpt / "plan.json"
        copied = read_json(copy).get("pruned") if copy.is_file() else None
        if copied != pruned:
            findings.append(Finding("inconsistent", ckpt, f"plan.json in the checkpoint prunes {copied}, the plan {pruned}",
                                    checkpoint_job))
    return findings


def _measured_consistency(job: Job, root: Path) -> list[Finding]:
    """No row of a sparse model has fewer zeros than its plan."""
    measured_path = job.outputs["measured"]
    measured = read_json(root / measured_path)
    if any(layer["row_shortfall"] for block in measured["blocks"] for layer in block["linears"].values()):
        return [Finding("inconsistent", measured_path, "rows with fewer zeros than the plan", job)]
    return []


def _sparse_consistency(job: Job, root: Path) -> list[Finding]:
    """An exported sparse checkpoint carries its plan's sparsities and the sparse stage's measurement."""
    ckpt = job.outputs["checkpoint"]
    plan_path, measured_path = job.inputs["plan"], job.inputs["measured"]
    findings: list[Finding] = []
    if not (root / ckpt / "config.json").is_file() or not (root / plan_path).is_file():
        return findings
    copy = root / ckpt / "plan.json"
    if not copy.is_file() or read_json(copy).get("linears") != read_json(root / plan_path).get("linears"):
        findings.append(Finding("inconsistent", ckpt, f"plan.json in the checkpoint is not {plan_path}", job))
    inside = root / ckpt / "sparsity.json"
    measured = read_json(root / measured_path) if (root / measured_path).is_file() else None
    if not inside.is_file() or read_json(inside) != measured:
        findings.append(Finding("inconsistent", ckpt, f"sparsity.json in the checkpoint is not {measured_path}", job))
    return findings


def _rows_consistency(job: Job, root: Path, out: str, rows: list[dict], plan_path: str,
                      model_path: str) -> list[Finding]:
    """Rows of one evaluated model name the prepared model and plan it was built from and have the plan's depth."""
    findings = []
    for row in rows:
        if row.get("plan") != plan_path or row.get("base_model") != model_path:
            findings.append(Finding("inconsistent", out,
                                    f"names plan {row.get('plan')!r} and base model {row.get('base_model')!r}, "
                                    f"expected {plan_path!r} and {model_path!r}", job))
            break
    if (root / plan_path).is_file():
        plan = read_json(root / plan_path)
        n_kept = len(plan["kept"]) if "kept" in plan else plan.get("n_layers", -1)  # a sparse plan keeps every block
        if any(str(row.get("n_layers")) != str(n_kept) for row in rows):  # a damaged row may lack it
            findings.append(Finding("inconsistent", out, f"evaluated a model whose layer count is not the plan's {n_kept}",
                                    job))
    return findings


def _evaluation_consistency(job: Job, root: Path) -> list[Finding]:
    """Every row of a pruned model's evaluation names the prepared model and the plan it was built from
    (a depth or a sparse plan) and has the plan's depth."""
    (out,) = job.outputs.values()
    with (root / out).open() as fh:
        rows = list(csv.DictReader(fh))
    return _rows_consistency(job, root, out, rows, job.inputs["plan"], job.inputs["model"])


def _efficiency_consistency(job: Job, root: Path) -> list[Finding]:
    """The efficiency file of a model has a dense row and one row per pruned model the config evaluates."""
    out = job.outputs["efficiency"]
    with (root / out).open() as fh:
        rows = list(csv.DictReader(fh))
    by_plan = {row["plan"]: row for row in rows}
    findings = [] if "-" in by_plan else [Finding("inconsistent", out, "has no dense row", job)]
    for labels in job.params["entries"]:
        row = by_plan.get(labels["plan"])
        if row is None:
            findings.append(Finding("inconsistent", out, f"has no row for {labels['plan']}", job))
        else:
            findings += _rows_consistency(job, root, out, [row], labels["plan"], labels["base_model"])
    return findings


def _consistency(jobs: list[Job], root: Path) -> list[Finding]:
    checkpoints = {tuple(j.wildcards.items()): j for j in jobs if j.rule == "prune_checkpoint"}
    findings: list[Finding] = []
    for job in jobs:
        first = root / next(iter(job.outputs.values()))
        if not first.exists():
            continue
        if job.rule == "plan":
            findings += _plan_consistency(job, checkpoints.get(tuple(job.wildcards.items())), root)
        elif job.rule == "sparse_prune":
            findings += _measured_consistency(job, root)
        elif job.rule == "sparse_checkpoint":
            findings += _sparse_consistency(job, root)
        elif job.rule == "efficiency":
            findings += _efficiency_consistency(job, root)
        elif job.rule.endswith("_pruned"):
            findings += _evaluation_consistency(job, root)
    return findings


def _artifact_paths(results: Path) -> list[Path]:
    """Every plan, evaluation and checkpoint under ``results/``: of the depth family
    (``{model}/{plans,eval,checkpoints}/{calib}/*``) and of the sparse family
    (``{model}/sparsity/{calib}/{plans,pruned,checkpoints,measured}/*``)."""
    out: list[Path] = []
    for model_dir in sorted(p for p in results.iterdir() if p.is_dir() and p.name not in ("logs", "summary")):
        for stage in ("plans", "eval", "checkpoints"):
            out += sorted((model_dir / stage).glob("*/*"))
        for stage in ("plans", "pruned", "checkpoints", "measured"):
            out += sorted((model_dir / "sparsity").glob(f"*/{stage}/*"))
    return out


def _extras(jobs: list[Job], root: Path) -> list[Finding]:
    """Plans, evaluations and checkpoints under results/ that the config does not ask for (notes, not problems)."""
    expected = {o for job in jobs for o in [*job.outputs.values(), job.provenance]}
    results = root / "results"
    if not results.is_dir():
        return []
    findings = []
    for path in _artifact_paths(results):
        rel = str(path.relative_to(root))
        if path.name.startswith(".") or path.name == "provenance.json" or rel in expected:
            continue
        if rel.endswith(".provenance.json") or any(e.startswith(rel + "/") for e in expected):
            continue
        findings.append(Finding("extra", rel, "not part of the current config (left from an earlier one)"))
    return findings


STAGING = re.compile(r"^\.(?P<name>.+)\.tmp-[^/]+$")
"""The name of a temporary that :func:`lorp.io.atomic_path` writes an output under (``.<name>.tmp-<random>``,
beside the output), moved onto the output only once complete."""

LOCKS = Path(".snakemake", "locks")
"""Where Snakemake keeps the locks of a run in progress in its working directory."""


def locked(root: str | Path = ".") -> bool:
    """Whether a Snakemake run holds its lock in ``root`` (it may be writing a staging temporary now; after a
    killed run the lock stays until ``snakemake --unlock``)."""
    locks = Path(root) / LOCKS
    return locks.is_dir() and any(locks.iterdir())


def leftovers(root: str | Path = ".") -> list[Finding]:
    """The staging temporaries under ``results/`` (files or directories, :data:`STAGING`), each with the
    space it takes: left by a job that was killed (SIGKILL, SIGBUS) before it could remove them, they are
    never read (the output is the final name), and they are deleted when the job runs again, or by
    ``--repair``; while a Snakemake run holds its lock here one may be a job's write in progress."""
    from ..disk import human, tree_bytes

    root = Path(root)
    results = root / "results"
    if not results.is_dir():
        return []
    live = locked(root)
    findings = []
    for dirpath, dirnames, filenames in os.walk(results):
        staged = sorted(n for n in [*dirnames, *filenames] if STAGING.match(n))
        dirnames[:] = [d for d in dirnames if d not in staged]  # nothing inside one is reported on its own
        for name in staged:
            path = Path(dirpath) / name
            what = "directory" if path.is_dir() and not path.is_symlink() else "file"
            final = Path(dirpath, STAGING.match(name).group("name")).relative_to(root)
            note = ("; a Snakemake run holds its lock here, so a job may be writing it: --repair leaves it"
                    if live else "; --repair deletes it, as does the job's next run")
            findings.append(Finding("leftover", str(path.relative_to(root)),
                                    f"staging {what} of {final}, {human(tree_bytes(path))} on disk, left by a "
                                    f"job that did not finish (never read){note}"))
    return findings


def check(jobs: list[Job], root: str | Path = ".") -> list[Finding]:
    """All findings for ``results/`` under ``root`` against ``jobs``."""
    root = Path(root)
    cache: dict[str, dict | None] = {}

    def fingerprints(path: str) -> dict | None:
        if path not in cache:
            cache[path] = fingerprint(root / path) if (root / path).exists() else None
        return cache[path]

    findings: list[Finding] = []
    for job in jobs:
        findings += _check_job(job, root, fingerprints)
    findings += _consistency(jobs, root)
    findings += _extras(jobs, root)
    findings += leftovers(root)
    return findings


def audit(configfile: str | Path, root: str | Path = ".", snakefile: str | Path = SNAKEFILE) -> list[Finding]:
    """All findings for ``results/`` under ``root`` against the jobs the workflow (``snakefile``) derives
    from ``configfile`` (:func:`lorp.workflow.dag.workflow_jobs`): their outputs, inputs and params."""
    return check(workflow_jobs(configfile, root, snakefile), root)


def repair_files(findings: list[Finding], root: str | Path = ".") -> list[str]:
    """What to delete so that a normal run makes every damaged artifact again: the outputs and
    provenance record of each job a problem is about (those that exist). Snakemake then reruns those
    jobs, and everything downstream of them, since their outputs are newer than what was made from them."""
    jobs = {f.job.provenance: f.job for f in findings if f.is_problem and f.job is not None}
    files = {p for job in jobs.values() for p in [*job.outputs.values(), job.provenance]}
    return sorted(p for p in files if (Path(root) / p).exists())


def delete(files: list[str], root: str | Path = ".") -> None:
    for rel in files:
        path = Path(root) / rel
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lorp.workflow.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", default="config.yaml", help="the config the results should match")
    parser.add_argument("--directory", default=".", help="the directory holding results/ (default: .)")
    parser.add_argument("--repair", action="store_true",
                        help="delete what the problems are about and run the workflow to make it again")
    parser.add_argument("--snakefile", default=str(Path(__file__).resolve().parents[3] / "Snakefile"),
                        help="the workflow that --repair runs (default: the one of this checkout)")
    parser.add_argument("--cores", default="all", help="cores for the --repair run (default: all)")
    args = parser.parse_args(argv)
    jobs = workflow_jobs(args.configfile, args.directory, args.snakefile)
    findings = check(jobs, args.directory)
    problems = [f for f in findings if f.is_problem]
    for f in findings:
        print(f)
    print(f"audit: {len(jobs)} jobs checked, {len(problems)} problems, "
          f"{len(findings) - len(problems)} notes", file=sys.stderr)
    if not problems:
        return 0
    live = locked(args.directory)
    staged = [f.path for f in problems if f.kind == "leftover"]
    needs_run = any(f.kind != "leftover" for f in problems)
    files = repair_files(problems, args.directory) + ([] if live else staged)
    run = [sys.executable, "-m", "snakemake", "--snakefile", args.snakefile, "--configfile",
           str(Path(args.configfile).resolve()), "--directory", str(Path(args.directory).resolve()),
           "--cores", args.cores]
    if needs_run:
        print("\nrepair: delete what the problems are about, then run the workflow; it makes them again and "
              "everything downstream of them:")
    else:
        print("\nrepair: delete the staging leftovers (nothing needs to run again):")
    if files:
        print(f"  cd {shlex.quote(str(Path(args.directory).resolve()))} && rm -rf "
              + " ".join(shlex.quote(f) for f in files))
    if staged and live:
        print(f"  (not the {len(staged)} staging leftovers: a Snakemake run holds its lock in this directory and may "
              "be writing them; once no run is active, `snakemake --unlock` and audit again)")
    if needs_run:
        print("  " + shlex.join(["snakemake", *run[3:]]))
    print("or let the audit do " + ("both" if needs_run else "it") + ": python -m lorp.workflow.audit --repair"
          + (f" --configfile {shlex.quote(args.configfile)}" if args.configfile != "config.yaml" else ""))
    if not args.repair:
        return 1
    from ..disk import human, tree_bytes

    removed = [p for p in staged if p in files]
    freed = sum(tree_bytes(Path(args.directory) / p) for p in removed)
    delete(files, args.directory)
    if removed:
        print(f"repair: deleted {len(removed)} staging leftovers ({human(freed)})", file=sys.stderr, flush=True)
    if needs_run:
        print(f"repair: deleted {len(files) - len(removed)} artifacts; running {' '.join(run[1:])}", file=sys.stderr,
              flush=True)
        if subprocess.run(run).returncode != 0:
            print("repair: the workflow run failed (see its output above)", file=sys.stderr)
            return 1
    remaining = [f for f in audit(args.configfile, args.directory, args.snakefile) if f.is_problem]
    for f in remaining:
        print(f)
    print(f"repair: {len(remaining)} problems left", file=sys.stderr)
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
