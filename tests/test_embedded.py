"""Invariants on the real embedded model (SmolLM2-135M, 30 Llama blocks)."""

import math
import shutil

import numpy as np
import pytest
import torch

from lorp.workflow.stages.calibration import capture, sample_calibration, sample_held_out
from lorp.workflow.stages.depth import analyse_structure, choose_auto_plan, compute_similarity, make_plan
from lorp.workflow.stages.evaluation import evaluate_perplexity
from lorp.workflow.stages.model import export_checkpoint, load_evaluated
from lorp.data import special_prefix
from lorp.io import read_json
from lorp.depth.methods import METHODS
from lorp.models import UnsupportedModelError, get_decoder_layers, load, load_tokenizer, source_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def analysed(embedded_dir, tmp_path_factory):
    """Calibration, capture, similarity and structure on a tiny calibration set."""
    d = tmp_path_factory.mktemp("analysis")
    spec = {"source": "python-docs", "n_samples": 6, "seqlen": 48, "seed": 0}
    sample_calibration(embedded_dir, spec, d / "tokens.npy", d / "meta.json")
    capture(embedded_dir, d / "tokens.npy", d / "act", {"dtype": "float16", "tokens_per_sequence": 16, "seed": 1},
            {"device": "auto", "dtype": "auto"}, batch_size=4)
    outputs = {k: d / f"{k}.out" for k in ("cosine", "csv", "heatmap", "extended", "last_token")}
    outputs.update(cosine=d / "cosine.npy", extended=d / "ext.npy", last_token=d / "last.npy")
    compute_similarity(d / "act", outputs, {"statistic": "cosine"})
    analyse_structure(d / "cosine.npy", d / "rls.json", {"k": None, "rls_thresholds": [1.0, 0.7], "random_state": 0})
    return d


