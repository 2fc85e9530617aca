"""Tables and figures on hand-built rows and matrices: known answers, no model."""

import numpy as np
import pandas as pd
import pytest

from lorp import figures, tables


def ppl_rows():
    rows = []
    for method, budget, n, a, b in [("dense", 0, 8, 10.0, 20.0), ("lorp", 2, 6, 12.0, 24.0), ("last", 2, 6, 20.0, 40.0)]:
        for dataset, ppl in (("wikitext2", a), ("c4", b)):
            rows.append({"model": "m", "calib": "-" if method == "dense" else "c4", "method": method,
                         "budget": budget, "n_layers": n, "dataset": dataset, "ppl": ppl})
    return pd.DataFrame(rows)


@pytest.fixture
def drawn_lines(monkeypatch):
    """What every ``Axes.errorbar`` call of a figure drew, by label: (x, y, error bars or None)."""
    from matplotlib.axes import Axes

    drawn = {}
    errorbar = Axes.errorbar

    def record_line(ax, x, y, yerr=None, **kw):
        drawn[kw["label"]] = (list(x), list(y), None if yerr is None else list(yerr))
        return errorbar(ax, x, y, yerr=yerr, **kw)

    monkeypatch.setattr(Axes, "errorbar", record_line)
    return drawn


def test_perplexity_table_mean_and_relative_change():
    t = tables.perplexity_table(ppl_rows())
    assert list(t["method"]) == ["dense", "last", "lorp"]
    row = t.set_index("method")
    assert row.loc["dense", "mean_ppl"] == 15.0 and row.loc["dense", "change_%"] == 0.0
    assert row.loc["lorp", "mean_ppl"] == 18.0 and row.loc["lorp", "change_%"] == pytest.approx(20.0)
    assert row.loc["last", "change_%"] == pytest.approx(100.0)
    md = tables.to_markdown(t, "Perplexity", "note")
    assert md.startswith("# Perplexity\n\nnote\n\n|") and "| lorp " in md


def test_perplexity_summary_names_the_models_evaluated_with_a_bos(tmp_path):
    from lorp.workflow.stages.reports import summarise

    frame = ppl_rows()
    frame["prefix_tokens"] = 0
    gemma = frame.assign(model="gemma", prefix_tokens=1)
    paths = []
    for name, part in (("m", frame), ("gemma", gemma)):
        paths.append(tmp_path / f"{name}.csv")
        part.to_csv(paths[-1], index=False)
    summarise("ppl", paths, tmp_path / "ppl.csv", tmp_path / "ppl.md", tmp_path / "table.csv")
    md = (tmp_path / "ppl.md").read_text()
    assert "starts with the tokenizer's BOS for gemma (`bos_per_window`)" in md
    summarise("ppl", paths[:1], tmp_path / "ppl.csv", tmp_path / "ppl.md", tmp_path / "table.csv")
    assert "BOS" not in (tmp_path / "ppl.md").read_text()


def test_task_table_reports_acc_norm_where_present_in_percent():
    rows = []
    for method, arc_acc, arc_norm, copa in [("dense", 0.5, 0.6, 0.7), ("lorp", 0.4, 0.5, 0.6)]:
        base = {"model": "m", "calib": "-", "method": method, "budget": 0 if method == "dense" else 2, "n_layers": 8}
        rows += [{**base, "task": "arc_easy", "metric": "acc", "value": arc_acc, "stderr": 0.01},
                 {**base, "task": "arc_easy", "metric": "acc_norm", "value": arc_norm, "stderr": 0.03},
                 {**base, "task": "copa", "metric": "acc", "value": copa, "stderr": 0.04 if method == "dense" else ""}]
    t = tables.task_table(pd.DataFrame(rows)).set_index("method")
    assert t.loc["dense", "arc_easy"] == pytest.approx(60.0) and t.loc["dense", "copa"] == pytest.approx(70.0)
    assert t.loc["dense", "mean_acc"] == pytest.approx(65.0)
    assert t.loc["lorp", "change"] == pytest.approx(-10.0)
    # the mean's standard error from acc_norm's and copa's: sqrt(3^2 + 4^2) / 2 points; none where one is missing
    assert t.loc["dense", "mean_acc_stderr"] == pytest.approx(2.5) and pd.isna(t.loc["lorp", "mean_acc_stderr"])


