"""The similarity statistics, each declared once (:class:`Statistic`): the config schema's enums, the
similarity stage's params and the computation (:func:`lorp.depth.similarity.similarity_from_arrays`)
consult them."""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry


@dataclass(frozen=True)
class Statistic:
    """One similarity statistic, declared once: the config schema's enums, the similarity stage's params and
    the computation (:func:`similarity_from_arrays`) consult it.

    Attributes:
        name: the name ``similarity.statistic`` (and ``similarity.compare``, a variation's ``statistic``) takes.
        description: one line, written into ``similarity.json`` and the heatmap's title.
        rows: how each layer's rows are prepared before the mean token cosine: ``as-is``, ``centred`` (each
            layer's mean hidden state subtracted) or ``no-massive`` (the massive-activation dimensions left
            out); ignored for ``kernel="cka"``, which centres by construction.
        kernel: ``cosine`` (the mean token cosine; decomposes over calibration sequences, so a bootstrap
            needs no second pass) or ``cka`` (linear CKA over token minibatches).
        parameter: the ``similarity:`` setting it reads (an argument of :func:`similarity_from_arrays`), if any.
    """

    name: str
    description: str
    rows: str = "as-is"
    kernel: str = "cosine"
    parameter: str | None = None

    @property
    def passes(self) -> int:
        """How many times the computation reads every row (a first pass gathers the layers' moments)."""
        return 1 if self.kernel == "cosine" and self.rows == "as-is" else 2


STATISTICS: Registry[Statistic] = Registry("similarity statistic")
"""The similarity statistics by name, in declaration order."""


def register_statistic(statistic: Statistic) -> Statistic:
    """Add ``statistic`` to :data:`STATISTICS` (a name may be declared once)."""
    if statistic.rows not in ("as-is", "centred", "no-massive") or statistic.kernel not in ("cosine", "cka"):
        raise ValueError(f"statistic {statistic.name!r}: rows must be as-is, centred or no-massive and kernel "
                         f"cosine or cka")
    return STATISTICS.add(statistic)


def get_statistic(name: str) -> Statistic:
    """The registered statistic ``name``, or an error listing the statistics there are."""
    return STATISTICS.lookup(name)


register_statistic(Statistic(name="cosine", description="mean token cosine (the paper's)"))
register_statistic(Statistic(name="centred", rows="centred",
                             description="mean token cosine after subtracting each layer's mean hidden state"))
register_statistic(Statistic(name="no-massive", rows="no-massive", parameter="massive_multiple",
                             description="mean token cosine without the massive-activation dimensions"))
register_statistic(Statistic(name="cka", kernel="cka", parameter="cka_batch_tokens",
                             description="linear CKA (unbiased HSIC over token minibatches)"))
