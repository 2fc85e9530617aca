"""Benchmark 4: perplexity with batched windows against one window at a time, side by side.

Both evaluate the default config's evaluation windows (python-docs, 16 x 256 tokens) on the embedded
model; the perplexities must agree to 1e-4 relative. Target: batched >= 1.5x the tokens/s on the CPU
(>= 3x on a GPU)."""

from __future__ import annotations

import argparse

from common import alternate, embedded_model, median, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    from lorp import data, models
    from lorp.evaluation.perplexity import make_windows, perplexity

    model_dir = embedded_model()
    model, tokenizer, _ = models.load(model_dir)
    stream = data.tokenize_stream(data.load_texts({"source": "python-docs"}, "evaluation"), tokenizer)
    windows = make_windows(stream, 256, args.windows)
    results = {}

    def run(batch: int):
        def fn():
            results[batch] = perplexity(model, windows, batch_size=batch)
        return fn

    times = alternate({"one": run(1), "batched": run(args.batch_size)}, args.repeats)
    tokens = windows.size
    one, batched = tokens / median(times["one"]), tokens / median(times["batched"])
    rel = abs(results[1].ppl - results[args.batch_size].ppl) / results[1].ppl
    device = next(model.parameters()).device
    target = ">= 3x on a GPU" if device.type == "cuda" else ">= 1.5x on the CPU"
    report("perplexity_batched", batched / one, f"{target}; ppl agree to {rel:.1e} relative (<= 1e-4)",
           {"device": str(device), "threads": torch.get_num_threads(), "windows": list(windows.shape),
            "batch_size": args.batch_size, "tokens_per_s_one": one, "tokens_per_s_batched": batched,
            "ppl_one": results[1].ppl, "ppl_batched": results[args.batch_size].ppl, "relative_difference": rel,
            "seconds_one": times["one"], "seconds_batched": times["batched"]})
    if rel > 1e-4:
        raise SystemExit(f"batched and one-window perplexities differ by {rel:.2e} relative")


if __name__ == "__main__":
    main()
