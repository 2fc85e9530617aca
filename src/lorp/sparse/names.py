"""The names of the sparse family, from its registries, without importing torch (the workflow's rules read them at
parse time).

A sparse method is ``<metric>-<allocation>`` (``wanda-mrp``; an N:M pattern ``2:4`` is the allocation
``2of4``) and its budget is its target sparsity in percent.
"""

from __future__ import annotations

from .allocation_plans import ALLOCATIONS as _ALLOCATIONS
from .metrics import METRICS as _METRICS
from .registry import method_name, nm_allocation, parse_nm  # noqa: F401 (the names' helpers, re-exported)

METRICS = tuple(_METRICS)
"""The registered metrics' names (:mod:`lorp.sparse.metrics`)."""
ALLOCATIONS = tuple(_ALLOCATIONS)
"""The registered allocations' names (:mod:`lorp.sparse.allocation_plans`)."""


def parse_method(name: str) -> tuple[str, str] | None:
    """``(metric, allocation)`` of a sparse method name, or None for any other name (a depth method)."""
    metric, _, allocation = str(name).partition("-")
    if metric in _METRICS and (allocation in _ALLOCATIONS or parse_nm(allocation)):
        return metric, allocation
    return None
