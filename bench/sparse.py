"""Benchmark 8: this workflow's Wanda and SparseGPT pruning beside llm-compressor's, on the embedded model.

Each metric prunes the embedded model (float32 on the CPU) to 50% uniform from the default config's
calibration (32 x 256 python-docs tokens) in a fresh process, as the ``sparse_prune`` job does (Wanda's
and SparseGPT's sequential protocols, SparseGPT with block size 128 and damping 0.01), and reports its
pruning time, the process's peak memory and the perplexity of the pruned model on the default config's
16 evaluation windows of 256 tokens. The two metrics run one after the other in this run.

llm-compressor pins an older transformers, so it is not a dependency and is not run here: its figures
are those of issue 25 (llm-compressor 0.14 in its own virtualenv, same model, tokens, windows and 2 cores):
Wanda 41 s and perplexity 32.0, SparseGPT 82 s and 24.3. Targets: SparseGPT no slower than llm-compressor's
(the ratio printed last, ours / theirs, <= 1) and its perplexity within 2% of llm-compressor's."""

from __future__ import annotations

import argparse
import json

from common import child_peak_rss_mib, embedded_model, report

LLM_COMPRESSOR = {"wanda": {"seconds": 41.0, "ppl": 32.0}, "sparsegpt": {"seconds": 82.0, "ppl": 24.3}}
"""llm-compressor 0.14 on this machine's 2 cores (issue 25's table), for the same pruning and evaluation."""

CHILD = """
import json, numpy as np, torch
from lorp import data, models
from lorp.evaluation.perplexity import make_windows, perplexity
from lorp.sparse import plan as sp
from lorp.sparse.norms import block_shapes
from lorp.sparse.prune import prune_to_plan
from torch.utils.benchmark import Timer

torch.set_num_threads({threads})
model, tokenizer, _ = models.load_for({model_dir!r}, {{"device": "cpu", "dtype": "float32"}})
tokens = np.load({tokens!r})
plan = sp.uniform_plan({metric!r}, 0.5, block_shapes(model))
params = {{"blocksize": 128, "damping": 0.01, "hessian_dtype": "float32"}}
run = lambda: prune_to_plan(model, plan, tokens=tokens, batch_size=8, params=params)
seconds = Timer(stmt="run()", globals={{"run": run}}, num_threads=torch.get_num_threads()).timeit(1).times[0]
stream = data.tokenize_stream(data.load_texts({{"source": "python-docs"}}, "evaluation"), tokenizer)
ppl = perplexity(model, make_windows(stream, 256, 16), batch_size=4).ppl
print(json.dumps({{"seconds": seconds, "ppl": ppl}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each pruning (llm-compressor's: 2)")
    args = parser.parse_args()

    import numpy as np

    from common import WORK, calibration

    model_dir = embedded_model()
    tokens = WORK / "sparse_calibration.npy"
    WORK.mkdir(parents=True, exist_ok=True)
    np.save(tokens, calibration(model_dir))
    ours = {}
    for metric in ("wanda", "sparsegpt"):
        code = CHILD.format(
            threads=args.threads, model_dir=str(model_dir), tokens=str(tokens), metric=metric)
        peak, out = child_peak_rss_mib(code)
        ours[metric] = {**json.loads(out.splitlines()[-1]), "peak_rss_mib": peak}
        print(f"{metric}: {ours[metric]['seconds']:.1f} s, peak {peak:.0f} MiB, perplexity {ours[metric]['ppl']:.3f}",
              flush=True)
    details = {"threads": args.threads, "this_workflow": ours, "llm_compressor_0_14": LLM_COMPRESSOR,
               "sparsegpt_ppl_vs_llm_compressor": ours["sparsegpt"]["ppl"] / LLM_COMPRESSOR["sparsegpt"]["ppl"],
               "wanda_seconds_vs_llm_compressor": ours["wanda"]["seconds"] / LLM_COMPRESSOR["wanda"]["seconds"]}
    report("sparse", ours["sparsegpt"]["seconds"] / LLM_COMPRESSOR["sparsegpt"]["seconds"],
           "SparseGPT time / llm-compressor's <= 1; perplexity within 2% of its 24.3", details)


if __name__ == "__main__":
    main()
