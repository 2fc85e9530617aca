"""The names of the sparse family, without importing torch (the workflow's rules read them at parse time).

A sparse method is ``<metric>-<allocation>`` (``wanda-mrp``; an N:M pattern ``2:4`` is the allocation
``2of4``) and its budget is its target sparsity in percent.
"""

from __future__ import annotations

import re

METRICS = ("wanda", "magnitude")
ALLOCATIONS = ("uniform", "owl", "mrp")


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


def parse_method(name: str) -> tuple[str, str] | None:
    """``(metric, allocation)`` of a sparse method name, or None for any other name (a depth method)."""
    metric, _, allocation = str(name).partition("-")
    if metric in METRICS and (allocation in ALLOCATIONS or parse_nm(allocation)):
        return metric, allocation
    return None
