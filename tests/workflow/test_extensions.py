"""The tiny run extended, each in a private copy of the completed run: the K ablation, a depth method and
a sparse allocation each registered in one module, the similarity statistics and the sensitivity stages,
and `auto` (its rows copied from its chosen candidate's, loading no model)."""

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from lorp.io import read_json
from tiny import METHODS, snakemake, tiny_config
from tinyrun import PLAN_FIGURES, SUMMARY, audited, dry_run, planned_jobs, planned_jobs_each, pruned_jobs, read_rows

pytestmark = pytest.mark.slow


def test_k_ablation_added(completed, own_copy):
    """ablation.lorp_k added: the fixed-K clusterings, their LoRP plans, checkpoints and perplexities, and
    the ablation table and figure; nothing else. Then run it (in a copy)."""
    cfg = tiny_config(ablation={"lorp_k": [2, 3], "budgets": [3]})
    expected = ({("structure_fixed_k", f"model=smol, calib=docs, k={k}") for k in (2, 3)} | {("k_ablation", "")}
                | pruned_jobs(methods=["lorp-k2", "lorp-k3"], kinds=["ppl"]))
    assert planned_jobs(completed, cfg) == expected
    workdir = own_copy
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-4000:]
    rows = read_rows(workdir / "results/summary/k_ablation.csv")
    assert [(r["k"], r["budget"]) for r in rows] == [("2", "3"), ("3", "3")]
    assert read_json(workdir / "results/smol/structure/docs/rls-k3.json")["k"] == 3
    plan = read_json(workdir / "results/smol/plans/docs/lorp-k2-3.json")
    assert plan["method"] == "lorp" and plan["k"] == 2 and len(plan["pruned"]) == 3
    assert (workdir / "results/figures/k_ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert audited(workdir, cfg) == []
    assert planned_jobs(workdir, tiny_config()) == set()  # the ablation's files do not disturb the main run


def test_a_registered_method_is_a_one_module_change(own_copy):
    """A depth-pruning method declared in lorp/depth/methods.py alone (its plan, budget limit and one
    parameter) is accepted by the config check and planned by the rules from the similarity files."""
    workdir = own_copy
    methods_py = workdir / "src/lorp/depth/methods.py"
    toy = """

def _toy(inputs, budget, params):
    n = inputs.extended.shape[0] - 1
    pruned = list(range(params["start"], params["start"] + budget))
    return Plan("toy", budget, n, pruned, [], [None] * n, "none")


register(Method(name="toy", plan=_toy, max_budget=lambda n, params: n - params["start"], inputs=("extended",),
                parameters={"start": {"type": "integer", "minimum": 0, "default": 1}}))
"""
    methods_py.write_text(methods_py.read_text() + toy)
    cfg = tiny_config(methods={**{m: {} for m in METHODS}, "toy": {"start": 5}})
    with ThreadPoolExecutor(max_workers=2) as pool:  # two dry runs, one core each
        planned = pool.submit(planned_jobs, workdir, cfg)
        bad = snakemake(workdir, tiny_config(methods={"toy": {"begin": 5}}), "-n")
        planned = planned.result()  # methods.py changed: every plan reruns (its code fingerprint)
    assert pruned_jobs(methods=["toy"]) | SUMMARY | PLAN_FIGURES <= planned
    assert not {r for r, _ in planned} & {"calibration_tokens", "capture_activations", "similarity", "structure"}
    assert bad.returncode != 0
    assert "methods.toy: unknown key 'begin'; allowed: start" in bad.stdout + bad.stderr
    target = "results/smol/plans/docs/toy-3.json"
    out = snakemake(workdir, cfg, target)
    assert out.returncode == 0, out.stderr[-3000:]
    assert read_json(workdir / target)["pruned"] == [5, 6, 7]
    assert set(read_json(workdir / "results/smol/plans/docs/toy-3.provenance.json")["inputs"]) == {
        "results/smol/similarity/docs/cosine_extended.npy"}



TOY = '''

def _toy(inputs, metric, target, params):
    from .plan import SparsePlan, _n_params

    shapes = inputs.shapes()
    half = len(shapes) // 2
    blocks = [0.0] * half + [2 * target] * (len(shapes) - half)  # the shallow half dense, the deep half at 2x
    return SparsePlan(metric, "toy", target, _n_params(shapes), blocks,
                      [{name: s for name in block} for block, s in zip(shapes, blocks)], [])


register_allocation(Allocation(name="toy", plan=_toy, inputs=("shapes",), color="#17becf",
                               summary="a toy: the deep half of the blocks at twice the target"))
'''


def test_a_registered_allocation_is_a_one_module_change(own_copy):
    """An allocation registered in lorp/sparse/allocation_plans.py alone is accepted by the config check,
    planned by the rules with the inputs it declares, and its plan made by the plan stage."""
    root = own_copy
    module = root / "src/lorp/sparse/allocation_plans.py"
    module.write_text(module.read_text() + TOY)
    cfg = tiny_config(sparsity={"targets": [25], "metrics": ["magnitude"], "allocations": ["toy", "uniform"]})
    with ThreadPoolExecutor(max_workers=2) as pool:  # two dry runs, one core each
        planned = pool.submit(dry_run, root, cfg)
        bad = snakemake(root, tiny_config(sparsity={"targets": [25], "allocations": ["tyo"]}), "-n")
        planned = {o for outputs in planned.result().values() for o in outputs}
    planned = set(re.findall(r"sparsity/docs/plans/(magnitude-\w+-25)\.json", " ".join(planned)))
    assert planned == {"magnitude-toy-25", "magnitude-uniform-25"}
    assert bad.returncode != 0 and "'tyo'" in bad.stdout + bad.stderr and "toy" in bad.stdout + bad.stderr
    target = "results/smol/sparsity/docs/plans/magnitude-toy-25.json"
    out = snakemake(root, cfg, target)
    assert out.returncode == 0, out.stderr[-3000:]
    plan = json.loads((root / target).read_text())
    assert plan["method"] == "magnitude-toy" and plan["blocks"][:15] == [0.0] * 15 and plan["blocks"][15:] == [0.5] * 15
    provenance = json.loads((root / target.replace(".json", ".provenance.json")).read_text())
    assert set(provenance["inputs"]) == {"results/smol/model"}  # the shapes it declared, from the prepared model


def test_statistics_and_sensitivity_run_only_their_own_stages(own_copy):
    """Run the similarity statistics and the sensitivity stages (what they plan is checked in
    test_reruns.py): the tables hold every view, the reference's plans agree with themselves, and the
    bootstrap's selection frequencies add up to the budget (every resample prunes exactly that many
    blocks); the reference calibration's results are untouched."""
    workdir = own_copy
    # a row transform with its parameter and the CKA kernel (every statistic's values against hand-computed
    # ones, "centred" included: tests/test_similarity.py)
    compare = ["no-massive", "cka"]
    variations = {"n6": {"n_samples": 6}, "sub16": {"tokens_per_sequence": 16}, "lin": {"statistic": "cka"}}
    cfg = tiny_config(similarity={"compare": compare, "cka_batch_tokens": 64},
                      sensitivity={"variations": variations, "bootstrap": {"resamples": 8}})
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = read_rows(workdir / "results" / "summary" / "statistics.csv")
    assert [r["statistic"] for r in rows[::len(METHODS)]] == ["cosine", *compare]
    assert all(float(r["jaccard_to_reference"]) == 1.0 for r in rows if r["statistic"] == "cosine")
    reference_plans = {m: json.loads((workdir / f"results/smol/plans/docs/{m}-3.json").read_text())["pruned"]
                       for m in METHODS}
    assert {r["method"]: [int(x) for x in r["pruned"].split()] for r in rows if r["statistic"] == "cosine"} \
        == reference_plans
    sens = workdir / "results" / "smol" / "sensitivity"
    rls = read_rows(sens / "rls.csv")
    assert [r["variation"] for r in rls] == ["reference", "n6", "sub16", "lin"]
    ref = rls[0]
    assert float(ref["rls_low"]) <= float(ref["rls_high"]) and ref["resamples"] == "8"
    assert rls[-1]["statistic"] == "cka" and rls[-1]["rls_low"] == ""  # no bootstrap for CKA
    selection = read_rows(sens / "selection.csv")
    for variation in ("reference", "n6", "sub16"):
        for method in METHODS:
            share = sum(float(r["frequency"]) for r in selection if r["variation"] == variation and r["method"] == method)
            assert share == pytest.approx(3.0), (variation, method)
    for name in ("rls", "stability", "selection"):
        assert (sens / f"{name}.png").stat().st_size > 10_000
    # nothing left to do, and the reference calibration's results are untouched
    assert planned_jobs_each((workdir, cfg), (workdir, tiny_config())) == [set(), set()]


def test_an_auto_plan_is_not_evaluated_twice(own_copy):
    """auto removes the blocks of the candidate it chose: its perplexity and zero-shot rows are that
    candidate's, copied (same numbers, auto's labels), and its evaluation jobs load no model."""
    workdir = own_copy
    cfg = tiny_config(methods={**{m: {} for m in METHODS}, "auto": {"held_out_samples": 2}},
                      efficiency={"enabled": False})
    out = snakemake(workdir, cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    auto = json.loads((workdir / "results/smol/plans/docs/auto-3.json").read_text())
    chosen = auto["chosen"]["method"]
    assert json.loads((workdir / f"results/smol/plans/docs/{chosen}-3.json").read_text())["pruned"] == auto["pruned"]
    labels = {"method", "plan"}
    kinds = ["ppl"] + (["tasks"] if "zeroshot" in cfg else [])
    for kind in kinds:
        mine = read_rows(workdir / f"results/smol/eval/docs/auto-3/{kind}.csv")
        theirs = read_rows(workdir / f"results/smol/eval/docs/{chosen}-3/{kind}.csv")
        assert [{k: v for k, v in r.items() if k not in labels} for r in mine] == \
            [{k: v for k, v in r.items() if k not in labels} for r in theirs]
        assert {(r["method"], r["plan"]) for r in mine} == {("auto", "results/smol/plans/docs/auto-3.json")}
    for kind in kinds:
        log = (workdir / f"results/logs/smol/eval/docs/auto-3{'-tasks' if kind == 'tasks' else ''}.log").read_text()
        assert "the same model is not evaluated twice" in log and "Loading weights" not in log, kind
    assert {r["method"] for r in read_rows(workdir / "results/summary/ppl.csv")} >= {"auto", chosen}
