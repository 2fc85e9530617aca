"""SLEB in the workflow: its plans are GPU jobs (rule model_plan) that read the prepared model and the
calibration tokens, made once per calibration whatever statistics are compared, and a change of its
parameter reruns its plans and what follows them only."""

import re

import pytest

from lorp.io import read_json
from tiny import METHODS, snakemake, tiny_config
from tinyrun import PLAN_FIGURES, SUMMARY, job, planned_jobs, pruned_jobs

pytestmark = pytest.mark.slow

SLEB_PLAN = "results/smol/plans/docs/sleb-3.json"


def with_sleb(**params):
    return tiny_config(methods={**{m: {} for m in METHODS}, "sleb": params})


def sleb_jobs():
    """What adding SLEB plans on the completed run: its plan (rule model_plan) and its evaluations, and what
    gathers every plan."""
    jobs = pruned_jobs(methods=["sleb"]) - {job("plan", "smol", "docs", "sleb", 3)}
    return jobs | {job("model_plan", "smol", "docs", "sleb", 3)} | SUMMARY | PLAN_FIGURES


def job_fields(workdir, config, rule, tmp_path):
    """The dry run's fields (input, resources, ...) of the first job of ``rule``, and the word it was
    announced with (``rule`` or ``localrule``)."""
    out = snakemake(workdir, config, "-n", configfile=tmp_path / "config.yaml")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    fields, kind = {}, None
    for line in (out.stdout + out.stderr).splitlines():
        m = re.match(r"^(local)?rule (\w+):$", line)
        if m:
            if kind is not None:
                break
            if m.group(2) == rule:
                kind = (m.group(1) or "") + "rule"
            continue
        m = re.match(r"^\s+(\w+): (.*)$", line)
        if kind is not None and m:
            fields[m.group(1)] = m.group(2)
    return kind, fields


def test_sleb_plans_are_gpu_jobs_reading_the_model_and_tokens(completed, tmp_path):
    cfg = with_sleb()
    assert planned_jobs(completed, cfg) == sleb_jobs()
    kind, fields = job_fields(completed, cfg, "model_plan", tmp_path)
    assert kind == "rule"  # not a localrule: on a cluster it is submitted with the GPU
    assert fields["input"] == "results/smol/model, results/smol/calib/docs/tokens.npy"
    assert "gpu=1" in fields["resources"] and fields["wildcards"].endswith("method=sleb, budget=3")
    # a compared statistic's view neither plans SLEB again nor lists it as an auto candidate under it
    compared = tiny_config(methods={**{m: {} for m in METHODS}, "sleb": {}, "auto": {}}, similarity={"compare": ["cka"]})
    jobs = planned_jobs(completed, compared)
    assert {w for r, w in jobs if r == "model_plan"} == {"model=smol, calib=docs, method=sleb, budget=3"}
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
    assert set(read_json(workdir / "results/smol/plans/docs/sleb-3.provenance.json")["inputs"]) == {
        "results/smol/model", "results/smol/calib/docs/tokens.npy"}
    made = planned_jobs(workdir, cfg)
    assert made == sleb_jobs() - {job("model_plan", "smol", "docs", "sleb", 3)}
    assert planned_jobs(workdir, with_sleb(n_windows=1)) == made | {job("model_plan", "smol", "docs", "sleb", 3)}
