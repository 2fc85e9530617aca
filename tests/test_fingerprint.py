"""The code fingerprint of each rule follows the package code its script reaches (issue 14)."""

import shutil
from pathlib import Path

import pytest

from lorp.workflow import fingerprint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def copy(tmp_path):
    """A private copy of the workflow's code: ``rules/``, ``scripts/`` and ``src/lorp``."""
    for name in ("rules", "scripts", "src"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return tmp_path


def codes(root):
    for cached in (fingerprint.rule_code, fingerprint.rule_scripts, fingerprint.script_items,
                   fingerprint._tree, fingerprint._module_file):
        cached.cache_clear()
    return {rule: fingerprint.rule_code(rule, root) for rule in fingerprint.rule_scripts(root)}


def edit(root, module, old, new):
    path = root / "src" / "lorp" / module
    text = path.read_text()
    assert old in text, (module, old)
    path.write_text(text.replace(old, new, 1))


def changed(before, after):
    return {rule for rule in before if before[rule] != after[rule]}


def test_every_rule_with_a_script_has_a_fingerprint(copy):
    before = codes(copy)
    assert {"plan", "similarity", "capture_activations", "evaluate_pruned", "sensitivity"} <= set(before)
    assert all(len(code) == 16 for code in before.values())
    plan = fingerprint.rule_definitions("plan", copy)
    assert "lorp.workflow.stages.depth:make_plan" in plan
    assert not any(d.startswith("lorp.workflow.stages.depth:compute_similarity") for d in plan)
    assert not any(d.startswith("lorp.workflow.stages.calibration:") for d in plan)


def test_a_method_body_reruns_plans_not_capture_or_similarity(copy):
    before = codes(copy)
    edit(copy, "depth/methods.py", "    starts = n - budget  #", "    starts = n - budget + 0  #")
    moved = changed(before, codes(copy))
    assert "plan" in moved
    assert not moved & {"calibration_tokens", "capture_activations", "similarity", "structure", "prepare_model",
                        "evaluate_dense", "input_norms"}


def test_a_stage_function_reruns_its_rule_only(copy):
    before = codes(copy)
    edit(copy, "workflow/stages/depth.py", "    write_npy(outputs[\"cosine\"], cosine)",
         "    write_npy(outputs[\"cosine\"], cosine[:, :])")
    assert changed(before, codes(copy)) == {"similarity"}


def test_a_figure_colour_reruns_figures_only(copy):
    before = codes(copy)
    edit(copy, "figures.py", 'DENSE_COLOR = "#000000"', 'DENSE_COLOR = "#000001"')
    moved = changed(before, codes(copy))
    assert moved and all(r.startswith("figure_") or r in ("k_ablation", "sensitivity") for r in moved), moved


def test_comments_docstrings_and_formatting_rerun_nothing(copy):
    before = codes(copy)
    edit(copy, "depth/methods.py", "def streamline_plan(", "# a comment\n\n\ndef streamline_plan(")
    edit(copy, "depth/methods.py", '"""Streamline: remove', '"""Streamline (reworded): remove')
    edit(copy, "depth/similarity.py", "    s = gram / count", "    s = (gram / count)  # parentheses")
    assert changed(before, codes(copy)) == set()


def test_a_registration_counts_for_every_plan(copy):
    """A method's registration runs when its module is imported: a default changed there reruns the plans."""
    before = codes(copy)
    edit(copy, "depth/methods.py", '"protect_first": {"type": "boolean", "default": True,',
         '"protect_first": {"type": "boolean", "default": False,')
    moved = changed(before, codes(copy))
    assert "plan" in moved and "similarity" not in moved
