"""One function per workflow stage: read the stage's inputs, call the pure functions, write outputs.

The Snakemake scripts in ``scripts/`` only adapt the ``snakemake`` object to these calls; the
functions are equally usable from Python or a notebook. Every output is written atomically.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from . import data
from .io import atomic_path, read_json, write_json, write_npy, write_text
from .methods import Plan, make_plan
from .similarity import cosine_from_directory
from .structure import LayerStructure, analyse_structure

if TYPE_CHECKING:  # torch and transformers are imported only by the stages that run a model
    import torch


# ------------------------------------------------------------------------------------------ models
def prepare(source: str, out_dir: str | Path, storage_dtype: str = "bfloat16") -> dict[str, Any]:
    """Stage 0: convert a GGUF model to safetensors (or just describe a hub/local model) in ``out_dir``."""
    from . import models

    src = models.resolve_source(source)
    with atomic_path(out_dir, directory=True) as tmp:
        info = models.prepare_model(src, tmp, storage_dtype)
        write_json(tmp / "model.json", info)
    return info


def load_prepared(model_dir: str | Path, compute: Mapping[str, Any] | None = None,
                  dtype: str | None = None) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """Model, tokenizer and manifest of a prepared model; ``dtype='stored'`` keeps the checkpoint dtype."""
    from . import models

    compute = dict(compute or {})
    manifest = read_json(Path(model_dir) / "model.json")
    src = models.source_from_manifest(manifest, model_dir)
    device = models.select_device(compute.get("device", "auto"))
    if dtype == "stored":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(src.path, dtype="auto").to(device).eval()
        models.get_decoder_layers(model)
    else:
        model = models.load_model(src, device, models.select_dtype(compute.get("dtype", "auto"), device))
    return model, models.load_tokenizer(src), manifest


def load_tokenizer(model_dir: str | Path) -> Any:
    from . import models

    manifest = read_json(Path(model_dir) / "model.json")
    return models.load_tokenizer(models.source_from_manifest(manifest, model_dir))


# ------------------------------------------------------------------------------------- calibration
def calibration(model_dir: str | Path, spec: Mapping[str, Any], tokens_path: str | Path,
                meta_path: str | Path) -> dict[str, Any]:
    """Stage 1: calibration windows (int32 [n_samples, seqlen]) and their description."""
    tokenizer = load_tokenizer(model_dir)
    windows, meta = data.calibration_tokens(spec, tokenizer)
    meta.update(shape=list(windows.shape), dtype="int32", spec=dict(spec))
    write_npy(tokens_path, windows)
    write_json(meta_path, meta)
    return meta


# ------------------------------------------------------------------------------------- activations
def activations(model_dir: str | Path, tokens_path: str | Path, out_dir: str | Path,
                params: Mapping[str, Any], compute: Mapping[str, Any]) -> dict[str, Any]:
    """Stage 2: hidden states entering every block, one ``.npy`` per layer."""
    from .capture import capture_activations

    model, _, _ = load_prepared(model_dir, compute)
    tokens = np.load(tokens_path)
    start = time.perf_counter()
    with tqdm(total=len(tokens), desc="capture", unit="seq") as bar:
        manifest = capture_activations(
            model, tokens, out_dir,
            batch_size=int(params.get("batch_size", 8)),
            dtype=str(params.get("dtype", "float16")),
            tokens_per_sequence=params.get("tokens_per_sequence"),
            seed=int(params.get("seed", 0)),
            progress=bar.update,
        )
    print(f"captured {manifest['shape'][0]} tokens x {manifest['n_layers'] + 1} layers in "
          f"{time.perf_counter() - start:.1f} s")
    return manifest


# -------------------------------------------------------------------------------------- similarity
def _matrix_csv(matrix: np.ndarray) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["layer"] + list(range(matrix.shape[1])))
    for i, row in enumerate(matrix):
        writer.writerow([i] + [f"{v:.6f}" for v in row])
    return buf.getvalue()


def plot_heatmap(matrix: np.ndarray, path: str | Path, title: str) -> None:
    """Similarity heatmap (layer x layer) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=120)
    im = ax.imshow(matrix, cmap="viridis", vmin=min(0.0, float(matrix.min())), vmax=1.0, origin="upper")
    ax.set_xlabel("layer j (input of block j)")
    ax.set_ylabel("layer i (input of block i)")
    ax.set_title(title)
    from .figures import integer_ticks

    integer_ticks(ax)
    fig.colorbar(im, ax=ax, label="mean cosine similarity")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def similarity(activation_dir: str | Path, outputs: Mapping[str, str | Path], title: str = "") -> None:
    """Stage 3: N x N cosine matrix (and the extended and last-token matrices used by the baselines).

    ``outputs`` maps ``cosine``, ``csv``, ``heatmap``, ``extended`` and ``last_token`` to paths.
    """
    activation_dir = Path(activation_dir)
    manifest = read_json(activation_dir / "manifest.json")
    n_files = manifest["n_layers"] + 1
    with tqdm(total=manifest["shape"][0], desc="similarity", unit="tok") as bar:
        result = cosine_from_directory(activation_dir, n_files, np.asarray(manifest["last_token_rows"]),
                                       progress=bar.update)
    cosine = result.cosine
    write_npy(outputs["cosine"], cosine)
    write_npy(outputs["extended"], result.extended)
    write_npy(outputs["last_token"], result.last_token)
    write_text(outputs["csv"], _matrix_csv(cosine))
    plot_heatmap(cosine, outputs["heatmap"], title or f"inter-layer cosine similarity ({cosine.shape[0]} blocks)")


