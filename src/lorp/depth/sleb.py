"""SLEB (Song et al., ICML 2024): remove, one block at a time, the block whose removal raises the
calibration negative log-likelihood least.

Unlike the similarity methods this runs the model: at every step each remaining candidate block is removed
in turn and the calibration windows' NLL measured, the best candidate is removed for good, and the next step
starts from the model without it. Blocks 0 and N-1 are never candidates (the reference implementation's
``early_barrier`` and ``latter_barrier`` of 1). Candidates are compared by their summed NLL over the same
windows; an exact tie goes to the shallower block, so plans are deterministic.

Removing a block is skipping it, so the blocks before a candidate see the same input whichever later block
is removed: for each batch of windows, one forward pass of the current model stores the hidden state
entering each of its blocks, and each candidate's model then runs only from the block after it, on that
stored input (a copy of the current model sharing its tensors, its earlier blocks cut off, whose own
forward builds the masks and positions). A step costs one forward pass of the current model plus, per
candidate, the blocks after it and the LM head: about half a forward pass per candidate on average.

Each step depends only on the blocks removed before it, so the plan at budget n is the plan at n - 1 and
one more step: the workflow's plan at n reads the plan at n - 1 (the registration's ``previous`` input) and
makes that one step (:func:`search`'s ``previous``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..evaluation.perplexity import window_nll
from ..models import get_decoder_layers, shared_copy
from .prune import prune_layers


@dataclass(frozen=True)
class Step:
    """One removal: the block removed (0-based, in the original model), the mean NLL per scored token of the
    model without it, and every candidate's mean NLL at this step (block -> NLL)."""

    block: int
    nll: float
    candidates: dict[int, float]

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.block, "nll": self.nll, "ppl": math.exp(self.nll),
                "candidates": {str(b): nll for b, nll in sorted(self.candidates.items())}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Step":
        """The step a plan's ``steps`` entry records (:meth:`to_dict`; JSON keeps its floats exactly)."""
        return cls(int(data["block"]), float(data["nll"]),
                   {int(b): float(nll) for b, nll in data["candidates"].items()})


def candidate_blocks(n_layers: int, removed: Sequence[int]) -> list[int]:
    """The blocks a step may remove: every block but the first, the last and those already removed."""
    gone = set(removed)
    return [i for i in range(1, n_layers - 1) if i not in gone]


def _replace_input(args: tuple, kwargs: dict, hidden: torch.Tensor) -> tuple[tuple, dict]:
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


@torch.inference_mode()
def removal_nlls(model: torch.nn.Module, windows: np.ndarray, removed: Sequence[int], candidates: Sequence[int],
                 batch_size: int, progress: Callable[[int], None] | None = None) -> dict[int, float]:
    """Summed next-token NLL over ``windows`` [n, seqlen] of ``model`` without the blocks ``removed`` and
    each candidate in turn (block -> NLL, float64 sums over windows of at most ``batch_size``); ``progress``
    is called with 1 per candidate and batch. ``model`` is left as it was: the hooks are on copies of it."""
    n_layers = len(get_decoder_layers(model))
    current = prune_layers(shared_copy(model), removed)
    kept = [i for i in range(n_layers) if i not in set(removed)]
    position = {block: p for p, block in enumerate(kept)}
    if any(c not in position for c in candidates):
        raise ValueError(f"candidates {sorted(set(candidates) - set(position))} are not blocks of the current model")
    entering: list[torch.Tensor] = []  # the hidden state entering each block of the current model, this batch
    tails: dict[int, torch.nn.Module] = {}  # each candidate's model from the block after it on (copied from the
    for c in candidates:                    # current model before it gets its hooks, so that they get none)
        tail = prune_layers(shared_copy(current), range(position[c] + 1))
        get_decoder_layers(tail)[0].register_forward_pre_hook(
            lambda _m, args, kwargs, p=position[c]: _replace_input(args, kwargs, entering[p]), with_kwargs=True)
        tails[c] = tail
    for block in get_decoder_layers(current):
        block.register_forward_pre_hook(
            lambda _m, args, kwargs: entering.append(args[0] if args else kwargs["hidden_states"]), with_kwargs=True)
    device = next(model.parameters()).device
    totals = {c: 0.0 for c in candidates}
    for start in range(0, windows.shape[0], batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(windows[start:start + batch_size], dtype=np.int64)).to(device)
        entering.clear()
        current.model(input_ids=batch, use_cache=False)
        if len(entering) != len(kept):
            raise RuntimeError(f"captured {len(entering)} block inputs for the {len(kept)} blocks of the current model")
        for c in candidates:
            totals[c] += float(window_nll(tails[c], batch).sum())
            if progress is not None:
                progress(1)
    entering.clear()
    return totals


