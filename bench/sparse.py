"""Benchmark 8: this workflow's Wanda and SparseGPT pruning beside llm-compressor's, on the embedded model.

Each metric prunes the embedded model (float32 on the CPU) to 50% uniform from the default config's
calibration (32 x 256 python-docs tokens) in a fresh process, as the ``sparse_prune`` job does (Wanda's
and SparseGPT's sequential protocols, SparseGPT with block size 128 and damping 0.01), and reports its
pruning time, the process's peak memory and the perplexity of the pruned model on the default config's
16 evaluation windows of 256 tokens. The two metrics run one after the other in this run.

llm-compressor pins an older transformers, so it is not a dependency. Given the Python of a virtualenv that
has it (``--llm-compressor``; docs/benchmarks.md says how to make one), the run prunes with llm-compressor's
Wanda and SparseGPT too, alternating with this workflow's, on the same model, tokens and threads: its pruning
time (``oneshot``), peak memory, the perplexity of its pruned weights (evaluated here, by the same code) and
the share of the blocks' linear weights whose zero or non-zero state is the same in both masks. Without it,
llm-compressor's figures are those of issue 25 (llm-compressor 0.14, same model, tokens, windows and 2
cores): Wanda 41 s and perplexity 32.0, SparseGPT 82 s and 24.3. Targets: SparseGPT no slower than
llm-compressor's (the ratio printed last, ours / theirs, <= 1), its perplexity within 2% of llm-compressor's,
and Wanda's masks the same on at least 99% of the weights."""

from __future__ import annotations

import argparse
import json

from common import child_peak_rss_mib, embedded_model, report

LLM_COMPRESSOR = {"wanda": {"seconds": 41.0, "ppl": 32.0}, "sparsegpt": {"seconds": 82.0, "ppl": 24.3}}
"""llm-compressor 0.14 on this machine's 2 cores (issue 25's table), for the same pruning and evaluation."""

# Each pruning is one call timed once by the wall clock, on both sides: torch.utils.benchmark's Timer first
# runs its statement twice to warm up, which a one-shot pruning cannot repeat (llm-compressor's modifiers
# refuse a second initialisation; a second pruning of the same model times other work).

CHILD = """
import json, time, numpy as np, torch
from lorp import data, models
from lorp.evaluation.perplexity import make_windows, perplexity
from lorp.sparse import plan as sp
from lorp.sparse.norms import block_shapes
from lorp.sparse.prune import prune_to_plan

torch.set_num_threads({threads})
model, tokenizer, _ = models.load_for({model_dir!r}, {{"device": "cpu", "dtype": "float32"}})
tokens = np.load({tokens!r})
plan = sp.uniform_plan({metric!r}, 0.5, block_shapes(model))
params = {{"blocksize": 128, "damping": 0.01, "hessian_dtype": "float32"}}
start = time.perf_counter()
prune_to_plan(model, plan, tokens=tokens, batch_size=8, params=params)
seconds = time.perf_counter() - start
stream = data.tokenize_stream(data.load_texts({{"source": "python-docs"}}, "evaluation"), tokenizer)
ppl = perplexity(model, make_windows(stream, 256, 16), batch_size=4).ppl
np.savez_compressed({masks!r}, **{{name: np.packbits((m.weight == 0).numpy()) for name, m in model.named_modules()
                                  if isinstance(m, torch.nn.Linear) and ".layers." in name}})
print(json.dumps({{"seconds": seconds, "ppl": ppl}}))
"""

LLMC_CHILD = """
import json, time, numpy as np, torch
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

torch.set_num_threads({threads})
model = AutoModelForCausalLM.from_pretrained({hf_dir!r}, dtype=torch.float32)
tokens = np.load({tokens!r}).astype(np.int64)
dataset = Dataset.from_dict({{"input_ids": tokens.tolist(), "attention_mask": np.ones_like(tokens).tolist()}})
modifier = (WandaPruningModifier(sparsity=0.5, mask_structure="0:0", targets=["Linear"], ignore=["lm_head"])
            if {metric!r} == "wanda" else
            SparseGPTModifier(sparsity=0.5, mask_structure="0:0", block_size=128, dampening_frac=0.01,
                              targets=["Linear"], ignore=["lm_head"]))
start = time.perf_counter()
oneshot(model=model, dataset=dataset, recipe=[modifier], num_calibration_samples=len(tokens),
        max_seq_length=tokens.shape[1], shuffle_calibration_samples=False, pipeline="sequential")
seconds = time.perf_counter() - start
save_file({{name + ".weight": m.weight.detach().contiguous() for name, m in model.named_modules()
           if isinstance(m, torch.nn.Linear) and ".layers." in name}}, {weights!r})
print(json.dumps({{"seconds": seconds}}))
"""

