"""The sparse family's metrics and allocations, each declared once.

A :class:`Metric` scores every weight of a linear layer (Wanda, magnitude; SparseGPT also updates the
weights it keeps); an :class:`Allocation`
decides how sparse each block is for a global target (uniform, OWL, MRP). The rules, the config schema, the
plan stage and the figures consult these registries:

- the config schema's ``sparsity.metrics`` and ``sparsity.allocations`` enums list the registered names
  (:func:`lorp.workflow.config.load_schema`);
- the rules give a metric with ``uses_norms`` the calibration's input norms, and an allocation its declared
  ``inputs`` (``rules/common.smk``: ``sparse_scores``, ``sparse_plan_inputs``);
- the plan stage calls the allocation's ``plan`` with those inputs and its config slice (``params``);
- the figures draw an allocation in its ``color``.

This module imports no torch (the rules read the registries when the workflow is
parsed). The registrations are in :mod:`lorp.sparse.metrics` and :mod:`lorp.sparse.allocation_plans`, whose
``get_metric`` and ``get_allocation`` are the lookups to use (so that a job's code fingerprint counts the
registration it looks up). An N:M pattern (``2of4``) is not an allocation: every layer is at
``(M - N) / M`` by construction (:func:`lorp.sparse.plan.nm_plan`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from ..registry import Registry

SCORE_NORMS = ("input_norms", "obs_norms")
"""The per-input factors a metric's scores may read (:attr:`Metric.score_norms`), each a rule's output."""

ALLOCATION_INPUTS = ("shapes", "outliers", "scores")
"""What an allocation's plan may read: the layers' shapes (the prepared model, no weight read), the dense
blocks' outlier ratios (``outliers.json`` of its metric), or every block's scores (model and, for a metric
that uses them, the input norms)."""


class AllocationInputs(Protocol):
    """The inputs an allocation's plan reads, loaded when asked for (:data:`ALLOCATION_INPUTS`)."""

    def shapes(self) -> list[dict[str, tuple[int, int]]]: ...

    def outliers(self) -> list[dict[str, Any]]: ...

    def scores(self) -> Any: ...


@dataclass(frozen=True)
class Metric:
    """One pruning metric.

    Attributes:
        name: the name under ``sparsity.metrics`` and in artifact names (``<metric>-<allocation>-<target>``).
        score: ``score(weight, input_norm) -> scores``: the score of every weight of a layer (``weight`` is
            the ``[out, in]`` absolute values as float32; ``input_norm`` the ``[in]`` input norms or None).
        uses_norms: whether its scores read the input norms ``||X_j||_2`` over the calibration tokens (the
            allocations' scores, and the final pruning's unless it has ``reconstruct``).
        reconstruct: for a metric whose pruning also updates the weights it keeps (SparseGPT), ``reconstruct(
            block, sparsity, hessians, nm, params)``: prune one decoder block in place from the Hessians
            ``2 X X^T / n`` of its linear layers' inputs (per layer name, measured on the blocks before it as
            already pruned), each layer to ``sparsity[name]`` or to the ``nm`` = (N, M) pattern, with the
            metric's ``params``. Its pruned weights are then the artifact (stored by the pruning stage, read
            by every evaluation) rather than rebuilt from a mask. None: the lowest scores are zeroed, nothing
            else changes.
        score_norms: ``score_norms(sparsity_config) -> rule``: for a metric that uses norms, which per-input
            factors its scores read: ``input_norms`` (Wanda's ``||X_j||_2`` of the dense model) or
            ``obs_norms`` (SparseGPT's own saliency, :func:`lorp.sparse.sparsegpt.obs_input_scales`).
        params: ``params(sparsity_config) -> dict``: the ``sparsity:`` settings its pruning depends on.
        check: ``check(sparsity_config, nm_patterns) -> [error, ...]``: its settings checked before any job
            runs (``nm_patterns`` the config's N:M patterns as (N, M)), each error naming the key and the fix.
        linestyle: its line style in every figure (the colour tells the allocation).
        summary: one line for documentation.
    """

    name: str
    score: Callable[[Any, Any], Any]
    uses_norms: bool = False
    reconstruct: Callable[..., Any] | None = None
    score_norms: Callable[[Mapping[str, Any]], str] = lambda sparsity: "input_norms"
    params: Callable[[Mapping[str, Any]], dict[str, Any]] = lambda sparsity: {}
    check: Callable[[Mapping[str, Any], list[tuple[int, int]]], list[str]] = lambda sparsity, nm: []
    linestyle: str = "-"
    summary: str = ""

    @property
    def updates_weights(self) -> bool:
        """Whether its pruning changes the weights it keeps (then the pruned weights are stored)."""
        return self.reconstruct is not None


@dataclass(frozen=True)
class Allocation:
    """One layer-wise sparsity allocation.

    Attributes:
        name: the name under ``sparsity.allocations`` and in artifact names.
        plan: ``plan(inputs, metric, target, params) -> SparsePlan`` (``target`` a fraction; ``params`` its
            config slice, from ``params``).
        inputs: the :data:`ALLOCATION_INPUTS` its plan reads.
        params: ``params(sparsity_config) -> dict``: the ``sparsity:`` settings its plans depend on.
        check: ``check(sparsity_config, targets) -> [error, ...]``: its settings checked against the targets
            (in percent) before any job runs, each error naming the key, the cause and the fix.
        color: its colour in every figure.
        summary: one line for documentation.
    """

    name: str
    plan: Callable[[AllocationInputs, str, float, Mapping[str, Any]], Any]
    inputs: tuple[str, ...] = ("shapes",)
    params: Callable[[Mapping[str, Any]], dict[str, Any]] = lambda sparsity: {}
    check: Callable[[Mapping[str, Any], list[int]], list[str]] = lambda sparsity, targets: []
    color: str | None = None
    summary: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.inputs) - set(ALLOCATION_INPUTS)
        if unknown:
            raise ValueError(f"allocation {self.name!r}: unknown inputs {sorted(unknown)}; choose from "
                             f"{list(ALLOCATION_INPUTS)}")


METRICS: Registry[Metric] = Registry("metric")
"""Every metric by name, in declaration order."""

ALLOCATIONS: Registry[Allocation] = Registry("allocation")
"""Every allocation by name, in declaration order."""


def _check_name(kind: str, name: str) -> None:
    if "-" in name:
        raise ValueError(f"{kind} {name!r}: a name cannot hold '-' (it separates metric and allocation)")


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` (a name may be declared once)."""
    _check_name("metric", metric.name)
    return METRICS.add(metric)


def register_allocation(allocation: Allocation) -> Allocation:
    """Add ``allocation`` to :data:`ALLOCATIONS` (a name may be declared once)."""
    _check_name("allocation", allocation.name)
    return ALLOCATIONS.add(allocation)


def method_name(metric: str, allocation: str) -> str:
    """The method name of a sparse configuration, as evaluations and tables show it: ``wanda-mrp``."""
    return f"{metric}-{allocation}"


def nm_allocation(pattern: str) -> tuple[str, int, int]:
    """An N:M pattern of the config (``"2:4"``: at most N of every M consecutive inputs kept) as its
    allocation name (``2of4``) and N and M."""
    n, m = (int(x) for x in str(pattern).split(":"))
    return f"{n}of{m}", n, m


def parse_nm(allocation: str) -> tuple[int, int] | None:
    """(N, M) of an N:M allocation name (``2of4``), else None."""
    match = re.fullmatch(r"(\d+)of(\d+)", allocation)
    return (int(match[1]), int(match[2])) if match else None