def test_prepared_model_manifest_and_generation(embedded_dir):
    info = read_json(embedded_dir / "model.json")
    assert info["num_hidden_layers"] == 30 and info["model_type"] == "llama"
    model, tok, _ = load(embedded_dir)
    ids = tok("The Python keyword to define a function is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5


def test_activation_files(analysed):
    manifest = read_json(analysed / "act" / "manifest.json")
    assert manifest["n_layers"] == 30 and len(manifest["files"]) == 31
    assert manifest["shape"] == [6 * 16, 576]
    positions = np.asarray(manifest["positions"])
    assert (positions[:, -1] == 47).all()  # the last token is always kept
    layer0 = np.load(analysed / "act" / "layer_000.npy", mmap_mode="r")
    assert layer0.dtype == np.float16 and layer0.shape == (96, 576)
    assert np.isfinite(np.asarray(layer0)).all()
    assert not list(analysed.glob(".*tmp*")), "temporary files left behind"


def test_similarity_invariants(analysed):
    s = np.load(analysed / "cosine.npy")
    assert s.shape == (30, 30)
    assert np.array_equal(s, s.T)
    assert np.all(np.diag(s) == 1.0)
    assert s.min() >= -1.0 and s.max() <= 1.0
    ext = np.load(analysed / "ext.npy")
    assert ext.shape == (31, 31) and np.array_equal(ext[:30, :30], s)


def test_rls_matches_cosine(analysed):
    s = np.load(analysed / "cosine.npy")
    rls = read_json(analysed / "rls.json")
    mean = s[np.triu_indices(30, 1)].mean()
    assert rls["rls"] == pytest.approx(-math.log2(mean), rel=1e-12)
    assert sorted(sum((c["members"] for c in rls["clusters"]), [])) == list(range(30))
    firsts = [c["first"] for c in rls["clusters"]]
    assert firsts == sorted(firsts) and rls["labels"][0] == 0


def test_auto_keeps_the_candidate_of_lowest_held_out_perplexity(embedded_dir, analysed, tmp_path):
    """Held-out windows are the ones after the calibration's in the same draw; auto's plan is the candidate of
    lowest perplexity on them, and that perplexity is the pruned model's, computed independently."""
    from lorp.evaluation.perplexity import perplexity

    spec = {"source": "python-docs", "n_samples": 6, "seqlen": 48, "seed": 0}
    meta = sample_held_out(embedded_dir, spec, 2, analysed / "tokens.npy", tmp_path / "held.npy",
                           tmp_path / "held.json")
    assert meta["window_index"] == [6, 7] and np.load(tmp_path / "held.npy").shape == (2, 48)
    files = {"extended": analysed / "ext.npy", "last_token": analysed / "last.npy", "structure": analysed / "rls.json"}
    candidates = []
    for method in ("shortgpt", "streamline", "last"):
        path = tmp_path / f"{method}.json"
        make_plan(method, 4, {n: files[n] for n in METHODS[method].inputs}, path, {})
        candidates.append({"method": method, "statistic": "cosine", "plan": path})
    compute = {"device": "cpu", "dtype": "auto"}
    plan = choose_auto_plan(embedded_dir, tmp_path / "held.npy", candidates, 4, tmp_path / "auto.json",
                            compute, batch_size=2)
    scores = {c["method"]: c["held_out_ppl"] for c in plan.details["candidates"]}
    best = min(scores, key=scores.get)
    assert plan.pruned == read_json(tmp_path / f"{best}.json")["pruned"] and plan.details["chosen"]["method"] == best
    model, _ = load_evaluated({"model": embedded_dir, "plan": tmp_path / "auto.json"}, compute)
    again = perplexity(model, np.load(tmp_path / "held.npy").astype(np.int64), batch_size=1).ppl
    assert again == pytest.approx(scores[best], rel=1e-4)
    with pytest.raises(RuntimeError, match="differ from the calibration tokens"):
        sample_held_out(embedded_dir, {**spec, "seed": 1}, 2, analysed / "tokens.npy", tmp_path / "x.npy",
                        tmp_path / "x.json")


# auto and SLEB plan by forward passes (auto: the next test; SLEB: tests/test_sleb.py); their plans export alike
@pytest.mark.parametrize("method", [m for m in METHODS if m != "auto" and not METHODS[m].runs_model])
def test_exported_checkpoint_gives_the_logits_of_the_model_built_in_memory(method, embedded_dir, analysed, tmp_path):
    files = {"extended": analysed / "ext.npy", "last_token": analysed / "last.npy", "structure": analysed / "rls.json"}
    plan = make_plan(method, 5, {name: files[name] for name in METHODS[method].inputs}, tmp_path / "plan.json", {})
    ckpt = tmp_path / "ckpt"
    sources = {"model": embedded_dir, "plan": tmp_path / "plan.json"}
    compute = {"device": "cpu", "dtype": "auto"}
    export_checkpoint(sources, ckpt, compute)
    config = read_json(ckpt / "config.json")
    assert config["num_hidden_layers"] == len(plan.kept) == 25 and config["dtype"] == "bfloat16"
    assert read_json(ckpt / "plan.json")["pruned"] == plan.pruned

    # the model the evaluations build in memory, and the reloaded export: identical logits
    model, tok = load_evaluated(sources, compute)
    assert len(get_decoder_layers(model)) == 25
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    assert len(get_decoder_layers(reloaded)) == 25
    ids = tok("def add(a, b):\n    return", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        expected = model(ids).logits
        got = reloaded(ids).logits
        assert torch.equal(expected, got)
        # KV-cache decoding agrees with a full forward: layer_idx was renumbered
        prefix = reloaded(ids[:, :-1], use_cache=True)
        step = reloaded(ids[:, -1:], past_key_values=prefix.past_key_values, use_cache=True).logits[0, -1]
        torch.testing.assert_close(step.float(), got[0, -1].float(), atol=0.05, rtol=0.02)


def test_unsupported_architecture_is_named():
    from transformers import GPT2Config, GPT2LMHeadModel

    tiny = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(UnsupportedModelError, match="'gpt2'.*Supported families: llama, qwen2"):
        get_decoder_layers(tiny)


def test_failed_capture_leaves_nothing(embedded_dir, analysed, tmp_path, monkeypatch):
    model, _, _ = load(embedded_dir)
    tokens = np.load(analysed / "tokens.npy")
    calls = {"n": 0}
    block = get_decoder_layers(model)[10]
    original = block.forward

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated failure in the second batch")
        return original(*args, **kwargs)

    monkeypatch.setattr(block, "forward", failing)
    from lorp.capture import capture_activations

    with pytest.raises(RuntimeError, match="simulated"):
        capture_activations(model, tokens, tmp_path / "act", batch_size=3)
    assert list(tmp_path.iterdir()) == []


def test_float16_overflow_and_nan_are_clear_errors_and_leave_nothing(embedded_dir, analysed, tmp_path):
    """Hidden states beyond float16's range (as Gemma 3's are) stop the capture with the fix named,
    instead of storing inf that would poison the similarity."""
    from lorp.capture import capture_activations

    model, _, _ = load(embedded_dir)
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(1e6)
    tokens = np.load(analysed / "tokens.npy")
    with pytest.raises(OverflowError, match="activations_dtype: float32"):
        capture_activations(model, tokens, tmp_path / "act", batch_size=3, dtype="float16")
    assert list(tmp_path.iterdir()) == []
    # float32 storage holds them (a few blocks suffice to show it)
    model.model.layers = model.model.layers[:2]
    capture_activations(model, tokens[:2], tmp_path / "act32", batch_size=2, dtype="float32")
    assert np.abs(np.load(tmp_path / "act32" / "layer_001.npy")).max() > 65504
    with torch.no_grad():
        model.model.embed_tokens.weight[int(tokens[0, 0])] = float("nan")
    with pytest.raises(FloatingPointError, match="contain nan: the forward pass itself failed in float32; check"):
        capture_activations(model, tokens, tmp_path / "nan", batch_size=3, dtype="float32")
    assert not (tmp_path / "nan").exists()


def test_pruned_perplexity_row(embedded_dir, tmp_path):
    datasets = {"python-docs": {"source": "python-docs", "seqlen": 64, "max_windows": 2, "join": "\n\n"}}
    rows = evaluate_perplexity({"model": embedded_dir}, datasets, tmp_path / "ppl.csv", {"model": "m"},
                              {"device": "auto", "dtype": "auto"}, batch_size=4)
    assert rows[0]["n_windows"] == 2 and rows[0]["n_tokens"] == 2 * 63 and rows[0]["prefix_tokens"] == 0
    assert 1.0 < rows[0]["ppl"] < 200.0
    text = (tmp_path / "ppl.csv").read_text().splitlines()
    assert text[0].startswith("model,calib,method,budget,n_layers,dataset,seqlen,prefix_tokens")
    # SmolLM2's tokenizer puts nothing before a text, so a BOS per window leaves its windows as they are
    assert special_prefix(load_tokenizer(source_of(embedded_dir)[0])) == []
    shutil.rmtree(tmp_path)


def test_chunked_lm_head_equals_full_logits_and_efficiency_runs(embedded_dir, monkeypatch):
    """The NLL computed a few positions at a time equals the loss over full-window logits, also when
    the logits budget forces one position per chunk; the efficiency measurement runs on the model."""
    from lorp.evaluation import perplexity as ppl
    from lorp.evaluation.efficiency import EfficiencySettings, interleaved, result as efficiency_row

    model, _, _ = load(embedded_dir)
    windows = torch.randint(0, 1000, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        logits = model(input_ids=windows).logits.float()
    full = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), windows[:, 1:], reduction="none")
    expected = full.double().sum(dim=1)
    assert torch.allclose(ppl.window_nll(model, windows, logits_chunk=5), expected, rtol=1e-5)
    monkeypatch.setattr(ppl, "LOGITS_BUDGET", 1)  # one position at a time
    assert torch.allclose(ppl.window_nll(model, windows), expected, rtol=1e-5)
    # behind a 3-token prefix only the tokens after it are scored
    assert torch.allclose(ppl.window_nll(model, windows, logits_chunk=4, first_target=3),
                          full[:, 2:].double().sum(dim=1), rtol=1e-5)
    result = ppl.perplexity(model, windows.numpy(), batch_size=1, prefix_tokens=3)
    assert result.n_tokens == 2 * 21
    assert result.nll == pytest.approx(float(full[:, 2:].double().mean()), rel=1e-5)
    cfg = EfficiencySettings(seqlen=8, decode_tokens=2, warmup=0, repeats=1)
    row = efficiency_row(model, interleaved({"dense": model}, cfg)["dense"], cfg)
    assert row.n_params == sum(p.numel() for p in model.parameters())
    assert row.prefill_tokens_per_s > 0 and row.decode_ms_per_token > 0


def test_parameter_count_without_weights_equals_the_loaded_model(embedded_dir, tmp_path):
    """A local or hub model is counted on the meta device (for cluster resources): the tied LM head
    of SmolLM2 counts once there too."""
    from lorp.models import ModelSource, prepare_model

    info = prepare_model(ModelSource("local", str(embedded_dir / "hf")), tmp_path, "auto")
    assert info["n_parameters"] == read_json(embedded_dir / "model.json")["n_parameters"] == 134_515_008


def test_a_device_map_places_the_same_model(embedded_dir):
    """compute.device_map (Accelerate's placement over several GPUs, for a model larger than one) takes the
    same loading path on the CPU stand-in: the placed model has a device map and gives the plain model's
    logits, and a pruned copy built from it in memory leaves it intact."""
    from lorp.evaluation.pruned import build_pruned

    placed, tok, _ = load(embedded_dir, "cpu", "auto", device_map="auto")
    plain, _, _ = load(embedded_dir, "cpu", "auto")
    assert {p.device.type for p in placed.parameters()} == {"cpu"}
    ids = tok("def add(a, b):\n    return", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        assert torch.equal(placed(ids).logits, plain(ids).logits)
        pruned = build_pruned(placed, {"family": "depth", "n_layers": 30, "pruned": [20, 21], "kept": []},
                              keep_dense=True)
        assert len(get_decoder_layers(pruned)) == 28 and len(get_decoder_layers(placed)) == 30
        assert torch.equal(placed(ids).logits, plain(ids).logits)
