"""SLEB in the workflow: its plans are GPU jobs (rule model_plan) that read the prepared model, the
calibration tokens and the plan at one block fewer (budget 3 is made from 2, 2 from 1), made once per
calibration whatever statistics are compared; a budget added to the config costs its own steps only and
reruns nothing made, and a change of its parameter reruns its plans and what follows them only."""

import re

import pytest

from lorp.io import read_json
from tiny import METHODS, snakemake, tiny_config
from tinyrun import PLAN_FIGURES, SUMMARY, job, planned_jobs, pruned_jobs

pytestmark = pytest.mark.slow

SLEB_PLAN = "results/smol/plans/docs/sleb-3.json"


def with_sleb(**params):
    return tiny_config(methods={**{m: {} for m in METHODS}, "sleb": params})


def sleb_plans(*budgets):
    return {job("model_plan", "smol", "docs", "sleb", b) for b in budgets}


def sleb_jobs():
    """What adding SLEB plans on the completed run: its plans at budgets 1, 2 and 3 (rule model_plan, each
    continuing the one before), the evaluations of the configured budget 3, and what gathers every plan."""
    jobs = pruned_jobs(methods=["sleb"]) - {job("plan", "smol", "docs", "sleb", 3)}
    return jobs | sleb_plans(1, 2, 3) | SUMMARY | PLAN_FIGURES


def job_fields(workdir, config, rule, tmp_path, wildcards=""):
    """The dry run's fields (input, resources, ...) of the job of ``rule`` whose wildcards end with
    ``wildcards``, and the word it was announced with (``rule`` or ``localrule``)."""
    out = snakemake(workdir, config, "-n", configfile=tmp_path / "config.yaml")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    jobs = []
    for line in (out.stdout + out.stderr).splitlines():
        m = re.match(r"^(local)?rule (\w+):$", line)
        if m:
            jobs.append(((m.group(1) or "") + "rule", m.group(2), {}))
            continue
        m = re.match(r"^\s+(\w+): (.*)$", line)
        if jobs and m:
            jobs[-1][2][m.group(1)] = m.group(2)
    for kind, name, fields in jobs:
        if name == rule and fields.get("wildcards", "").endswith(wildcards):
            return kind, fields
    return None, {}


def test_sleb_plans_are_gpu_jobs_reading_the_model_and_tokens(completed, tmp_path):
    cfg = with_sleb()
    assert planned_jobs(completed, cfg) == sleb_jobs()
    kind, fields = job_fields(completed, cfg, "model_plan", tmp_path, "method=sleb, budget=3")
    assert kind == "rule"  # not a localrule: on a cluster it is submitted with the GPU
    assert fields["input"] == ("results/smol/model, results/smol/calib/docs/tokens.npy, "
                               "results/smol/plans/docs/sleb-2.json")
    assert "gpu=1" in fields["resources"]
    assert job_fields(completed, cfg, "model_plan", tmp_path, "budget=1")[1]["input"] == (
        "results/smol/model, results/smol/calib/docs/tokens.npy")
    # a compared statistic's view neither plans SLEB again nor lists it as an auto candidate under it
    compared = tiny_config(methods={**{m: {} for m in METHODS}, "sleb": {}, "auto": {}}, similarity={"compare": ["cka"]})
    jobs = planned_jobs(completed, compared)
    assert {(r, w) for r, w in jobs if r == "model_plan"} == sleb_plans(1, 2, 3)
    assert {w for r, w in jobs if r == "plan"} == {f"model=smol, calib=docs~cka, method={m}, budget=3" for m in METHODS}


def test_sleb_plan_made_and_its_parameter_reruns_only_it(own_copy):
    workdir = own_copy
    cfg = with_sleb(n_windows=2)
    out = snakemake(workdir, cfg, SLEB_PLAN)
    assert out.returncode == 0, out.stderr[-3000:]
    plan = read_json(workdir / SLEB_PLAN)
    assert plan["method"] == "sleb" and len(plan["pruned"]) == 3 and not {0, 29} & set(plan["pruned"])
    assert plan["windows"]["n_windows"] == 2 and [s["block"] for s in plan["steps"]] == plan["removal_order"]
    assert [len(s["candidates"]) for s in plan["steps"]] == [28, 27, 26]
    two = read_json(workdir / "results/smol/plans/docs/sleb-2.json")
    assert plan["steps"][:2] == two["steps"] and two["removal_order"] == plan["removal_order"][:2]
    assert set(read_json(workdir / "results/smol/plans/docs/sleb-3.provenance.json")["inputs"]) == {
        "results/smol/model", "results/smol/calib/docs/tokens.npy", "results/smol/plans/docs/sleb-2.json"}
    log = (workdir / "results/logs/smol/plans/docs/sleb-3.log").read_text()
    assert "step 2 (from the plan at budget 2)" in log and "step 3: block" in log and "step 1: block" not in log
    made = planned_jobs(workdir, cfg)
    assert made == sleb_jobs() - sleb_plans(1, 2, 3)
    assert planned_jobs(workdir, with_sleb(n_windows=1)) == made | sleb_plans(1, 2, 3)
    # a budget added costs its own step and evaluations; dropping one reruns nothing
    more = tiny_config(methods={**{m: {} for m in METHODS}, "sleb": {"n_windows": 2}}, budgets=[3, 4])
    added = planned_jobs(workdir, more)
    assert {(r, w) for r, w in added if r == "model_plan"} == sleb_plans(4)
    assert {(r, w) for r, w in added if w.endswith("budget=3")} == {(r, w) for r, w in made if w.endswith("budget=3")}
    out = snakemake(workdir, more, "results/smol/plans/docs/sleb-4.json")
    assert out.returncode == 0, out.stderr[-3000:]
    fewer = tiny_config(methods=more["methods"], budgets=[4])
    assert not {(r, w) for r, w in planned_jobs(workdir, fewer) if r == "model_plan"}