COMPARE_CHILD = """
import json, numpy as np, torch
from lorp import data, models
from lorp.evaluation.perplexity import make_windows, perplexity
from safetensors.torch import load_file

torch.set_num_threads({threads})
model, tokenizer, _ = models.load_for({model_dir!r}, {{"device": "cpu", "dtype": "float32"}})
theirs = load_file({weights!r})
ours = np.load({masks!r})
same = total = 0
with torch.no_grad():
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and ".layers." in name:
            w = theirs[name + ".weight"].to(torch.float32)
            m.weight.copy_(w)
            mine = np.unpackbits(ours[name])[: w.numel()].astype(bool)
            same += int((mine == (w == 0).numpy().ravel()).sum())
            total += w.numel()
stream = data.tokenize_stream(data.load_texts({{"source": "python-docs"}}, "evaluation"), tokenizer)
ppl = perplexity(model, make_windows(stream, 256, 16), batch_size=4).ppl
sparsity = float(sum(int((t == 0).sum()) for t in theirs.values()) / total)
print(json.dumps({{"ppl": ppl, "mask_agreement": same / total, "sparsity": sparsity}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each pruning (llm-compressor's: 2)")
    parser.add_argument("--llm-compressor", metavar="PYTHON",
                        help="the Python of a virtualenv with llmcompressor installed: run it side by side")
    args = parser.parse_args()

    import numpy as np

    from common import WORK, calibration

    model_dir = embedded_model()
    tokens = WORK / "sparse_calibration.npy"
    WORK.mkdir(parents=True, exist_ok=True)
    np.save(tokens, calibration(model_dir))
    ours, theirs = {}, {}
    for metric in ("wanda", "sparsegpt"):
        masks = WORK / f"sparse_{metric}_masks.npz"
        code = CHILD.format(threads=args.threads, model_dir=str(model_dir), tokens=str(tokens), metric=metric,
                            masks=str(masks))
        peak, out = child_peak_rss_mib(code)
        ours[metric] = {**json.loads(out.splitlines()[-1]), "peak_rss_mib": peak}
        print(f"{metric}: {ours[metric]['seconds']:.1f} s, peak {peak:.0f} MiB, perplexity {ours[metric]['ppl']:.3f}",
              flush=True)
        if args.llm_compressor:
            weights = WORK / f"sparse_{metric}_llm_compressor.safetensors"
            code = LLMC_CHILD.format(threads=args.threads, hf_dir=str(model_dir / "hf"), tokens=str(tokens),
                                     metric=metric, weights=str(weights))
            peak, out = child_peak_rss_mib(code, python=args.llm_compressor)
            _, compared = child_peak_rss_mib(COMPARE_CHILD.format(
                threads=args.threads, model_dir=str(model_dir), weights=str(weights), masks=str(masks)))
            theirs[metric] = {**json.loads(out.splitlines()[-1]), "peak_rss_mib": peak,
                              **json.loads(compared.splitlines()[-1])}
            weights.unlink()
            print(f"llm-compressor {metric}: {theirs[metric]['seconds']:.1f} s, peak {peak:.0f} MiB, perplexity "
                  f"{theirs[metric]['ppl']:.3f}, masks the same on {100 * theirs[metric]['mask_agreement']:.2f}% "
                  "of the weights", flush=True)
    peer = theirs or LLM_COMPRESSOR
    details = {"threads": args.threads, "this_workflow": ours,
               ("llm_compressor_measured" if theirs else "llm_compressor_0_14"): peer,
               "sparsegpt_ppl_vs_llm_compressor": ours["sparsegpt"]["ppl"] / peer["sparsegpt"]["ppl"],
               "wanda_seconds_vs_llm_compressor": ours["wanda"]["seconds"] / peer["wanda"]["seconds"]}
    report("sparse", ours["sparsegpt"]["seconds"] / peer["sparsegpt"]["seconds"],
           "SparseGPT time / llm-compressor's <= 1; perplexity within 2% of its; Wanda masks >= 99% the same",
           details)


if __name__ == "__main__":
    main()
