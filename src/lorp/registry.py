"""A registry of named entries: each kind of method (depth methods, similarity statistics, sparse metrics and
allocations) is declared once, by a registration, and looked up by name everywhere else."""

from __future__ import annotations

import copy
from typing import Any, Generic, Mapping, Protocol, TypeVar


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


class Registry(dict, Generic[T]):
    """Entries by name, in declaration order; ``kind`` names them in errors (``unknown method 'x'; ...``)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def add(self, entry: T) -> T:
        """Add ``entry`` under its name (a name may be declared once)."""
        if entry.name in self:
            raise ValueError(f"{self.kind} {entry.name!r} is already registered")
        self[entry.name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry ``name``, or an error listing the names there are."""
        try:
            return self[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self)}") from None


def parameter_defaults(parameters: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The defaults of a registration's parameters (JSON-schema fragments with a ``default`` each)."""
    return {name: copy.deepcopy(spec["default"]) for name, spec in parameters.items()}


def parameters_schema(parameters: Mapping[str, Mapping[str, Any]], summary: str) -> dict[str, Any]:
    """The JSON schema of a registration's entry in the config: its parameters, nothing else."""
    return {"type": "object", "additionalProperties": False, "description": summary,
            "properties": copy.deepcopy(dict(parameters))}