def test_efficiency_table_ratios():
    base = {"model": "m", "calib": "-", "device": "cpu", "dtype": "float32", "weights_bytes": 1}
    one = {f"{k}_speedup{x}": 1.0 for k in ("prefill", "decode") for x in ("", "_min", "_max")}
    paired = {"prefill_speedup": 1.8, "prefill_speedup_min": 1.5, "prefill_speedup_max": 2.1, "decode_speedup": 1.9,
              "decode_speedup_min": 1.7, "decode_speedup_max": 2.2}
    rows = pd.DataFrame([
        {**base, "method": "dense", "budget": 0, "n_layers": 8, "n_params": 100, "peak_memory_mib": 10.0,
         "prefill_tokens_per_s": 50.0, "decode_ms_per_token": 20.0, **one},
        {**base, "method": "lorp", "budget": 2, "n_layers": 6, "n_params": 80, "peak_memory_mib": 9.0,
         "prefill_tokens_per_s": 100.0, "decode_ms_per_token": 10.0, **paired},
    ])
    t = tables.efficiency_table(rows).set_index("method")  # rows made before n_nonzero was recorded
    assert t.loc["lorp", "params_ratio"] == pytest.approx(0.8) and np.isnan(t.loc["lorp", "nonzero_ratio"])
    # the speed-ups measured side by side in the job, not the ratio of throughputs timed at other moments (2.0)
    assert t.loc["lorp", "prefill_speedup"] == 1.8 and t.loc["lorp", "decode_speedup"] == 1.9
    assert (t.loc["lorp", "prefill_speedup_min"], t.loc["lorp", "prefill_speedup_max"]) == (1.5, 2.1)
    assert t.loc["dense", "decode_speedup"] == 1.0
    sparse = {**base, "method": "wanda-mrp", "budget": 50, "n_layers": 8, "n_params": 100, "n_nonzero": 45,
              "peak_memory_mib": 10.0, "prefill_tokens_per_s": 50.0, "decode_ms_per_token": 20.0, **one}
    rows = pd.concat([rows.assign(n_nonzero=[90, 72]), pd.DataFrame([sparse])], ignore_index=True)
    t = tables.efficiency_table(rows).set_index("method")
    assert t.loc["wanda-mrp", "params_ratio"] == 1.0 and t.loc["wanda-mrp", "nonzero_ratio"] == pytest.approx(0.5)


def test_nonzero_parameters_count_a_tied_head_once():
    from transformers import LlamaConfig, LlamaForCausalLM

    import torch

    cfg = LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    from lorp.models import count_parameters

    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.zero_()
    # 600 = embeddings 128 + the block 8 * 8 * 4 attention + 3 * 64 MLP + 2 * 8 norms + the final norm 8: the
    # tied head counted once (its tensor twice would be 728), and the 8 x 8 zeroed weights out of the nonzero
    assert count_parameters(model) == 600 and count_parameters(model, nonzero=True) == 536
    model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.detach().clone())
    assert count_parameters(model) == 600  # tied by its config, held as two tensors (as some loaders leave it)


def test_cluster_boundaries_and_distance_profile():
    assert figures.cluster_boundaries([0, 0, 1, 1, 1, 2]) == [1.5, 4.5]
    assert figures.cluster_boundaries([0, 0, 0]) == []
    n = 5
    s = np.array([[1.0 - 0.1 * abs(i - j) for j in range(n)] for i in range(n)])
    x, y = figures.distance_profile(s)
    assert x.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert y == pytest.approx([0.9, 0.8, 0.7, 0.6])


def test_figures_are_png_and_byte_identical_on_rerun(tmp_path):
    s = np.eye(6) * 0.5 + 0.5
    outputs = []
    for run in range(2):
        a, b = tmp_path / f"heat{run}.png", tmp_path / f"map{run}.png"
        figures.heatmap_with_plans(s, [0, 0, 0, 1, 1, 1], 1.0, 2, {"lorp": [2, 4], "last": [3, 4]}, 2, a, "t")
        figures.pruned_layer_map({2: {"lorp": [2, 4], "last": [3, 4]}, 1: {"lorp": [2], "last": [4]}}, 6, b, "t")
        outputs.append((a.read_bytes(), b.read_bytes()))
    assert outputs[0][0][:4] == b"\x89PNG" and outputs[0] == outputs[1]
    frame = pd.DataFrame({"model": ["m"] * 4, "calib": ["c"] * 4, "method": ["dense", "lorp", "lorp", "last"],
                          "budget": [0, 1, 2, 2], "mean_ppl": [10.0, 11.0, 13.0, 20.0]})
    figures.metric_vs_budget(frame, "mean_ppl", tmp_path / "vs.png", "ppl", "t", log=True)
    figures.k_ablation(pd.DataFrame({"model": ["m"] * 4, "k": [2, 3, 2, 3], "budget": [1, 1, 2, 2],
                                     "mean_ppl": [11.0, 12.0, 13.0, 14.0]}), tmp_path / "k.png", {"m": 3})
    assert (tmp_path / "vs.png").stat().st_size > 1000 and (tmp_path / "k.png").stat().st_size > 1000


