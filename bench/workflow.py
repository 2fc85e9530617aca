"""Benchmark 7: the default run's wall time against the forward passes its work needs.

Runs ``snakemake --cores <n>`` on the default config (``config.yaml``) in a fresh copy of the workflow
under ``results/bench/workflow/``, then counts the forward passes every stage must make: capture and input
norms, the calibration tokens; Wanda's sequential pruning, twice the calibration tokens per plan; perplexity,
the evaluation windows of the dense model and of every distinct pruned model (plans that remove the same
blocks are one model; a depth-pruned one weighted by the share of blocks it keeps); efficiency, every
warm-up and timed round of every distinct model and of the dense one once per group of the efficiency
job (a prefill, then ``decode_tokens`` steps of one token each). Prefill tokens are priced at the forward
speed and decode steps at the decode latency, both measured in the same run before the workflow starts,
with the same thread count. Target: wall time <= 1.5x that forward-pass time."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace

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
    sparse = lc.sparse_evaluations(config)
    sequential = sum(1 for m, _ in sparse if m.startswith("wanda")) if config["sparsity"]["norms"] == "sequential" else 0
    eff = config["efficiency"]
    models = len(distinct) + len(sparse)
    groups = len(trios(list(range(models))))
    rounds = (models + 1) * eff["warmup"] + (models + groups) * eff["repeats"] if eff["enabled"] else 0
    round_s = eff["seqlen"] * eff["batch_size"] / prefill_tokens_per_s + eff["decode_tokens"] * decode_s_per_step
    tokens = {"capture": calib, "input_norms": calib if sparse else 0, "sequential_pruning": 2 * calib * sequential,
              "perplexity": per_eval * (1 + kept + len(sparse))}
    return {**{k: v / prefill_tokens_per_s for k, v in tokens.items()}, "efficiency": rounds * round_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch
    import yaml

    from lorp import models
    from lorp.evaluation.efficiency import EfficiencySettings, interleaved
    from lorp.workflow import config as lc
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
    config = validate_schema(yaml.safe_load((ROOT / "config.yaml").read_text()))
    eff = EfficiencySettings(**{k: int(v) for k, v in lc.efficiency_params(config).items()})
    decode_step = median(interleaved({"dense": model}, replace(eff, repeats=3))["dense"].decode)
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
    plans = [json.loads(p.read_text()) for p in (work / "results").glob("*/plans/*/*.json")
             if not p.name.endswith(".provenance.json")]
    need = needed_seconds(config, n_layers, [p for p in plans if p.get("family") != "sparse"], speed, decode_step)
    per_rule: dict[str, list[float]] = {}
    for record in (work / "results").rglob("*provenance.json"):
        rec = json.loads(record.read_text())
        per_rule.setdefault(rec["rule"], []).append(rec["wall_time_s"])
    jobs = {rule: {"jobs": len(t), "seconds": round(sum(t), 1)} for rule, t in
            sorted(per_rule.items(), key=lambda kv: -sum(kv[1]))}
    ideal = sum(need.values())
    report("workflow_overhead", wall / ideal, "target <= 1.5x the forward passes its work needs",
           {"cores": args.cores, "forward_tokens_per_s": speed, "decode_ms_per_step": decode_step * 1e3,
            "depth_plans": len(plans), "seconds_needed": need,
            "seconds_forward_needed": ideal, "seconds_wall": wall, "results_bytes": du, "job_seconds_by_rule": jobs})


if __name__ == "__main__":
    main()