# --------------------------------------------------------------------------------------- structure
def structure(cosine_path: str | Path, out_path: str | Path, params: Mapping[str, Any]) -> LayerStructure:
    """Stage 4: RLS, K and the spectral clustering of layers (``rls.json``)."""
    s = np.load(cosine_path)
    result = analyse_structure(
        s,
        k=params.get("k"),
        thresholds=params.get("rls_thresholds", (1.0, 0.7)),
        random_state=int(params.get("random_state", 0)),
    )
    write_json(out_path, result.to_dict())
    return result


# ------------------------------------------------------------------------------------------- plans
def plan(method: str, budget: int, extended_path: str | Path, last_token_path: str | Path,
         out_path: str | Path, params: Mapping[str, Any], structure_path: str | Path | None = None) -> Plan:
    """Stage 5: a pruning plan for one method and budget."""
    struct = LayerStructure.from_dict(read_json(structure_path)) if structure_path else None
    result = make_plan(method, int(budget), np.load(extended_path), np.load(last_token_path), struct, params)
    write_json(out_path, result.to_dict())
    return result


# ------------------------------------------------------------------------------------- checkpoints
def checkpoint(model_dir: str | Path, plan_path: str | Path, out_dir: str | Path,
               compute: Mapping[str, Any] | None = None) -> None:
    """Stage 6: the pruned model as a Hugging Face directory, in the dtype the weights are stored in."""
    from .prune import prune_layers, save_checkpoint

    the_plan = Plan.from_dict(read_json(plan_path))
    model, tokenizer, manifest = load_prepared(model_dir, compute, dtype="stored")
    if manifest["num_hidden_layers"] != the_plan.n_layers:
        raise ValueError(f"plan is for {the_plan.n_layers} layers, model has {manifest['num_hidden_layers']}")
    prune_layers(model, the_plan.pruned)
    save_checkpoint(model, tokenizer, the_plan, out_dir, {"source_model": manifest["source"]})


