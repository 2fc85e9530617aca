"""Benchmark 1: the capture stage against a plain forward pass of the decoder stack, side by side.

Capture (hooks, token selection, float16 conversion, writing every layer's hidden states to
memory-mapped ``.npy`` files and moving the directory into place) against the same batches through
``model.model`` with nothing kept. Both on the default config's calibration (32 x 256 tokens, batch 8).
Target: capture <= 1.10x the forward pass."""

from __future__ import annotations

import argparse
import shutil

from common import WORK, alternate, calibration, embedded_model, median, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import torch

    from lorp import models
    from lorp.capture import capture_activations

    model_dir = embedded_model()
    model, _, _ = models.load(model_dir)
    tokens = calibration(model_dir)
    device = next(model.parameters()).device
    out = WORK / "capture-tmp"

    @torch.inference_mode()
    def forward():
        for start in range(0, len(tokens), args.batch_size):
            ids = torch.from_numpy(tokens[start:start + args.batch_size].astype(np.int64)).to(device)
            model.model(input_ids=ids, use_cache=False)

    def capture():
        shutil.rmtree(out, ignore_errors=True)
        capture_activations(model, tokens, out, batch_size=args.batch_size)

    times = alternate({"forward": forward, "capture": capture}, args.repeats)
    written = sum(p.stat().st_size for p in out.iterdir())
    shutil.rmtree(out, ignore_errors=True)
    ratio = median(times["capture"]) / median(times["forward"])
    report("capture_overhead", ratio, "target <= 1.10x a plain forward pass",
           {"device": str(device), "threads": torch.get_num_threads(), "tokens": list(tokens.shape),
            "batch_size": args.batch_size, "seconds_forward": times["forward"], "seconds_capture": times["capture"],
            "bytes_written": written, "capture_mb_per_s": written / median(times["capture"]) / 1e6})


if __name__ == "__main__":
    main()
