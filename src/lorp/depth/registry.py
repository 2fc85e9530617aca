"""The depth-pruning methods' registry: each method is declared once (:func:`register`, in
:mod:`lorp.depth.methods`) with what its plan reads (:class:`PlanInputs`), its budget limit, its parameters'
schema and its colour; the rules, the config schema, the plan stage and the figures consult it. Look methods
up through :mod:`lorp.depth.methods` (``get_method``), which registers them."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..registry import Registry
from .structure import LayerStructure


@dataclass(frozen=True)
class PlanInputs:
    """The stored stage outputs a plan may read (each method declares which in :attr:`Method.inputs`).

    Attributes:
        extended: the (N+1) x (N+1) mean cosine over all captured tokens (``cosine_extended.npy``).
        last_token: the same over the last token of each sequence (``cosine_last_token.npy``).
        structure: RLS, K and the clusters of the N blocks (``rls.json``).
        model: the prepared model, loaded (``model/``), for the methods that run it.
        tokens: the calibration tokens [n_samples, seqlen] (``tokens.npy``).
        previous: the method's own plan at one block fewer (its JSON, read), for a greedy method whose plan
            at budget n extends the plan at n - 1 by one removal; None at budget 1.
        batch_size: the windows a forward pass takes, where the model runs (the speed, not the plan).
    """

    extended: np.ndarray | None = None
    last_token: np.ndarray | None = None
    structure: LayerStructure | None = None
    model: Any = None
    tokens: np.ndarray | None = None
    previous: Mapping[str, Any] | None = None
    batch_size: int = 1

    def require(self, name: str, method: str) -> Any:
        value = getattr(self, name)
        if value is None or (isinstance(value, np.ndarray) and np.isnan(value).any()):
            raise ValueError(f"method {method!r} needs the {name.replace('_', '-')} input "
                             f"({INPUT_FILES[name]}), which was not given or is incomplete")
        return value


INPUT_FILES = {"extended": "cosine_extended.npy", "last_token": "cosine_last_token.npy", "structure": "rls.json",
               "model": "the prepared model directory", "tokens": "the calibration tokens.npy",
               "previous": "the method's plan at one block fewer"}
"""The stage output behind each :class:`PlanInputs` field that a method may declare (``plan_input_files`` in
``rules/common.smk`` maps each to its rule's output)."""

SIMILARITY_INPUTS = ("extended", "last_token")
"""What a plan of a similarity-based method reads: both stored similarity matrices."""


@dataclass(frozen=True)
class Method:
    """One depth-pruning method, declared once; rules, config check, plans and figures consult it.

    Attributes:
        name: the key under ``methods:`` in the config and in artifact names (``{method}-{budget}``).
        plan: ``plan(inputs, budget, params) -> Plan``, a pure function of the stored stage outputs.
        max_budget: ``max_budget(n_layers, params)``, the most blocks the method may remove.
        parameters: each parameter's JSON-schema fragment (``type``, ``default``, ``description``, bounds);
            the config schema is built from these, so defaults live here and nowhere else.
        inputs: the :class:`PlanInputs` fields its plan rule passes (``plan_input_files`` in ``rules/common.smk``
            maps them to files). A method that declares ``model`` runs it (:attr:`runs_model`): its plans are
            made by the ``model_plan`` rule, with the GPU resources, and the model loaded. A method that
            declares ``previous`` is greedy: its plan at budget n reads its own plan at n - 1 and adds one
            removal, so the plans at budgets 2, 4, 6 and 8 cost the 8 steps of the largest, not 20, and a
            budget added to the config costs only its own steps.
        plan_parameters: whether the parameters belong to the plan's config slice; LoRP's shape the
            clustering (the structure stage, whose output the plan reads) instead.
        color: the method's colour in every figure.
        summary: one line for documentation and the config schema.
    """

    name: str
    plan: Callable[[PlanInputs, int, Mapping[str, Any]], Any]  # returns a lorp.depth.methods.Plan
    max_budget: Callable[[int, Mapping[str, Any]], int]
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    inputs: tuple[str, ...] = SIMILARITY_INPUTS
    plan_parameters: bool = True
    color: str | None = None
    summary: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.inputs) - set(INPUT_FILES)
        if unknown:
            raise ValueError(f"method {self.name!r}: unknown inputs {sorted(unknown)}; choose from {list(INPUT_FILES)}")
        missing = [p for p, spec in self.parameters.items() if "default" not in spec]
        if missing:
            raise ValueError(f"method {self.name!r}: parameters {missing} need a default")

    @property
    def runs_model(self) -> bool:
        """Whether its plans run the model (it declares the ``model`` input) rather than read stored files."""
        return "model" in self.inputs

    def defaults(self) -> dict[str, Any]:
        """The parameters' defaults, as the schema fills them in."""
        return {name: copy.deepcopy(spec["default"]) for name, spec in self.parameters.items()}

    def schema(self) -> dict[str, Any]:
        """The JSON schema of ``methods.<name>`` in the config."""
        return {"type": "object", "additionalProperties": False, "description": self.summary,
                "properties": copy.deepcopy(dict(self.parameters))}


METHODS: Registry[Method] = Registry("method")
"""Every method by name, in declaration order (the order of the methods table in docs/methods.md)."""


def register(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (a name may be declared once)."""
    return METHODS.add(method)


def get_method(name: str) -> Method:
    """The declared method ``name``, or an error listing the methods there are."""
    return METHODS.lookup(name)
