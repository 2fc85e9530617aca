"""Benchmark 7: the default run's wall time against the forward passes its work needs.

Runs ``snakemake --cores <n>`` on the default config (``config.yaml``) in a fresh copy of the workflow
under ``results/bench/workflow/``, then counts the forward passes every stage must make: capture and input
norms, the calibration tokens; Wanda's sequential pruning, twice the calibration tokens per plan; ``auto``'s
choice, the held-out windows of every distinct candidate plan of a budget (weighted by its share of
blocks, as it is recorded in the auto plan); perplexity,
the evaluation windows of the dense model and of every distinct pruned model (plans that remove the same
blocks are one model; a depth-pruned one weighted by the share of blocks it keeps); efficiency, every
warm-up and timed round of every distinct model and of the dense one once per group of the efficiency
job (a prefill, then ``decode_tokens`` steps of one token each). Prefill tokens are priced at the forward
speed measured before the workflow starts (with the same thread count), decode steps at the dense
model's decode latency measured by the run's own efficiency job. Target: wall time <= 1.5x that
forward-pass time.

With ``--against COMMIT`` the default workflow of that commit (``git archive``) runs after this one, in
its own directory, and its wall time is reported beside: 3df718e is the last version that wrote and
reread a checkpoint for every evaluation (issue 12's target: at most 60% of its wall time). With
``--without auto`` this run leaves a depth method out of the default config (3df718e has no ``auto``),
so that both runs do the same work."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, WORK, alternate, calibration, embedded_model, median, report

COPY = ("Snakefile", "rules", "scripts", "schemas", "src", "envs", "report", "profiles", "slurm", "config.yaml")


def needed_seconds(config: dict, n_layers: int, plans: list[dict], prefill_tokens_per_s: float,
                   decode_s_per_step: float) -> dict[str, float]:
    """Seconds of forward passes each kind of stage needs for a validated ``config`` whose depth ``plans``
    (JSON of every depth plan, ``auto``'s included) are made: tokens at ``prefill_tokens_per_s`` and decode
    steps at ``decode_s_per_step`` (decoder-equivalent: a depth-pruned model's share of blocks)."""
    from lorp.evaluation.efficiency import trios
    from lorp.workflow import config as lc

    calib = sum(c["n_samples"] * c["seqlen"] for c in config["calibration"].values())
    per_eval = 0
    for name, spec in lc.evaluation_datasets(config, next(iter(config["models"]))).items():
        per_eval += min(spec["max_windows"] or 10**9, 10**9) * spec["seqlen"]
    distinct = {tuple(sorted(p["pruned"])) for p in plans}
    kept = sum((n_layers - len(d)) / n_layers for d in distinct)
    selection = 0.0  # auto: every distinct candidate of a budget over the held-out windows
    for plan in (p for p in plans if p.get("method") == "auto"):
        held_out = plan["parameters"]["held_out"]
        candidates = {tuple(sorted(c["pruned"])) for c in plan["candidates"]}
        selection += held_out["windows"] * held_out["seqlen"] * sum((n_layers - len(c)) / n_layers for c in candidates)
    sparse = lc.sparse_evaluations(config)
    sequential = sum(1 for m, _ in sparse if m.startswith("wanda")) if config["sparsity"]["norms"] == "sequential" else 0
    eff = config["efficiency"]
    models = len(distinct) + len(sparse)
    groups = len(trios(list(range(len(distinct))))) + len(sparse)  # depth-pruned two per group, sparse alone
    rounds = (models + 1) * eff["warmup"] + (models + groups) * eff["repeats"] if eff["enabled"] else 0
    round_s = eff["seqlen"] * eff["batch_size"] / prefill_tokens_per_s + eff["decode_tokens"] * decode_s_per_step
    tokens = {"capture": calib, "input_norms": calib if sparse else 0, "sequential_pruning": 2 * calib * sequential,
              "auto_selection": selection, "perplexity": per_eval * (1 + kept + len(sparse))}
    return {**{k: v / prefill_tokens_per_s for k, v in tokens.items()}, "efficiency": rounds * round_s}


def without_methods(config: dict, methods: list[str]) -> dict:
    """``config`` (as read from YAML) without the depth ``methods`` and the exports of their plans."""
    unknown = sorted(set(methods) - set(config["methods"]))
    if unknown:
        raise SystemExit(f"--without: {', '.join(unknown)} not among the default config's methods "
                         f"({', '.join(config['methods'])})")
    out = {**config, "methods": {m: v for m, v in config["methods"].items() if m not in methods}}
    export = (config.get("checkpoints") or {}).get("export")
    if isinstance(export, list):
        out["checkpoints"] = {**config["checkpoints"],
                              "export": [e for e in export if e.rsplit("-", 1)[0] not in methods]}
    return out


def run_workflow(tree: Path, work: Path, cores: int, config: dict | None = None) -> float:
    """Wall seconds of ``snakemake --cores`` on the default config of the workflow files under ``tree``
    (or on ``config``, written over it), copied to a fresh ``work`` directory (so nothing of an earlier
    run is reused)."""
    import yaml

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in COPY:
        (shutil.copytree if (tree / name).is_dir() else shutil.copy2)(tree / name, work / name)
    if config is not None:
        (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet", "rules"], cwd=work,
                   check=True)
    return time.perf_counter() - start


def analyse(work: Path, config: dict, n_layers: int, speed: float) -> dict:
    """The forward-pass seconds a finished run in ``work`` needed (:func:`needed_seconds`; decode steps at
    the dense model's decode latency its efficiency job measured with the whole machine), its size on
    disk and its job seconds by rule."""
    import csv

    results = work / "results"
    plans = [json.loads(p.read_text()) for p in results.glob("*/plans/*/*.json")
             if not p.name.endswith(".provenance.json")]
    with open(next(results.glob("*/eval/efficiency.csv")), newline="") as fh:
        dense = next(r for r in csv.DictReader(fh) if r["method"] == "dense")
    decode_step = float(dense["decode_ms_per_token"]) / 1e3
    need = needed_seconds(config, n_layers, [p for p in plans if p.get("family") != "sparse"], speed, decode_step)
    per_rule: dict[str, list[float]] = {}
    for record in results.rglob("*provenance.json"):
        rec = json.loads(record.read_text())
        per_rule.setdefault(rec["rule"], []).append(rec["wall_time_s"])
    jobs = {rule: {"jobs": len(t), "seconds": round(sum(t), 1)} for rule, t in
            sorted(per_rule.items(), key=lambda kv: -sum(kv[1]))}
    return {"forward_tokens_per_s": speed, "decode_ms_per_step": decode_step * 1e3,
            "depth_plans": sum(p.get("family") != "sparse" for p in plans), "seconds_needed": need,
            "seconds_forward_needed": sum(need.values()),
            "results_bytes": sum(p.stat().st_size for p in results.rglob("*") if p.is_file()),
            "job_seconds_by_rule": jobs}


def forward_speed(cores: int) -> tuple[float, int]:
    """Tokens per second of the embedded model's forward pass over the default calibration (batches of 8,
    ``cores`` threads, median of 3 after a warm-up), and its number of blocks."""
    import numpy as np
    import torch

    from lorp import models

    torch.set_num_threads(cores)
    model_dir = embedded_model()
    model, _, _ = models.load(model_dir)
    tokens = calibration(model_dir)

    @torch.inference_mode()
    def forward():
        for start in range(0, len(tokens), 8):
            model(input_ids=torch.from_numpy(tokens[start:start + 8].astype(np.int64)), use_cache=False)

    return tokens.size / median(alternate({"forward": forward}, 3)["forward"]), len(models.get_decoder_layers(model))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--against", metavar="COMMIT",
                        help="also run the default workflow of this commit (e.g. 3df718e, the last one that "
                             "evaluated through checkpoints) after this one and report the ratio of wall times")
    parser.add_argument("--without", metavar="METHOD", action="append", default=[],
                        help="run the default config without this depth method (repeatable), e.g. auto, which "
                             "3df718e does not have, to compare the same work")
    args = parser.parse_args()

    import copy

    import yaml

    from lorp.workflow.config import validate_schema

    speed, n_layers = forward_speed(args.cores)
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    changed = without_methods(raw, args.without) if args.without else None
    config = validate_schema(copy.deepcopy(changed or raw))
    work = WORK / ("workflow" + "".join(f"-without-{m}" for m in args.without))
    wall = run_workflow(ROOT, work, args.cores, changed)
    figures = {"cores": args.cores, "without": args.without, "seconds_wall": wall,
               **analyse(work, config, n_layers, speed)}
    if args.against:
        old = WORK / f"workflow-{args.against}"
        tree = WORK / f"tree-{args.against}"
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", args.against], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        figures.update(against=args.against, seconds_wall_against=run_workflow(tree, old, args.cores))
        figures["wall_over_against"] = wall / figures["seconds_wall_against"]
        print(f"workflow_wall_time: {figures['wall_over_against']:.3f} of {args.against}'s "
              f"({wall:.0f} s against {figures['seconds_wall_against']:.0f} s; target <= 0.60)")
    name = "workflow_overhead" + "".join(f"_without_{m}" for m in args.without)
    report(name, wall / figures["seconds_forward_needed"],
           "target <= 1.5x the forward passes its work needs", figures)


if __name__ == "__main__":
    main()