# -------------------------------------------------------------------------------------- evaluation
def load_for_evaluation(model_dir: str | Path, compute: Mapping[str, Any]) -> tuple[torch.nn.Module, Any]:
    """Model (in the compute dtype, on the compute device) and tokenizer of a prepared model
    directory (with ``model.json``) or of a pruned checkpoint directory."""
    from . import models

    model_dir = Path(model_dir)
    if (model_dir / "model.json").is_file():
        model, tokenizer, _ = load_prepared(model_dir, compute)
        return model, tokenizer
    src = models.ModelSource("local", str(model_dir))
    device = models.select_device(compute.get("device", "auto"))
    model = models.load_model(src, device, models.select_dtype(compute.get("dtype", "auto"), device))
    return model, models.load_tokenizer(src)


def model_weights_dir(model_dir: str | Path) -> Path | None:
    """The directory holding a model's weight files: the checkpoint itself, or the source of a
    prepared model when it is local (None for a hub id)."""
    from . import models

    model_dir = Path(model_dir)
    if not (model_dir / "model.json").is_file():
        return model_dir
    src = models.source_from_manifest(read_json(model_dir / "model.json"), model_dir)
    return Path(src.path) if src.kind != "hub" and Path(src.path).is_dir() else None


PPL_COLUMNS = ("model", "calib", "method", "budget", "n_layers", "dataset", "seqlen", "prefix_tokens", "n_windows",
               "n_tokens", "nll", "ppl", "checkpoint", "plan")


def _rows_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def evaluate_perplexity(model_dir: str | Path, datasets: Mapping[str, Mapping[str, Any]], out_path: str | Path,
                        labels: Mapping[str, Any], compute: Mapping[str, Any], batch_size: int = 4) -> list[dict]:
    """Stage 7: perplexity of a (dense or pruned) model on every configured dataset, as ``ppl.csv``.

    ``model_dir`` is a prepared-model directory (with ``model.json``) or a pruned checkpoint.
    ``labels`` fills the identifying columns (model, calib, method, budget, checkpoint, plan).
    """
    from . import models
    from .evaluate import make_windows, perplexity

    model, tokenizer = load_for_evaluation(model_dir, compute)
    n_layers = len(models.get_decoder_layers(model))
    rows = []
    for name, spec in datasets.items():
        texts = data.load_texts(spec, "evaluation")
        stream = data.tokenize_stream(texts, tokenizer, spec.get("join", data.DEFAULT_JOIN))
        prefix = data.special_prefix(tokenizer) if spec.get("bos_per_window") else []
        windows = make_windows(stream, int(spec["seqlen"]), spec.get("max_windows"), prefix=prefix)
        with tqdm(total=len(windows), desc=f"ppl {name}", unit="win") as bar:
            result = perplexity(model, windows, batch_size=batch_size, progress=bar.update,
                                prefix_tokens=len(prefix))
        print(f"{name}: ppl {result.ppl:.3f} over {result.n_windows} x {result.seqlen} tokens")
        rows.append({**labels, "n_layers": n_layers, "dataset": name, **result.as_row()})
    write_text(out_path, _rows_csv(rows, PPL_COLUMNS))
    return rows


EFFICIENCY_COLUMNS = ("model", "calib", "method", "budget", "n_layers", "n_params", "weights_bytes", "device",
                      "dtype", "batch_size", "seqlen", "decode_tokens", "warmup", "repeats", "prefill_ms",
                      "prefill_ms_min", "prefill_ms_max", "prefill_tokens_per_s", "decode_ms_per_token",
                      "decode_ms_per_token_min", "decode_ms_per_token_max", "peak_memory_mib", "memory_measure",
                      "checkpoint", "plan")


