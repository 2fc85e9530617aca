"""Zero-shot accuracy with lm-evaluation-harness, on the hub tasks or offline on local JSON-lines files.

Tasks are named by their lm-eval names (``arc_easy``, ``race``, ...). With ``data_dir`` unset, lm-eval's
own task definitions run (they download their datasets from the Hugging Face hub). With
``data_dir`` set, the same tasks run from the task YAMLs shipped in :mod:`lorp` (``lm_eval_tasks/``,
named ``lorp_<task>``), which read ``<data_dir>/<file>.jsonl`` (the files and formats of
``../shared/data/zeroshot``) and reproduce lm-eval's prompts and metrics.

The in-memory model is wrapped once in lm-eval's ``HFLM`` and every task runs on it: no reload per
task. ``limit`` takes the first ``limit`` documents of each task, as lm-eval's ``--limit`` does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

OFFLINE_FILES = {
    "arc_easy": "arc_easy.jsonl",
    "arc_challenge": "arc_challenge.jsonl",
    "hellaswag": "hellaswag.jsonl",
    "winogrande": "winogrande.jsonl",
    "boolq": "boolq.jsonl",
    "openbookqa": "openbookqa.jsonl",
    "rte": "rte.jsonl",
    "copa": "copa.jsonl",
    "race": "race_high.jsonl",
    "piqa": "piqa.jsonl",
}
"""The offline tasks and the file each reads from ``data_dir``."""

TASK_DIR = Path(__file__).with_name("lm_eval_tasks")


def offline_task_name(task: str) -> str:
    return f"lorp_{task}"


def config_errors(tasks: Sequence[str], data_dir: str | Path | None, key: str = "zeroshot") -> list[str]:
    """Problems with a task list before any job runs: unknown offline tasks, missing data files."""
    if data_dir is None:
        return []
    errors = []
    unknown = [t for t in tasks if t not in OFFLINE_FILES]
    if unknown:
        errors.append(f"{key}.tasks: {unknown} have no offline definition; with {key}.data_dir set choose from "
                      f"{', '.join(OFFLINE_FILES)} (or set data_dir: null for lm-eval's hub tasks)")
    directory = Path(data_dir)
    if not directory.is_dir():
        errors.append(f"{key}.data_dir: directory {directory} does not exist")
        return errors
    missing = [OFFLINE_FILES[t] for t in tasks if t in OFFLINE_FILES and not (directory / OFFLINE_FILES[t]).is_file()]
    if missing:
        errors.append(f"{key}.data_dir: {directory} lacks {', '.join(missing)}")
    return errors


def task_manager(data_dir: str | Path | None) -> Any:
    """lm-eval's task registry: the shipped offline tasks reading ``data_dir``, or lm-eval's own."""
    from lm_eval.tasks import TaskManager

    if data_dir is None:
        return TaskManager()
    return TaskManager(include_path=str(TASK_DIR), include_defaults=False,
                       metadata={"lorp_data_dir": str(Path(data_dir).resolve())})


def result_rows(results: Mapping[str, Any], tasks: Sequence[str], offline: bool,
                limit: int | None) -> list[dict[str, Any]]:
    """Long rows (task, metric, value, stderr, n_examples, n_available) from ``simple_evaluate``'s output."""
    rows = []
    for task in tasks:
        name = offline_task_name(task) if offline else task
        metrics = results["results"][name]
        counts = results.get("n-samples", {}).get(name, {})
        for metric in ("acc", "acc_norm"):
            if f"{metric},none" not in metrics:
                continue
            stderr = metrics.get(f"{metric}_stderr,none")
            rows.append({
                "task": task,
                "metric": metric,
                "value": float(metrics[f"{metric},none"]),
                "stderr": float(stderr) if isinstance(stderr, (int, float)) and math.isfinite(stderr) else "",
                "n_examples": counts.get("effective", ""),
                "n_available": counts.get("original", ""),
                "limit": limit if limit is not None else "",
            })
    return rows


def evaluate_tasks(model: Any, tokenizer: Any, tasks: Sequence[str], data_dir: str | Path | None = None,
                   limit: int | None = None, batch_size: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    """Zero-shot accuracy of an in-memory causal LM on ``tasks`` (lm-eval names); long rows."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=int(batch_size))
    offline = data_dir is not None
    names = [offline_task_name(t) if offline else t for t in tasks]
    results = lm_eval.simple_evaluate(
        model=lm, tasks=names, task_manager=task_manager(data_dir), num_fewshot=0, limit=limit,
        random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        log_samples=False,
    )
    return result_rows(results, tasks, offline, limit)
