"""Perplexity with the paper protocol, without materialising more logits than needed.

Texts are joined (a blank line by default) and tokenised once; the stream is cut into
non-overlapping windows of ``seqlen`` tokens (the remainder is dropped); perplexity is the
exponential of the mean next-token negative log-likelihood over all windows. The decoder stack
runs on a batch of windows, then the LM head is applied a slice of positions at a time, so a
262k-token vocabulary never needs a [batch, seqlen, vocab] logits tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PerplexityResult:
    ppl: float
    nll: float
    n_windows: int
    n_tokens: int
    seqlen: int

    def as_row(self) -> dict[str, float | int]:
        return {"ppl": self.ppl, "nll": self.nll, "n_windows": self.n_windows,
                "n_tokens": self.n_tokens, "seqlen": self.seqlen}


def make_windows(stream: np.ndarray, seqlen: int, max_windows: int | None = None) -> np.ndarray:
    """Non-overlapping windows [n, seqlen] from a token stream (int64)."""
    n = len(stream) // seqlen
    if max_windows is not None:
        n = min(n, int(max_windows))
    if n == 0:
        raise ValueError(f"the evaluation text has {len(stream)} tokens, fewer than one window of {seqlen}")
    return np.asarray(stream[: n * seqlen], dtype=np.int64).reshape(n, seqlen)


def _logits(model: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    logits = model.lm_head(hidden).float()
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


LOGITS_BUDGET = 1 << 26
"""Largest number of logits (batch x positions x vocab) materialised at once: 256 MiB in float32."""


@torch.inference_mode()
def window_nll(model: torch.nn.Module, windows: torch.Tensor, logits_chunk: int | None = None) -> torch.Tensor:
    """Summed next-token NLL per window (float64 [batch]) for a batch of token windows.

    The LM head runs on ``logits_chunk`` positions at a time (by default as many as fit in
    :data:`LOGITS_BUDGET` for this batch and vocabulary: 64 positions of a batch of 4 with a
    262k vocabulary), so a large vocabulary never materialises full-window logits.
    """
    hidden = model.model(input_ids=windows, use_cache=False).last_hidden_state
    total = torch.zeros(windows.shape[0], dtype=torch.float64, device=windows.device)
    length = windows.shape[1] - 1
    if logits_chunk is None:
        vocab = int(model.config.get_text_config().vocab_size)
        logits_chunk = max(1, LOGITS_BUDGET // (windows.shape[0] * vocab))
    for start in range(0, length, logits_chunk):
        stop = min(length, start + logits_chunk)
        logits = _logits(model, hidden[:, start:stop])
        targets = windows[:, start + 1: stop + 1]
        nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        total += nll.double().sum(dim=1)
    return total


def perplexity(
    model: torch.nn.Module,
    windows: np.ndarray,
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
) -> PerplexityResult:
    """Perplexity of ``model`` over token ``windows`` [n, seqlen]."""
    device = next(model.parameters()).device
    n, seqlen = windows.shape
    total = 0.0
    for start in range(0, n, batch_size):
        batch = torch.from_numpy(windows[start:start + batch_size]).to(device)
        total += float(window_nll(model, batch).sum())
        if progress is not None:
            progress(batch.shape[0])
    n_tokens = n * (seqlen - 1)
    nll = total / n_tokens
    return PerplexityResult(ppl=math.exp(nll), nll=nll, n_windows=n, n_tokens=n_tokens, seqlen=seqlen)