def evaluate_efficiency(model_dir: str | Path, out_path: str | Path, labels: Mapping[str, Any],
                        compute: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Stage 7b: size, peak memory, prefill throughput and decode latency as ``efficiency.csv``."""
    from . import models
    from .efficiency import EfficiencySettings, measure, weights_bytes

    cfg = EfficiencySettings(**{k: int(v) for k, v in settings.items()})
    model, _ = load_for_evaluation(model_dir, compute)
    weights = model_weights_dir(model_dir)
    with tqdm(total=2 * (cfg.warmup + cfg.repeats), desc="efficiency", unit="run") as bar:
        result = measure(model, cfg, progress=bar.update)
    row = {**labels, "n_layers": len(models.get_decoder_layers(model)),
           "weights_bytes": weights_bytes(weights) if weights else "", **cfg.__dict__, **result.as_row()}
    print(f"prefill {result.prefill_tokens_per_s:.1f} tok/s, decode {result.decode_ms_per_token:.2f} ms/token, "
          f"peak {result.peak_memory_mib:.0f} MiB ({result.memory_measure}) on {result.device}")
    write_text(out_path, _rows_csv([row], EFFICIENCY_COLUMNS))
    return row


def evaluate_zeroshot(model_dir: str | Path, out_path: str | Path, labels: Mapping[str, Any],
                      compute: Mapping[str, Any], spec: Mapping[str, Any], batch_size: int = 8) -> list[dict]:
    """Stage 7c: zero-shot accuracy on the configured lm-eval tasks as ``tasks.csv`` (long rows:
    task, metric, value, stderr, n_examples), the model loaded once for all tasks."""
    from . import models
    from .zeroshot import TASK_COLUMNS, evaluate_tasks

    model, tokenizer = load_for_evaluation(model_dir, compute)
    n_layers = len(models.get_decoder_layers(model))
    rows = evaluate_tasks(model, tokenizer, list(spec["tasks"]), spec.get("data_dir"), spec.get("limit"),
                          batch_size=batch_size)
    for row in rows:
        print(f"{row['task']:>14} {row['metric']:<8} {row['value']:.4f} +- {row['stderr'] or float('nan'):.4f} "
              f"({row['n_examples']} examples)")
    write_text(out_path, _rows_csv([{**labels, "n_layers": n_layers, **r} for r in rows], TASK_COLUMNS))
    return rows


# ----------------------------------------------------------------------------------------- summary
def _long_frame(csv_paths: Sequence[str | Path], order: Sequence[str]) -> Any:
    import pandas as pd

    frame = pd.concat([pd.read_csv(p, keep_default_na=False) for p in csv_paths], ignore_index=True)
    frame["budget"] = pd.to_numeric(frame["budget"], errors="coerce").fillna(0).astype(int)
    return frame.sort_values(list(order), kind="stable").reset_index(drop=True)


SUMMARY_NOTES = {
    "ppl": ("Perplexity (paper Table 2)",
            "Perplexity per dataset (lower is better) and their mean; `change_%` is the relative change of the "
            "mean against the same model's dense row (method `dense`, budget 0)."),
    "tasks": ("Zero-shot accuracy (paper Table 3)",
              "Accuracy in % per task (acc_norm where the task reports it, else acc; lm-evaluation-harness, "
              "0-shot) and their mean; `change` is the difference of the mean against the dense row, in points."),
    "efficiency": ("Efficiency",
                   "Parameters, weight bytes, peak memory (MiB), prefill throughput (tokens/s) and decode latency "
                   "(ms/token), measured on the device each job ran on; ratios and speed-ups against dense."),
}


def summarise(kind: str, csv_paths: Sequence[str | Path], out_csv: str | Path, out_md: str | Path,
              out_table: str | Path) -> None:
    """Stage 8: every evaluation row of one ``kind`` (``ppl``, ``tasks`` or ``efficiency``) in one long
    CSV, and the paper-style table (dense row, change against it) as CSV and Markdown."""
    from . import tables

    order = {"ppl": ["model", "dataset", "calib", "method", "budget"],
             "tasks": ["model", "task", "metric", "calib", "method", "budget"],
             "efficiency": ["model", "calib", "method", "budget"]}[kind]
    frame = _long_frame(csv_paths, order)
    make = {"ppl": tables.perplexity_table, "tasks": tables.task_table, "efficiency": tables.efficiency_table}[kind]
    table = make(frame)
    write_text(out_csv, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out_table, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    title, note = SUMMARY_NOTES[kind]
    if kind == "ppl" and "prefix_tokens" in frame:
        with_bos = sorted(frame.loc[frame["prefix_tokens"] > 0, "model"].unique())
        if with_bos:
            note += (" Every window starts with the tokenizer's BOS for " + ", ".join(with_bos)
                     + " (`bos_per_window`); the others follow the paper protocol, without special tokens.")
    write_text(out_md, tables.to_markdown(table, title, note, floatfmt=".3f" if kind != "efficiency" else ".4g"))


# ----------------------------------------------------------------------------------------- figures
def figure_structure(cosine_path: str | Path, rls_path: str | Path, plan_paths: Mapping[str, str | Path],
                     budget: int, out_path: str | Path, title: str) -> None:
    """The similarity heatmap with cluster boundaries and each method's pruned layers at ``budget``."""
    from .figures import heatmap_with_plans

    rls = read_json(rls_path)
    pruned = {method: read_json(p)["pruned"] for method, p in plan_paths.items()}
    heatmap_with_plans(np.load(cosine_path), rls["labels"], rls["rls"], rls["k"], pruned, budget, out_path, title)


def figure_pruned_map(plan_paths: Sequence[str | Path], out_path: str | Path, title: str,
                      names: Sequence[str] | None = None) -> None:
    """Methods x layers, one panel per budget, from plan files (``names`` labels them, else the plan's method)."""
    from .figures import pruned_layer_map

    by_budget: dict[int, dict[str, list[int]]] = {}
    n_layers = 0
    for i, path in enumerate(plan_paths):
        plan = read_json(path)
        name = names[i] if names else plan["method"]
        by_budget.setdefault(int(plan["budget"]), {})[name] = plan["pruned"]
        n_layers = int(plan["n_layers"])
    pruned_layer_map(by_budget, n_layers, out_path, title)


def figure_locality(entries: Mapping[str, tuple[str | Path, str | Path]], out_path: str | Path) -> None:
    """Mean similarity against normalised layer distance; ``entries`` maps a label to (cosine, rls.json)."""
    from .figures import locality_curves

    curves = {label: (np.load(cos), float(read_json(rls)["rls"])) for label, (cos, rls) in entries.items()}
    locality_curves(curves, out_path)


def figure_metric_vs_budget(table_csv: str | Path, kind: str, out_path: str | Path) -> None:
    """Mean perplexity (``kind='ppl'``) or mean accuracy (``kind='tasks'``) against the budget."""
    import pandas as pd

    from .figures import metric_vs_budget

    table = pd.read_csv(table_csv, keep_default_na=False)
    if kind == "ppl":
        metric_vs_budget(table, "mean_ppl", out_path, "mean perplexity (log scale)", "perplexity vs budget", log=True)
    else:
        metric_vs_budget(table, "mean_acc", out_path, "mean zero-shot accuracy (%)", "accuracy vs budget")


def summarise_k_ablation(ppl_paths: Sequence[str | Path], rls_paths: Mapping[str, str | Path],
                         out_csv: str | Path, out_png: str | Path) -> None:
    """The K ablation: mean perplexity of LoRP per model, K and budget (CSV) and its figure.

    ``rls_paths`` maps ``model/calib`` to the rls.json of its automatic K, marked in the figure.
    """
    import pandas as pd

    from .config import ablation_k
    from .figures import k_ablation

    frame = _long_frame(ppl_paths, ["model", "calib", "method", "budget", "dataset"])
    frame["k"] = [ablation_k(m) for m in frame["method"]]
    table = (frame.groupby(["model", "calib", "k", "budget", "n_layers"], as_index=False)["ppl"].mean()
             .rename(columns={"ppl": "mean_ppl"}).sort_values(["model", "calib", "budget", "k"], kind="stable"))
    write_text(out_csv, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    auto = {label: int(read_json(p)["k"]) for label, p in rls_paths.items()}
    k_ablation(table.assign(model=table["model"] + "/" + table["calib"]), out_png, auto)
