"""Helpers of the offline ``lorp_*`` lm-eval tasks: a local JSON-lines loader, HellaSwag clean-up, RACE.

The data directory is not written in the YAMLs: :func:`lorp.evaluation.zeroshot.task_manager` passes it as the
task metadata key ``lorp_data_dir`` (lm-eval hands metadata and ``dataset_kwargs`` to
``custom_dataset``). With the lm-eval command line, set ``LORP_ZEROSHOT_DIR`` instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import datasets


def load_local(lorp_data_dir: str | None = None, data_file: str | None = None, **_: object) -> dict:
    """``custom_dataset`` loader: one JSON-lines file as the ``test`` split, held in memory (nothing
    is written to the datasets cache and no hub is contacted)."""
    data_dir = lorp_data_dir or os.environ.get("LORP_ZEROSHOT_DIR")
    if not data_dir:
        raise ValueError("the lorp_* tasks need their data directory: pass metadata={'lorp_data_dir': DIR} "
                         "to lm_eval's TaskManager, or set LORP_ZEROSHOT_DIR")
    path = Path(data_dir) / str(data_file)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: zeroshot.data_dir must hold {data_file}")
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return {"test": datasets.Dataset.from_list(rows)}


def _clean_hellaswag(text: str) -> str:
    """HellaSwag's WikiHow artefacts removed, as lm-eval's hellaswag task does."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    return dataset.map(lambda doc: {"query": _clean_hellaswag(doc["query"]),
                                    "choices": [_clean_hellaswag(c) for c in doc["choices"]]})


# RACE rows are one article each: {"article", "questions", "options", "answers"}. As in lm-eval's race
# task, the last question is scored and the earlier ones are shown with their answers as context.
_LETTERS = "ABCD"
_BLANK = "  _  ."


def _answer(doc: dict, i: int) -> str:
    return doc["options"][i][_LETTERS.index(doc["answers"][i])]


def race_doc_to_text(doc: dict) -> str:
    text = "Article: " + doc["article"] + "\n\n"
    for i in range(len(doc["questions"]) - 1):
        question = doc["questions"][i]
        if question.endswith(_BLANK):  # a cloze question: its blank filled with the answer
            text += question[: -len(_BLANK) + 1] + _answer(doc, i) + "\n"
        else:
            text += "Question: " + question + "\nAnswer: " + _answer(doc, i) + "\n"
    return text + doc["questions"][-1]


def race_doc_to_choice(doc: dict) -> list[str]:
    return list(doc["options"][-1])


def race_doc_to_target(doc: dict) -> int:
    return _LETTERS.index(doc["answers"][-1])
