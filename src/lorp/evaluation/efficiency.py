"""Inference efficiency of pruned models against their dense model: size, memory, prefill throughput,
decode latency, and speed-ups measured side by side.

Measurements follow the usual protocol: fixed random token ids (seeded), ``warmup`` untimed runs,
then ``repeats`` timed rounds whose median is reported (with the min and max, so noise is visible).
The dense and the pruned models run alternately in the same process (:func:`interleaved`, two pruned
models with the dense one between them: :func:`trios`), so a speed-up is the median of ratios of
adjacent runs from one run, with their range as its spread
(:func:`speedups`), not a ratio of two numbers taken at different times.

On CUDA, kernels are synchronised before each clock read, and the memory of a model is its parameters
plus the peak its runs allocate beyond what was allocated before them (``torch.cuda.max_memory_allocated``).
On the CPU, the two models share one process and its resident set size cannot be told apart, so the
memory is the parameters' only; the ``memory_measure`` column says which.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Collection, Hashable, Mapping, Sequence, TypeVar

import torch

from ..models import count_parameters, get_decoder_layers, parameter_bytes


@dataclass(frozen=True)
class EfficiencySettings:
    """What is measured: a prefill of ``batch_size`` sequences of ``seqlen`` prompt tokens (filling the KV
    cache), then ``decode_tokens`` greedy steps from it; ``warmup`` untimed and ``repeats`` timed rounds."""

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
    weights_bytes: int
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _memory_reader(device: torch.device) -> tuple[Callable[[], None], Callable[[], float], str]:
    """(start, read, what): on CUDA, the peak memory a call allocates beyond what was allocated before it;
    on the CPU nothing can be told apart per model in one process (0)."""
    if device.type != "cuda":
        return (lambda: None), (lambda: 0.0), "parameters_only"
    base = [0]

    def start() -> None:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base[0] = torch.cuda.memory_allocated(device)

    def read() -> float:
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - base[0])

    return start, read, "cuda_parameters_plus_peak_activations"


@dataclass
class Timings:
    """One model's timed runs, in seconds, in the order they ran (``prefill[i]`` and ``decode[i]`` of
    repeat ``i``), and the most memory one of its runs allocated beyond its weights (bytes; CUDA only)."""

    prefill: list[float]
    decode: list[float]
    activation_bytes: float = 0.0


class _Runner:
    """One timed round of one model on fixed token ids: a prefill that fills the KV cache, then greedy
    decoding from that cache."""

    def __init__(self, model: torch.nn.Module, settings: EfficiencySettings):
        self.model, self.settings = model, settings
        self.device = next(model.parameters()).device
        vocab = int(model.config.get_text_config().vocab_size)
        gen = torch.Generator().manual_seed(settings.seed)
        self.ids = torch.randint(0, vocab, (settings.batch_size, settings.seqlen), generator=gen).to(self.device)

    def round(self) -> tuple[float, float]:
        """Seconds of the prefill, and seconds per token of ``decode_tokens`` greedy steps after it."""
        _sync(self.device)
        start = time.perf_counter()
        out = self.model(input_ids=self.ids, use_cache=True, logits_to_keep=1)
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        _sync(self.device)
        middle = time.perf_counter()
        for _ in range(self.settings.decode_tokens):
            out = self.model(input_ids=token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        _sync(self.device)
        return middle - start, (time.perf_counter() - middle) / self.settings.decode_tokens


@torch.inference_mode()
def interleaved(models: Mapping[str, torch.nn.Module], settings: EfficiencySettings,
                progress: Callable[[int], None] | None = None, warm: Collection[str] = ()) -> dict[str, Timings]:
    """Time several models (a dense one and pruned ones) alternately in one run.

    Every model gets ``warmup`` untimed rounds (except those named in ``warm``, already run in this
    process), then each of the ``repeats`` rounds times every model's prefill and decode once, in the
    order of ``models`` and reversed every other round, so that a drift of the machine (clock, cache,
    another process) falls on all of them alike and the ratio of two models' times in one round is a
    paired measurement. With the dense model in the middle of three, each pruned model runs next to it
    in every round (:func:`trios`). ``progress`` is called once per model and round.
    """
    runners = {name: _Runner(m, settings) for name, m in models.items()}
    devices = {r.device for r in runners.values()}
    start_mem, read_mem, _ = _memory_reader(next(iter(devices)))
    out = {name: Timings([], []) for name in runners}
    for name, runner in runners.items():
        for _ in range(0 if name in warm else settings.warmup):
            runner.round()
    names = list(runners)
    for r in range(settings.repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start_mem()
            prefill, decode = runners[name].round()
            out[name].prefill.append(prefill)
            out[name].decode.append(decode)
            out[name].activation_bytes = max(out[name].activation_bytes, read_mem())
            if progress:
                progress(1)
    return out


def result(model: torch.nn.Module, timings: Timings, settings: EfficiencySettings,
           stored_dtype: torch.dtype | None = None) -> EfficiencyResult:
    """A model's row from its timings: medians with min and max, its size and its memory (its parameters'
    bytes, plus on CUDA the peak its runs allocated beyond them). The patches of a patched model
    (:func:`lorp.recovery.attach.patch_tensors`, float32, outside its state dict) count as parameters of
    their own dtype."""
    from ..recovery.attach import patch_tensors

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    _, _, measure_kind = _memory_reader(device)
    pre, dec = timings.prefill, timings.decode
    pre_ms = statistics.median(pre) * 1e3
    patches = patch_tensors(model)
    patch_bytes = sum(t.numel() * t.element_size() for t in patches)
    return EfficiencyResult(
        n_params=count_parameters(model) + sum(t.numel() for t in patches),
        n_nonzero=count_parameters(model, nonzero=True) + sum(int(torch.count_nonzero(t)) for t in patches),
        weights_bytes=parameter_bytes(model, stored_dtype) + patch_bytes,
        prefill_ms=pre_ms,
        prefill_ms_min=min(pre) * 1e3,
        prefill_ms_max=max(pre) * 1e3,
        prefill_tokens_per_s=settings.batch_size * settings.seqlen / (pre_ms / 1e3),
        decode_ms_per_token=statistics.median(dec) * 1e3,
        decode_ms_per_token_min=min(dec) * 1e3,
        decode_ms_per_token_max=max(dec) * 1e3,
        peak_memory_mib=(parameter_bytes(model) + patch_bytes + timings.activation_bytes) / 2**20,
        memory_measure=measure_kind,
        device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        dtype=str(dtype).removeprefix("torch."),
    )


K = TypeVar("K", bound=Hashable)


def trios(keys: Sequence[K]) -> list[list[K]]:
    """The pruned models to time, two by two, each pair with the dense model between them (``[a, b]`` is
    timed as a, dense, b, then b, dense, a): every pruned run is next to a dense run in every round, as in
    pairs, with a third fewer runs; an odd one out is timed with the dense model alone. Duplicate keys
    (the same pruned model reached by several plans) are timed once."""
    unique = list(dict.fromkeys(keys))
    return [unique[i:i + 2] for i in range(0, len(unique), 2)]


def speedups(dense: Timings, pruned: Timings) -> dict[str, float]:
    """The pruned model's speed-ups over the dense model from their paired rounds (dense time over pruned
    time in each round): the median and, as its spread, the smallest and largest round."""
    out = {}
    for kind in ("prefill", "decode"):
        ratios = [d / p for d, p in zip(getattr(dense, kind), getattr(pruned, kind), strict=True)]
        out.update({f"{kind}_speedup": statistics.median(ratios), f"{kind}_speedup_min": min(ratios),
                    f"{kind}_speedup_max": max(ratios)})
    return out


def timing_groups(keys: Sequence[K]) -> list[list[K]]:
    """The groups the distinct pruned models of ``keys`` (:func:`lorp.evaluation.reuse.pruned_model_key`:
    ``("depth", ...)``, ``("sparse", ...)`` or ``("recovered", path, fused)``, duplicates timed once) are
    timed in beside the dense model. Models that share the dense model's tensors (depth-pruned ones, and
    recovered ones whose recovery only adds to them: patches) are timed two per group (:func:`trios`); one
    that owns a copy of its linear layers (a sparse one, or a recovered one with updated weights: LoRA
    merged) is timed beside the dense one alone (a 14B model's three copies would not fit a GPU)."""
    def shares(key: K) -> bool:
        return key[0] == "depth" or (key[0] == "recovered" and not key[2])

    return trios([k for k in keys if shares(k)]) + [[k] for k in dict.fromkeys(keys) if not shares(k)]


def timed_runs(groups: Sequence[Sequence[Any]], settings: EfficiencySettings) -> int:
    """How many timed runs :func:`time_against_dense` makes (its ``progress`` calls): every model of every
    group and the dense one, each round; the dense one alone where there is no group."""
    return (sum(len(g) + 1 for g in groups) if groups else 1) * settings.repeats


def time_against_dense(dense: torch.nn.Module, groups: Sequence[Sequence[K]], build: Callable[[K], torch.nn.Module],
                       settings: EfficiencySettings, stored_dtype: torch.dtype | None = None,
                       progress: Callable[[int], None] | None = None) -> tuple[Timings, dict[K, dict[str, Any]]]:
    """Time the pruned models of ``groups`` (:func:`timing_groups`) beside ``dense``, group after group:
    a group's models are built by ``build`` (from their key), timed alternately with the dense one
    between them (:func:`interleaved`), then dropped before the next group is built.

    Returns the dense model's timings pooled over every group (it is warmed up once; where there is no
    group, it is timed alone) and each pruned model's row: its block count, the settings, its
    :func:`result` (``stored_dtype`` as there) and its :func:`speedups` over the dense runs of its group.
    """
    pooled = Timings([], [])
    measured: dict[K, dict[str, Any]] = {}
    warm: set[str] = set()
    for group in groups or [[]]:
        pruned = {str(i): build(key) for i, key in enumerate(group)}
        order = dict(list(pruned.items())[:1] + [("dense", dense)] + list(pruned.items())[1:])
        timings = interleaved(order, settings, progress=progress, warm=warm)
        warm.add("dense")
        pooled.prefill += timings["dense"].prefill
        pooled.decode += timings["dense"].decode
        pooled.activation_bytes = max(pooled.activation_bytes, timings["dense"].activation_bytes)
        for i, key in enumerate(group):
            m = pruned[str(i)]
            measured[key] = {"n_layers": len(get_decoder_layers(m)), **settings.__dict__,
                             **result(m, timings[str(i)], settings, stored_dtype).as_row(),
                             **speedups(timings["dense"], timings[str(i)])}
        del pruned, order
    return pooled, measured
