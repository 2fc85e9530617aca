"""Benchmark 3: the similarity stage reading stored activations, against loading them whole.

Random float16 activations of a 36-block, 4096-wide model (37 files: the input of every block and the
last block's output) at two token counts. The stage (:func:`lorp.depth.similarity.cosine_from_directory`,
chunked reads) runs in a fresh process whose peak resident memory is recorded; the reference, in another
fresh process, ``numpy.load``s every file whole and computes the same Gram matrix in memory (at the
smaller count only: at the larger it would need the whole data set in memory). Targets: the stage reads
at >= 0.7x the reference's GB/s, and its peak memory is the same at both token counts and under 4 GB, so
the paper's 262k tokens (about 79 GB on disk) fit as well."""

from __future__ import annotations

import argparse
import json
import shutil

from common import WORK, child_peak_rss_mib, report

OURS = """
import json, time
from lorp.depth.similarity import cosine_from_directory
start = time.perf_counter()
result = cosine_from_directory({path!r}, {files})
print(json.dumps({{"seconds": time.perf_counter() - start, "first_row": result.extended[0, :4].tolist()}}))
"""

REFERENCE = """
import json, time
import numpy as np
start = time.perf_counter()
layers = [np.load({path!r} + f"/layer_{{i:03d}}.npy").astype(np.float32) for i in range({files})]
flat = np.stack([x / np.linalg.norm(x, axis=1, keepdims=True) for x in layers]).reshape({files}, -1)
gram = (flat @ flat.T).astype(np.float64) / layers[0].shape[0]
print(json.dumps({{"seconds": time.perf_counter() - start, "first_row": gram[0, :4].tolist()}}))
"""


def write_random(directory, files: int, tokens: int, hidden: int, seed: int = 0) -> int:
    """``files`` float16 arrays [tokens, hidden] of correlated random hidden states; returns their bytes."""
    import numpy as np

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    total = 0
    chunk = 2048
    for i in range(files):
        out = np.lib.format.open_memmap(directory / f"layer_{i:03d}.npy", mode="w+", dtype=np.float16,
                                        shape=(tokens, hidden))
        for start in range(0, tokens, chunk):
            rows = min(chunk, tokens - start)
            out[start:start + rows] = rng.standard_normal((rows, hidden), dtype=np.float32) + 0.1 * i
        out.flush()
        total += out.nbytes
        del out
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, nargs=2, default=[8192, 32768])
    parser.add_argument("--blocks", type=int, default=36)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the random activations (several GB)")
    args = parser.parse_args()

    files = args.blocks + 1
    runs = {}
    small, large = args.tokens
    try:
        for tokens in (small, large):
            path = WORK / f"similarity-{tokens}"
            nbytes = write_random(path, files, tokens, args.hidden)
            ours = [child_peak_rss_mib(OURS.format(path=str(path), files=files)) for _ in range(args.repeats)]
            runs[tokens] = {"bytes": nbytes, "ours": [(rss, json.loads(out)) for rss, out in ours]}
            if tokens == small:
                ref = [child_peak_rss_mib(REFERENCE.format(path=str(path), files=files)) for _ in range(args.repeats)]
                runs[tokens]["reference"] = [(rss, json.loads(out)) for rss, out in ref]
            if not args.keep:
                shutil.rmtree(path)
    finally:
        if not args.keep:
            for tokens in (small, large):
                shutil.rmtree(WORK / f"similarity-{tokens}", ignore_errors=True)

    def best(entries):  # the fastest of the repeats (the others include cold-cache reads)
        return min(entries, key=lambda e: e[1]["seconds"])

    gbs = {t: r["bytes"] / best(r["ours"])[1]["seconds"] / 1e9 for t, r in runs.items()}
    ref_gbs = runs[small]["bytes"] / best(runs[small]["reference"])[1]["seconds"] / 1e9
    peaks = {t: max(rss for rss, _ in r["ours"]) for t, r in runs.items()}
    agree = max(abs(a - b) for a, b in zip(best(runs[small]["ours"])[1]["first_row"],
                                              best(runs[small]["reference"])[1]["first_row"]))
    report("similarity_read", gbs[small] / ref_gbs,
           f"target >= 0.7x numpy.load + matmul in memory; peak RSS {peaks[small]:.0f} / {peaks[large]:.0f} MiB "
           f"at {small} / {large} tokens (target: equal, < 4096)",
           {"files": files, "hidden": args.hidden, "gb_per_s": gbs, "reference_gb_per_s": ref_gbs,
            "reference_peak_rss_mib": max(rss for rss, _ in runs[small]["reference"]),
            "peak_rss_mib": peaks, "bytes": {t: r["bytes"] for t, r in runs.items()},
            "max_difference_to_reference": agree,
            "seconds": {t: [e[1]["seconds"] for e in r["ours"]] for t, r in runs.items()}})


if __name__ == "__main__":
    main()