def test_accuracy_against_sparsity_draws_the_sparse_rows_with_their_standard_errors(tmp_path, monkeypatch,
                                                                                     drawn_lines):
    """From the zero-shot table: one line per sparse method with lm-eval's standard error of its mean
    accuracy as error bars (none drawn where the table has none), the dense model as the reference line;
    depth methods and recovered models are not on a sparsity axis and are left out."""
    from matplotlib.axes import Axes

    from lorp.workflow.stages.reports import draw_metric_vs_sparsity

    rows = [("dense", 0, 50.0, 1.0), ("wanda-uniform", 50, 45.0, 1.5), ("wanda-uniform", 60, 40.0, 1.7),
            ("sparsegpt-mrp", 50, 44.0, ""), ("shortgpt", 3, 30.0, 1.6), ("shortgpt-3+patch", 3, 35.0, 1.6)]
    table = pd.DataFrame([{"model": "m", "calib": "-" if m == "dense" else "c", "method": m, "budget": b,
                           "arc_easy": acc, "mean_acc": acc, "mean_acc_stderr": se, "change": acc - 50.0}
                          for m, b, acc, se in rows])
    table.to_csv(tmp_path / "tasks_table.csv", index=False)
    lines = []
    axhline = Axes.axhline

    def record_reference(ax, y, **kw):
        lines.append(y)
        return axhline(ax, y, **kw)

    monkeypatch.setattr(Axes, "axhline", record_reference)
    draw_metric_vs_sparsity(tmp_path / "tasks_table.csv", "tasks", tmp_path / "tasks_vs_sparsity.png")
    # the two lines are set 0.12 apart (1.2% of the targets' span), so that their bars do not overlap
    assert drawn_lines == {"wanda-uniform": (pytest.approx([49.94, 59.94]), [45.0, 40.0], [1.5, 1.7]),
                           "sparsegpt-mrp": (pytest.approx([50.06]), [44.0], [0.0])}
    assert lines == [50.0] and (tmp_path / "tasks_vs_sparsity.png").read_bytes()[:4] == b"\x89PNG"


def test_accuracy_against_budget_draws_the_depth_rows_with_their_standard_errors(tmp_path, drawn_lines):
    """The depth methods' accuracy against the budget carries lm-eval's standard error of the mean accuracy
    as error bars, the lines set apart so that their bars do not hide one another; sparse rows are left out."""
    from lorp.workflow.stages.reports import draw_metric_vs_budget

    rows = [("dense", 0, 50.0, 1.0), ("lorp", 2, 45.0, 1.5), ("lorp", 4, 40.0, 1.7), ("last", 2, 42.0, 1.6),
            ("last", 4, 35.0, ""), ("wanda-uniform", 50, 44.0, 1.4)]
    pd.DataFrame([{"model": "m", "calib": "-" if m == "dense" else "c", "method": m, "budget": b,
                   "arc_easy": acc, "mean_acc": acc, "mean_acc_stderr": se, "change": acc - 50.0}
                  for m, b, acc, se in rows]).to_csv(tmp_path / "tasks_table.csv", index=False)
    draw_metric_vs_budget(tmp_path / "tasks_table.csv", "tasks", tmp_path / "tasks_vs_budget.png")
    # two lines over budgets 2 to 4 are set 0.024 apart (1.2% of the span)
    assert drawn_lines == {"lorp": (pytest.approx([1.988, 3.988]), [45.0, 40.0], [1.5, 1.7]),
                           "last": (pytest.approx([2.012, 4.012]), [42.0, 35.0], [1.6, 0.0])}
    assert (tmp_path / "tasks_vs_budget.png").read_bytes()[:4] == b"\x89PNG"


def test_pooled_seeds_are_drawn_at_their_budgets_with_their_spread(tmp_path, drawn_lines):
    """With seed_groups the error bars are the seeds' standard deviation and the lines stay on the budgets,
    even when an ``errors`` column is named as well (it is then not drawn)."""
    table = pd.DataFrame([{"model": "m", "calib": calib, "method": method, "budget": budget, "mean_ppl": ppl,
                           "se": 0.5}
                          for method, calib, budget, ppl in [("lorp", "c-s0", 2, 10.0), ("lorp", "c-s1", 2, 12.0),
                                                             ("last", "c-s0", 2, 20.0), ("last", "c-s1", 2, 20.0),
                                                             ("lorp", "c-s0", 4, 14.0), ("lorp", "c-s1", 4, 14.0)]])
    figures.metric_vs_budget(table, "mean_ppl", tmp_path / "vs.png", "ppl", "t",
                             seed_groups={"c-s0": "c", "c-s1": "c"}, errors="se")
    assert drawn_lines == {"lorp": ([2, 4], [11.0, 14.0], pytest.approx([2 ** 0.5, 0.0])),
                           "last": ([2], [20.0], [0.0])}