def select_blocks(model: torch.nn.Module, windows: np.ndarray, budget: int, batch_size: int,
                  progress: Callable[[int], None] | None = None,
                  report: Callable[[int, Step], None] | None = None, start: Sequence[Step] = ()) -> list[Step]:
    """SLEB's ``budget`` removals in order (:class:`Step`): at each step the candidate
    (:func:`candidate_blocks`) whose removal gives the lowest calibration NLL, ties to the shallower block;
    ``report(step_number, step)`` after each. ``start``: the first steps, already made on the same model and
    windows (a plan at a smaller budget), which the search continues: each step depends only on the blocks
    removed before it, so the result is the search from scratch, step for step."""
    n_layers = len(get_decoder_layers(model))
    if not 1 <= budget <= n_layers - 2:
        raise ValueError(f"SLEB keeps the first and last blocks: a budget of {budget} on a {n_layers}-block "
                         f"model must be between 1 and {n_layers - 2}")
    n_tokens = windows.shape[0] * (windows.shape[1] - 1)
    if n_tokens < 1:
        raise ValueError(f"SLEB needs calibration windows of at least 2 tokens, got shape {windows.shape}")
    if len(start) > budget:
        raise ValueError(f"{len(start)} steps already made exceed the budget of {budget}")
    steps: list[Step] = list(start)
    removed: list[int] = [s.block for s in steps]
    if removed != list(dict.fromkeys(removed)) or set(removed) - set(candidate_blocks(n_layers, [])):
        raise ValueError(f"the steps already made remove {removed}: not distinct blocks between the first "
                         f"and the last of this {n_layers}-block model")
    for number in range(len(steps) + 1, budget + 1):
        candidates = candidate_blocks(n_layers, removed)
        sums = removal_nlls(model, windows, removed, candidates, batch_size, progress)
        best = min(candidates, key=lambda c: (sums[c], c))
        step = Step(best, sums[best] / n_tokens, {c: s / n_tokens for c, s in sums.items()})
        steps.append(step)
        removed.append(best)
        if report is not None:
            report(number, step)
    return steps


def removals(n_layers: int, budget: int, done: int = 0) -> int:
    """Candidate evaluations of a SLEB plan at ``budget`` after its first ``done`` steps: N-2 at the first
    step, one fewer at each next."""
    return sum(n_layers - 2 - k for k in range(done, budget))


def block_count(model: torch.nn.Module) -> int:
    """The number of decoder blocks of ``model``."""
    return len(get_decoder_layers(model))


@dataclass(frozen=True)
class Search:
    """A SLEB search: its removals in order and the windows they were scored on."""

    steps: list[Step]
    windows: dict[str, Any]

    @property
    def removal_order(self) -> list[int]:
        return [s.block for s in self.steps]

    def first_step_scores(self, n_layers: int) -> list[float | None]:
        """Each block's mean NLL with it alone removed (the first step; None for the first and last blocks)."""
        return [self.steps[0].candidates.get(i) for i in range(n_layers)]

    def details(self) -> dict[str, Any]:
        """What a plan records beside its blocks: the removal order, each step, the windows scored."""
        return {"removal_order": self.removal_order, "steps": [s.to_dict() for s in self.steps],
                "windows": self.windows}


def search(model: torch.nn.Module, tokens: np.ndarray, budget: int, n_windows: int | None,
           batch_size: int, previous: Mapping[str, Any] | None = None) -> Search:
    """SLEB's ``budget`` removals from the prepared model and the calibration tokens [n_samples, seqlen],
    scored on their first ``n_windows`` windows (all of them when None or more than there are), with a
    progress bar over the candidates' forward passes and one line per step.

    ``previous``: a SLEB plan (its JSON, read) of the same model at a smaller budget, on the same windows;
    its steps are taken as made and only the remaining ones run (:func:`select_blocks`).
    """
    from tqdm.auto import tqdm

    n_layers = block_count(model)
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"calibration tokens must be [n_samples, seqlen], got shape {tokens.shape}")
    used = tokens.shape[0] if n_windows is None else min(int(n_windows), tokens.shape[0])
    windows = tokens[:used]
    seqlen = int(tokens.shape[1])
    scored = {"indices": list(range(used)), "n_windows": used, "seqlen": seqlen, "scored_tokens": used * (seqlen - 1)}
    start = [] if previous is None else _made_steps(previous, n_layers, budget, scored)

    def report(number: int, step: Step) -> None:
        print(f"step {number}: block {step.block} removed, calibration NLL {step.nll:.4f} (ppl {math.exp(step.nll):.3f})")

    for number, step in enumerate(start, 1):
        print(f"step {number} (from the plan at budget {len(start)}): block {step.block}, "
              f"calibration NLL {step.nll:.4f}")
    with tqdm(total=removals(n_layers, budget, len(start)) * math.ceil(used / batch_size), desc=f"sleb-{budget}",
              unit="pass") as bar:
        steps = select_blocks(model, windows, budget, batch_size, progress=bar.update, report=report, start=start)
    return Search(steps, scored)


def _made_steps(previous: Mapping[str, Any], n_layers: int, budget: int, windows: Mapping[str, Any]) -> list[Step]:
    """The steps of ``previous``, a SLEB plan at a smaller budget, after checking that it is one of this
    model on these windows (the workflow guarantees it; a hand-edited or stale file is refused)."""
    steps = [Step.from_dict(s) for s in previous.get("steps", [])]
    problems = []
    if previous.get("n_layers") != n_layers:
        problems.append(f"it is of a {previous.get('n_layers')}-block model, this one has {n_layers}")
    if previous.get("windows") != dict(windows):
        problems.append(f"it scored windows {previous.get('windows')}, this search scores {dict(windows)}")
    if not len(steps) < budget or previous.get("removal_order") != [s.block for s in steps]:
        problems.append(f"its {len(steps)} steps are not a SLEB plan below budget {budget}")
    if problems:
        raise ValueError("the SLEB plan at the smaller budget cannot be continued: " + "; ".join(problems)
                         + ". Delete it and its larger budgets' plans so that they are made again.")
    return steps
