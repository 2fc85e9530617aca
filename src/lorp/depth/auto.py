"""The validation-guided choice of a depth plan (method ``auto``).

No depth-pruning criterion wins on every model, so ``auto`` lets held-out data decide: for a budget, every
candidate plan (each configured method under each compared similarity statistic) is scored by the
perplexity of the model without its blocks on calibration windows that no stage has seen (the windows that
follow the calibration's own in the same draw; never an evaluation set), and the plan of lowest perplexity
is kept. Candidates that prune the same blocks are scored once. By construction its held-out perplexity is
no worse than the best single method's; its plan records every candidate and its score, so the choice can
be audited and the evaluation sets judge it on data it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .methods import AUTO, Plan


@dataclass(frozen=True)
class Candidate:
    """One plan ``auto`` considers: the method and statistic that made it, and its pruned blocks."""

    method: str
    statistic: str
    pruned: tuple[int, ...]


def distinct_sets(candidates: Sequence[Candidate]) -> list[tuple[int, ...]]:
    """The distinct pruned sets among ``candidates``, in the order they first appear."""
    return list(dict.fromkeys(c.pruned for c in candidates))


def choose(candidates: Sequence[Candidate], score: Callable[[tuple[int, ...]], float], budget: int,
           n_layers: int, held_out: Mapping[str, Any]) -> Plan:
    """The ``auto`` plan: the candidate of lowest ``score`` (held-out perplexity), ties to the first listed.

    Args:
        candidates: every candidate plan at ``budget``, in config order (methods, then statistics).
        score: held-out perplexity of the model without a pruned set; called once per distinct set.
        budget: the number of blocks every candidate removes.
        n_layers: the model's depth.
        held_out: what the score was measured on (recorded in the plan).

    Returns:
        A :class:`Plan` whose ``details`` list every candidate with its score and which one was chosen.
    """
    if not candidates:
        raise ValueError("auto needs at least one candidate plan (another method in methods:)")
    wrong = [c for c in candidates if len(c.pruned) != budget]
    if wrong:
        raise ValueError(f"every candidate must prune {budget} blocks; {wrong[0].method} ({wrong[0].statistic}) "
                         f"prunes {len(wrong[0].pruned)}")
    scores = {pruned: float(score(pruned)) for pruned in distinct_sets(candidates)}
    best = min(scores, key=lambda p: (scores[p], list(scores).index(p)))
    chosen = next(c for c in candidates if c.pruned == best)
    listed = [{"method": c.method, "statistic": c.statistic, "pruned": list(c.pruned),
               "held_out_ppl": scores[c.pruned], "chosen": c is chosen} for c in candidates]
    return Plan(AUTO, budget, n_layers, list(best), [], [None] * n_layers,
                "held-out perplexity of the candidate plans (details.candidates)",
                {"held_out": dict(held_out)},
                {"chosen": {"method": chosen.method, "statistic": chosen.statistic, "held_out_ppl": scores[best]},
                 "candidates": listed})
