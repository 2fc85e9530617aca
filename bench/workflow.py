"""Benchmark 7: the default run's wall time against the forward passes its work needs.

Runs ``snakemake --cores <n>`` on the default config (``config.yaml``) in a fresh copy of the workflow
under ``results/bench/workflow/``, then counts the tokens every stage must push through the model (capture
and input norms: the calibration tokens; Wanda's sequential pruning: twice the calibration tokens per
plan; perplexity: the evaluation windows of the dense and of every pruned model, a depth-pruned one
weighted by the share of blocks it keeps; efficiency: every timed and warm-up round of every model
timed, the dense one once per group) and divides them by the forward speed measured in the same run, before the workflow starts,
with the same thread count. Target: wall time <= 1.5x that forward-pass time."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

from common import ROOT, WORK, alternate, calibration, embedded_model, median, report

COPY = ("Snakefile", "rules", "scripts", "schemas", "src", "envs", "report", "profiles", "slurm", "config.yaml")


def needed_tokens(config: dict, n_layers: int) -> dict[str, float]:
    """Tokens each kind of stage pushes through the model for a validated ``config`` (decoder-equivalent:
    a depth-pruned model's share of blocks)."""
    from lorp.workflow import config as lc

    calib = sum(c["n_samples"] * c["seqlen"] for c in config["calibration"].values())
    per_eval = 0
    for name, spec in lc.evaluation_datasets(config, next(iter(config["models"]))).items():
        per_eval += min(spec["max_windows"] or 10**9, 10**9) * spec["seqlen"]
    depth = [(m, b) for m in config["methods"] for b in config["budgets"]]
    kept = sum((n_layers - b) / n_layers for _, b in depth)
    sparse = lc.sparse_evaluations(config)
    sequential = sum(1 for m, _ in sparse if m.startswith("wanda")) if config["sparsity"]["norms"] == "sequential" else 0
    eff = config["efficiency"]
    per_round = (eff["seqlen"] + eff["decode_tokens"]) * eff["batch_size"]  # a prefill, then the decoded tokens
    runs = (len(depth) + 1) + 2 * len(sparse)  # the depth models with the dense one, each sparse one in a pair
    return {"capture": calib, "input_norms": calib if sparse else 0, "sequential_pruning": 2 * calib * sequential,
            "perplexity": per_eval * (1 + kept + len(sparse)),
            "efficiency": runs * (eff["warmup"] + eff["repeats"]) * per_round if eff["enabled"] else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch
    import yaml

    from lorp import models
    from lorp.workflow.config import validate_schema

    torch.set_num_threads(args.cores)
    model_dir = embedded_model()
    model, _, _ = models.load(model_dir)
    tokens = calibration(model_dir)

    @torch.inference_mode()
    def forward():
        for start in range(0, len(tokens), 8):
            model(input_ids=torch.from_numpy(tokens[start:start + 8].astype(np.int64)), use_cache=False)

    speed = tokens.size / median(alternate({"forward": forward}, 3)["forward"])
    n_layers = len(models.get_decoder_layers(model))
    del model

    work = WORK / "workflow"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in COPY:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, work / name)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--quiet", "rules"], cwd=work,
                   check=True)
    wall = time.perf_counter() - start
    du = sum(p.stat().st_size for p in (work / "results").rglob("*") if p.is_file())
    config = validate_schema(yaml.safe_load((ROOT / "config.yaml").read_text()))
    need = needed_tokens(config, n_layers)
    per_rule: dict[str, list[float]] = {}
    for record in (work / "results").rglob("*provenance.json"):
        rec = json.loads(record.read_text())
        per_rule.setdefault(rec["rule"], []).append(rec["wall_time_s"])
    jobs = {rule: {"jobs": len(t), "seconds": round(sum(t), 1)} for rule, t in
            sorted(per_rule.items(), key=lambda kv: -sum(kv[1]))}
    ideal = sum(need.values()) / speed
    report("workflow_overhead", wall / ideal, "target <= 1.5x the forward passes its work needs",
           {"cores": args.cores, "forward_tokens_per_s": speed, "tokens_needed": need,
            "seconds_forward_needed": ideal, "seconds_wall": wall, "results_bytes": du, "job_seconds_by_rule": jobs})


if __name__ == "__main__":
    main()
