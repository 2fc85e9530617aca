"""Inference efficiency of a (dense or pruned) model: size, memory, prefill throughput, decode latency.

Measurements follow the usual protocol: fixed random token ids (seeded), ``warmup`` untimed runs,
then ``repeats`` timed runs whose median is reported (with the min and max, so noise is visible).
On CUDA, kernels are synchronised before each clock read and the peak memory is
``torch.cuda.max_memory_allocated``; on the CPU it is the process's peak resident set size, which
includes the Python interpreter and libraries, and is stated as such in the ``memory_measure`` column.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from ..models import count_parameters

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


@dataclass(frozen=True)
class EfficiencySettings:
    """What is measured: ``batch_size`` sequences of ``seqlen`` prompt tokens, then ``decode_tokens``
    greedy steps with the KV cache; ``warmup`` untimed and ``repeats`` timed runs of each."""

    batch_size: int = 1
    seqlen: int = 128
    decode_tokens: int = 32
    warmup: int = 2
    repeats: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "seqlen", "decode_tokens", "repeats"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"efficiency.{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"efficiency.warmup must be >= 0, got {self.warmup}")


@dataclass(frozen=True)
class EfficiencyResult:
    n_params: int
    n_nonzero: int
    prefill_ms: float
    prefill_ms_min: float
    prefill_ms_max: float
    prefill_tokens_per_s: float
    decode_ms_per_token: float
    decode_ms_per_token_min: float
    decode_ms_per_token_max: float
    peak_memory_mib: float
    memory_measure: str
    device: str
    dtype: str

    def as_row(self) -> dict[str, float | int | str]:
        return asdict(self)


def weights_bytes(directory: str | Path) -> int | None:
    """Total size of the weight files in a model directory (None when it is not a local directory)."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux and in bytes on macOS
    return (rss / 2**20 if sys.platform == "darwin" else rss / 2**10), "process_peak_rss"


def _timed(fn: Callable[[], float | None], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds per call of ``fn`` (or the seconds it returns itself), after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        own = fn()
        _sync(device)
        times.append(own if own is not None else time.perf_counter() - start)
    return times


@torch.inference_mode()
def measure(model: torch.nn.Module, settings: EfficiencySettings,
            progress: Callable[[int], None] | None = None) -> EfficiencyResult:
    """Prefill throughput and per-token decode latency of ``model`` on its own device.

    Prefill: one forward pass over ``batch_size x seqlen`` tokens (no cache kept). Decode: after a
    prefill (not timed), ``decode_tokens`` single-token steps feeding back the argmax, timed
    together and divided by ``decode_tokens``.
    """
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    vocab = int(model.config.get_text_config().vocab_size)
    gen = torch.Generator().manual_seed(settings.seed)
    ids = torch.randint(0, vocab, (settings.batch_size, settings.seqlen), generator=gen).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def prefill() -> None:
        model(input_ids=ids, use_cache=False, logits_to_keep=1)
        if progress:
            progress(1)

    def decode() -> float:
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        _sync(device)
        start = time.perf_counter()
        for _ in range(settings.decode_tokens):
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        _sync(device)
        if progress:
            progress(1)
        return (time.perf_counter() - start) / settings.decode_tokens

    pre = _timed(prefill, device, settings.warmup, settings.repeats)
    dec = _timed(decode, device, settings.warmup, settings.repeats)
    peak, measure_kind = _peak_memory(device)
    pre_ms = statistics.median(pre) * 1e3
    return EfficiencyResult(
        n_params=count_parameters(model),
        n_nonzero=count_parameters(model, nonzero=True),
        prefill_ms=pre_ms,
        prefill_ms_min=min(pre) * 1e3,
        prefill_ms_max=max(pre) * 1e3,
        prefill_tokens_per_s=settings.batch_size * settings.seqlen / (pre_ms / 1e3),
        decode_ms_per_token=statistics.median(dec) * 1e3,
        decode_ms_per_token_min=min(dec) * 1e3,
        decode_ms_per_token_max=max(dec) * 1e3,
        peak_memory_mib=peak,
        memory_measure=measure_kind,
        device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        dtype=str(dtype).removeprefix("torch."),
    )
