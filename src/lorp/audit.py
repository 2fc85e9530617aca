"""Audit ``results/`` against the current config and the provenance records.

For every job the config implies, the audit checks that its provenance record exists, that the
outputs still match their recorded fingerprints, that the record's config slice equals the
current one (else the artifact is stale), and that the inputs it was made from are still the
files on disk (else an upstream stage was rerun after it). It then checks consistency across
stages: every plan's kept-layer count against its checkpoint, every evaluation against the plan
and checkpoint it names. Run it as ``python -m lorp.audit`` (exit status 1 on any problem).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from . import config as lc
from .io import dumps_json, read_json
from .provenance import compare, fingerprint


@dataclass(frozen=True)
class Finding:
    """One problem (``missing``, ``modified``, ``stale``, ``inconsistent``) or note (``extra``)."""

    kind: str
    path: str
    message: str

    @property
    def is_problem(self) -> bool:
        return self.kind != "extra"

    def __str__(self) -> str:
        return f"{self.kind:12s} {self.path}: {self.message}"


@dataclass(frozen=True)
class ExpectedJob:
    rule: str
    wildcards: dict[str, str]
    provenance: str
    outputs: list[str]
    params: dict[str, Any]
    temporary: tuple[str, ...] = ()


def _norm(value: Any) -> Any:
    return json.loads(dumps_json(value))


def expected_jobs(config: Mapping[str, Any]) -> Iterator[ExpectedJob]:
    """Every job the config implies, with the paths and config slice the rules use."""
    compute = lc.compute_params(config)
    temporary = bool(config.get("checkpoints", {}).get("temporary", False))
    zeroshot = lc.zeroshot_params(config)
    # (rule suffix, file, provenance file, params) of each kind of evaluation the config asks for
    # besides perplexity, whose slice depends on the model and is put first for each model below
    others: list[tuple[str, str, str, dict]] = []
    if zeroshot["tasks"]:
        others.append(("evaluate_tasks", "tasks.csv", "tasks.provenance.json",
                       {"zeroshot": zeroshot, "compute": compute}))
    if config.get("efficiency", {}).get("enabled", True):
        others.append(("efficiency", "efficiency.csv", "efficiency.provenance.json",
                       {"efficiency": lc.efficiency_params(config), "compute": compute}))
    for model, entry in config["models"].items():
        evaluations = [("evaluate", "ppl.csv", "provenance.json",
                        {"datasets": lc.evaluation_datasets(config, model), "compute": compute}), *others]
        r = f"results/{model}"
        yield ExpectedJob("prepare_model", {"model": model}, f"{r}/model.provenance.json", [f"{r}/model"],
                          {"model": {"source": entry["source"], "storage_dtype": entry.get("storage_dtype", "bfloat16")}})
        for rule, name, prov, params in evaluations:
            yield ExpectedJob(f"{rule}_dense", {"model": model}, f"{r}/eval/dense/{prov}",
                              [f"{r}/eval/dense/{name}"], params)
        for calib in config["calibration"]:
            w = {"model": model, "calib": calib}
            yield ExpectedJob("calibration_tokens", w, f"{r}/calib/{calib}/provenance.json",
                              [f"{r}/calib/{calib}/tokens.npy", f"{r}/calib/{calib}/meta.json"],
                              {"spec": lc.calibration_spec(config, calib)})
            yield ExpectedJob("capture_activations", w, f"{r}/activations/{calib}.provenance.json",
                              [f"{r}/activations/{calib}"],
                              {"activations": lc.activation_params(config, model), "compute": compute})
            sim = f"{r}/similarity/{calib}"
            yield ExpectedJob("similarity", w, f"{sim}/provenance.json",
                              [f"{sim}/{n}" for n in ("cosine.npy", "cosine.csv", "heatmap.png",
                                                      "cosine_extended.npy", "cosine_last_token.npy")], {})
            yield ExpectedJob("structure", w, f"{r}/structure/{calib}/provenance.json",
                              [f"{r}/structure/{calib}/rls.json"], {"structure": lc.structure_params(config)})
            for k in config.get("ablation", {}).get("lorp_k", []):
                yield ExpectedJob("structure_fixed_k", {**w, "k": str(k)},
                                  f"{r}/structure/{calib}/rls-k{k}.provenance.json",
                                  [f"{r}/structure/{calib}/rls-k{k}.json"],
                                  {"structure": lc.fixed_k_structure_params(config, k)})
            budget_for_figure = config.get("figures", {}).get("budget") or max(config["budgets"])
            fig = f"{r}/figures/{calib}"
            yield ExpectedJob("figure_structure", w, f"{fig}/structure.provenance.json", [f"{fig}/structure.png"],
                              {"budget": budget_for_figure})
            yield ExpectedJob("figure_pruned_layers", w, f"{fig}/pruned_layers.provenance.json",
                              [f"{fig}/pruned_layers.png"], {})
            pairs = [(m, b) for m in config["methods"] for b in config["budgets"]]
            pairs += [(m, b) for m in lc.ablation_methods(config) for b in lc.ablation_budgets(config)]
            for method, budget in pairs:
                ablation = method not in config["methods"]
                wb = {**w, "method": method, "budget": str(budget)}
                tag = f"{method}-{budget}"
                yield ExpectedJob("plan", wb, f"{r}/plans/{calib}/{tag}.provenance.json",
                                  [f"{r}/plans/{calib}/{tag}.json"],
                                  {"method_params": lc.method_params(config, method)})
                ckpt = f"{r}/checkpoints/{calib}/{tag}"
                yield ExpectedJob("prune_checkpoint", wb, f"{ckpt}.provenance.json", [ckpt], {},
                                  temporary=(ckpt,) if temporary else ())
                for rule, name, prov, params in evaluations[:1] if ablation else evaluations:
                    yield ExpectedJob(f"{rule}_pruned", wb, f"{r}/eval/{calib}/{tag}/{prov}",
                                      [f"{r}/eval/{calib}/{tag}/{name}"], params)
    summaries = {"ppl.csv": ("summary", "provenance.json", "ppl"),
                 "tasks.csv": ("summary_tasks", "tasks.provenance.json", "tasks"),
                 "efficiency.csv": ("summary_efficiency", "efficiency.provenance.json", "efficiency")}
    for name in ["ppl.csv", *(o[1] for o in others)]:
        rule, prov, kind = summaries[name]
        yield ExpectedJob(rule, {}, f"results/summary/{prov}",
                          [f"results/summary/{kind}.csv", f"results/summary/{kind}_table.csv",
                           f"results/summary/{kind}.md"], {"kind": kind})
        if kind in ("ppl", "tasks"):
            yield ExpectedJob("figure_vs_budget", {"kind": kind}, f"results/figures/{kind}_vs_budget.provenance.json",
                              [f"results/figures/{kind}_vs_budget.png"], {})
    yield ExpectedJob("figure_locality", {}, "results/figures/locality.provenance.json",
                      ["results/figures/locality.png"], {})
    if lc.ablation_methods(config):
        yield ExpectedJob("k_ablation", {}, "results/figures/k_ablation.provenance.json",
                          ["results/summary/k_ablation.csv", "results/figures/k_ablation.png"], {})


def _check_job(job: ExpectedJob, root: Path, fingerprints: Callable[[str], dict | None]) -> list[Finding]:
    prov_path = root / job.provenance
    if not prov_path.is_file():
        present = [o for o in job.outputs if (root / o).exists()]
        what = "outputs exist without a provenance record" if present else "not produced yet"
        return [Finding("missing", job.outputs[0], f"{job.rule}: {what}")]
    rec = read_json(prov_path)
    findings: list[Finding] = []
    for out in job.outputs:
        recorded = rec["outputs"].get(out)
        if recorded is None:
            findings.append(Finding("inconsistent", out, f"not listed in {job.provenance}"))
        elif out in job.temporary and not (root / out).exists():
            continue  # a temporary checkpoint, deleted after its evaluation as configured
        else:
            findings += [Finding("missing" if p.endswith("missing") else "modified", out, p)
                         for p in compare(root / out, recorded)]
    if _norm(job.params) != rec.get("params"):
        findings.append(Finding("stale", job.outputs[0],
                                f"{job.rule} ran with params {json.dumps(rec.get('params'), sort_keys=True)}, "
                                f"the config now gives {json.dumps(_norm(job.params), sort_keys=True)}"))
    for path, recorded in rec.get("inputs", {}).items():
        current = fingerprints(path)
        if current is None:
            continue  # the upstream artifact is reported on its own (missing or temporary)
        if _norm(current) != recorded:
            findings.append(Finding("stale", job.outputs[0], f"input {path} changed after this was made"))
    return findings


def _consistency(config: Mapping[str, Any], root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for job in expected_jobs(config):
        if job.rule == "plan" and (root / job.outputs[0]).is_file():
            plan = read_json(root / job.outputs[0])
            kept, pruned = plan.get("kept", []), plan.get("pruned", [])
            if sorted(set(kept) | set(pruned)) != list(range(plan.get("n_layers", -1))) or set(kept) & set(pruned):
                findings.append(Finding("inconsistent", job.outputs[0], "kept and pruned do not partition the layers"))
            ckpt = root / job.outputs[0].replace("/plans/", "/checkpoints/").removesuffix(".json")
            if (ckpt / "config.json").is_file():
                n = read_json(ckpt / "config.json").get("num_hidden_layers")
                if n != len(kept):
                    findings.append(Finding("inconsistent", str(ckpt.relative_to(root)),
                                            f"checkpoint has {n} layers, its plan keeps {len(kept)}"))
                copied = read_json(ckpt / "plan.json").get("pruned") if (ckpt / "plan.json").is_file() else None
                if copied != pruned:
                    findings.append(Finding("inconsistent", str(ckpt.relative_to(root)),
                                            f"plan.json in the checkpoint prunes {copied}, the plan {pruned}"))
        if job.rule.endswith("_pruned") and (root / job.outputs[0]).is_file():
            w = job.wildcards
            tag = f"{w['method']}-{w['budget']}"
            plan_path = f"results/{w['model']}/plans/{w['calib']}/{tag}.json"
            ckpt_path = f"results/{w['model']}/checkpoints/{w['calib']}/{tag}"
            with (root / job.outputs[0]).open() as fh:
                rows = list(csv.DictReader(fh))
            for row in rows:
                if row.get("plan") != plan_path or row.get("checkpoint") != ckpt_path:
                    findings.append(Finding("inconsistent", job.outputs[0],
                                            f"names plan {row.get('plan')!r} and checkpoint {row.get('checkpoint')!r}, "
                                            f"expected {plan_path!r} and {ckpt_path!r}"))
                    break
            if (root / plan_path).is_file():
                n_kept = len(read_json(root / plan_path).get("kept", []))
                if any(int(row.get("n_layers", -1)) != n_kept for row in rows):
                    findings.append(Finding("inconsistent", job.outputs[0],
                                            f"evaluated a model whose layer count is not the plan's {n_kept}"))
    return findings


def _extras(config: Mapping[str, Any], root: Path) -> list[Finding]:
    expected = {o for job in expected_jobs(config) for o in [*job.outputs, job.provenance]}
    results = root / "results"
    findings = []
    if not results.is_dir():
        return findings
    for model_dir in sorted(p for p in results.iterdir() if p.is_dir() and p.name not in ("logs", "summary")):
        for stage in ("plans", "eval", "checkpoints"):
            for path in sorted((model_dir / stage).glob("*/*")) if (model_dir / stage).is_dir() else []:
                rel = str(path.relative_to(root))
                if path.name.startswith(".") or path.name == "provenance.json" or rel in expected:
                    continue
                if rel.endswith(".provenance.json") or any(e.startswith(rel + "/") for e in expected):
                    continue
                findings.append(Finding("extra", rel, "not part of the current config (left from an earlier one)"))
    return findings


def audit(config: Mapping[str, Any], root: str | Path = ".") -> list[Finding]:
    """All findings for ``results/`` under ``root`` against ``config`` (validated, with defaults)."""
    root = Path(root)
    cache: dict[str, dict | None] = {}

    def fingerprints(path: str) -> dict | None:
        if path not in cache:
            cache[path] = fingerprint(root / path) if (root / path).exists() else None
        return cache[path]

    findings: list[Finding] = []
    for job in expected_jobs(config):
        findings += _check_job(job, root, fingerprints)
    findings += _consistency(config, root)
    findings += _extras(config, root)
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lorp.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", default="config.yaml", help="the config the results should match")
    parser.add_argument("--directory", default=".", help="the directory holding results/ (default: .)")
    args = parser.parse_args(argv)
    import yaml

    cfg = yaml.safe_load(Path(args.configfile).read_text(encoding="utf-8"))
    lc.validate_schema(cfg)
    findings = audit(cfg, args.directory)
    problems = [f for f in findings if f.is_problem]
    for f in findings:
        print(f)
    n_jobs = sum(1 for _ in expected_jobs(cfg))
    print(f"audit: {n_jobs} jobs checked, {len(problems)} problems, "
          f"{len(findings) - len(problems)} notes", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
