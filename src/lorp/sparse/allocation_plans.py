"""The registered layer-wise sparsity allocations (:mod:`lorp.sparse.registry`): one registration each, with
its plan, the inputs it reads, its settings and their checks. Imports no torch; a plan imports
:mod:`lorp.sparse.plan` when called."""

from __future__ import annotations

from typing import Any, Mapping

from .registry import ALLOCATIONS, Allocation, AllocationInputs, register_allocation


def get_allocation(name: str) -> Allocation:
    """The registered allocation ``name``, or an error listing the allocations there are."""
    return ALLOCATIONS.lookup(name)


def _uniform(inputs: AllocationInputs, metric: str, target: float, params: Mapping[str, Any]) -> Any:
    from .plan import uniform_plan

    return uniform_plan(metric, target, inputs.shapes())


def _owl(inputs: AllocationInputs, metric: str, target: float, params: Mapping[str, Any]) -> Any:
    from .plan import owl_plan

    return owl_plan(metric, target, inputs.outliers(), params["owl_lambda"])


def _mrp(inputs: AllocationInputs, metric: str, target: float, params: Mapping[str, Any]) -> Any:
    from .plan import MRPSettings, mrp_plan

    mrp = params["mrp"]
    settings = MRPSettings(mrp["start_below"] / 100, mrp["step"] / 100, mrp["upper"] / 100, mrp["granularity"])
    return mrp_plan(metric, target, inputs.scores(), params["outlier_m"], params["count_zeros"], settings)


def _mrp_params(sparsity: Mapping[str, Any]) -> dict[str, Any]:
    """M, count_zeros and the loop's settings."""
    return {"count_zeros": sparsity["count_zeros"], "outlier_m": sparsity["outlier_m"],
            "mrp": {key: sparsity["mrp"][key] for key in sorted(sparsity["mrp"])}}


def _owl_check(sparsity: Mapping[str, Any], targets: list[int]) -> list[str]:
    """OWL's sparsities span 2 x lambda around the target: they must stay in [0, 1] at every target."""
    worst = min(min(t, 100 - t) for t in targets) / 100
    if 2 * sparsity["owl_lambda"] < worst:
        return []
    return [f"sparsity.owl_lambda: {sparsity['owl_lambda']} makes OWL's sparsities (which span 2 x lambda around the "
            f"target) leave [0, 1] at target {min(targets, key=lambda t: min(t, 100 - t))}%; use less than "
            f"{worst / 2:g}"]


def _mrp_check(sparsity: Mapping[str, Any], targets: list[int]) -> list[str]:
    """MRP starts below every target by a whole number of steps (its own and the sweep's) and stops below
    its upper bound."""
    mrp, errors = sparsity["mrp"], []
    low = [t for t in targets if t < mrp["start_below"]]
    if low:
        errors.append(f"sparsity.mrp.start_below: {mrp['start_below']} points below targets {low} is below 0 "
                      f"sparsity; use at most {min(targets)}")
    for key, steps in (("sparsity.mrp.step", [mrp["step"]]), ("sparsity.sweep.step", sparsity["sweep"]["step"])):
        for step in steps:
            n = mrp["start_below"] / step
            if abs(n - round(n)) > 1e-6:
                errors.append(f"{key}: {step:g} does not divide the range MRP covers, sparsity.mrp.start_below "
                              f"= {mrp['start_below']:g} points ({n:.3f} steps); choose a step that does, "
                              f"e.g. {mrp['start_below'] / max(1, round(n)):g}")
    high = [t for t in targets if t >= mrp["upper"]]
    if high:
        errors.append(f"sparsity.mrp.upper: {mrp['upper']}% is not above targets {high}")
    return errors


register_allocation(Allocation(name="uniform", plan=_uniform, inputs=("shapes",), color="#7f7f7f",
                               summary="every block at the target"))
register_allocation(Allocation(
    name="owl",
    plan=_owl,
    inputs=("outliers",),
    params=lambda sparsity: {"owl_lambda": sparsity["owl_lambda"]},  # M reaches it through outliers.json
    check=_owl_check,
    color="#1f77b4",
    summary="Outlier-Weighted Layerwise sparsity: blocks with more outliers keep more weights",
))
register_allocation(Allocation(
    name="mrp",
    plan=_mrp,
    inputs=("scores",),
    params=_mrp_params,
    check=_mrp_check,
    color="#d62728",
    summary="Maximum Redundancy Pruning: step by step, the most redundant block gets sparser",
))
