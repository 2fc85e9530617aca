"""Benchmark 2: a sweep's selection from one capture against recapturing for every run.

The paper's sweep, 3 methods (LoRP, ShortGPT, Streamline) x 5 budgets (2..10): this workflow captures
the hidden states once, computes the similarity and the structure once, and makes the 15 plans from
those files; the reference implementation runs capture, similarity and selection again for every
(method, budget). Both are run here, on the default calibration (32 x 256 tokens), after one untimed
warm-up of each step (a process pays its imports once, whichever way it sweeps). Targets: the sweep
within 1.2x of one capture's time (about 15x cheaper than recapturing); both times are printed."""

from __future__ import annotations

import argparse
import shutil
import time

from common import WORK, calibration, embedded_model, report

METHODS = ("lorp", "shortgpt", "streamline")
BUDGETS = (2, 4, 6, 8, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference-runs", type=int, default=len(METHODS) * len(BUDGETS),
                        help="how many of the 15 recapturing runs to time (the rest are extrapolated)")
    args = parser.parse_args()

    import torch

    from lorp import models
    from lorp.capture import capture_activations
    from lorp.depth import methods, structure
    from lorp.depth.similarity import cosine_from_directory
    from lorp.io import read_json

    model_dir = embedded_model()
    model, _, _ = models.load(model_dir)
    tokens = calibration(model_dir)
    out = WORK / "sweep-tmp"
    runs = [(m, b) for m in METHODS for b in BUDGETS]

    def capture() -> float:
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        capture_activations(model, tokens, out, batch_size=8)
        return time.perf_counter() - start

    def select(pairs) -> float:
        start = time.perf_counter()
        manifest = read_json(out / "manifest.json")
        import numpy as np

        sim = cosine_from_directory(out, manifest["n_layers"] + 1, np.asarray(manifest["last_token_rows"]))
        inputs = methods.PlanInputs(sim.extended, sim.last_token, structure.analyse_structure(sim.cosine))
        for method, budget in pairs:
            methods.make_plan(method, budget, inputs)
        return time.perf_counter() - start

    capture(), select(runs[:1])  # warm-up, untimed: the lazy imports (scikit-learn's ~1.6 s among them) and the page cache
    one_capture = capture()
    ours = one_capture + select(runs)
    reference = []
    for pair in runs[:args.reference_runs]:
        reference.append(capture() + select([pair]))
    shutil.rmtree(out, ignore_errors=True)
    reference_total = sum(reference) / len(reference) * len(runs)
    report("sweep_cost", ours / one_capture, "target <= 1.2x one capture",
           {"threads": torch.get_num_threads(), "tokens": list(tokens.shape), "runs": len(runs),
            "seconds_one_capture": one_capture, "seconds_sweep_from_one_capture": ours,
            "seconds_recapturing_per_run": reference_total, "reference_runs_timed": len(reference),
            "reference_over_ours": reference_total / ours})


if __name__ == "__main__":
    main()
