"""SparseGPT as the workflow's metric ``sparsegpt`` on a tiny random Llama: the Hessians measured by the
sequential protocol, the plan's zeros in every row, the reconstruction beating Wanda's mask on the same
plan, and the stored pruned weights rebuilding the model bit for bit (lorp.sparse.stored)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lorp.evaluation.pruned import build_pruned
from lorp.sparse import plan as sp
from lorp.sparse.norms import block_linears, block_shapes, prune_sequentially
from lorp.sparse.prune import measure_pruned, prune_to_plan
from lorp.sparse.stored import holds_weights, write_pruned_weights

PARAMS = {"blocksize": 16, "damping": 0.01, "hessian_dtype": "float64"}
TOKENS = np.random.default_rng(0).integers(0, 64, size=(6, 16))


def _tiny_llama(layers: int = 3):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.from_numpy(TOKENS)).logits


def test_the_first_blocks_hessians_are_those_of_its_normed_embeddings():
    """Block 0's attention projections read its input layer norm's output: their Hessian is 2 X^T X / n of
    those rows, one tensor shared by q, k and v; the measurement is the same however the tokens are batched."""
    model = _tiny_llama()
    with torch.no_grad():
        x = model.model.layers[0].input_layernorm(model.model.embed_tokens(torch.from_numpy(TOKENS))).reshape(-1, 32)
    expected = 2 * x.double().T @ x.double() / x.shape[0]
    seen = {}
    for batch in (2, 6):
        prune_sequentially(model, TOKENS, lambda b, h: seen.setdefault((batch, b), h), batch_size=batch,
                           hessians=torch.float64)
        first = seen[(batch, 0)]
        torch.testing.assert_close(first["self_attn.q_proj"], expected, rtol=1e-10, atol=1e-12)
        assert first["self_attn.k_proj"] is first["self_attn.q_proj"] is first["self_attn.v_proj"]
        assert first["mlp.down_proj"].shape == (48, 48)


@pytest.mark.parametrize("allocation", ["owl", "2of4"])
def test_sparsegpt_meets_the_plan_and_reconstructs_better_than_wandas_mask(allocation):
    """Every row has the plan's zeros (or the 2:4 pattern), the kept weights changed, and the pruned
    model's logits are closer to the dense model's than those of Wanda's mask at the same plan."""
    dense = _tiny_llama()
    shapes = block_shapes(dense)
    if allocation == "2of4":
        plans = {m: sp.nm_plan(m, 2, 4, shapes) for m in ("sparsegpt", "wanda")}
    else:
        plans = {m: sp.owl_plan(m, 0.6, [{"outlier_ratio": r, "n_params": 1, "linears": s}
                                         for r, s in zip([0.1, 0.3, 0.2], shapes)], lam=0.05) for m in ("sparsegpt", "wanda")}
    errors = {}
    for metric, plan in plans.items():
        model = _tiny_llama()
        used = prune_to_plan(model, plan, tokens=TOKENS, batch_size=3, params=PARAMS)
        if metric == "sparsegpt":
            assert used == [None] * 3  # no norms recorded: its Hessians are freed once its block is pruned
        else:
            assert all(used)  # Wanda's sequential norms, one set per block
        measured = measure_pruned(model, plan)
        assert all(v["row_shortfall"] == 0 for b in measured["blocks"] for v in b["linears"].values())
        if allocation == "2of4":  # exactly two of every four inputs kept (the random weights have no zeros)
            for block in model.model.layers:
                for linear in block_linears(block).values():
                    assert ((linear.weight.reshape(-1, 4) != 0).sum(dim=1) == 2).all()
        errors[metric] = float((_logits(model) - _logits(dense)).pow(2).mean())
        pruned, original = model.model.layers[1].mlp.up_proj.weight, dense.model.layers[1].mlp.up_proj.weight
        kept = pruned != 0
        moved = float((pruned[kept] != original[kept]).float().mean())
        # SparseGPT updates the weights it keeps (most of them move); a mask leaves them as they were
        assert moved > 0.5 if metric == "sparsegpt" else moved == 0.0
    assert errors["sparsegpt"] < errors["wanda"]


def test_the_stored_weights_rebuild_the_sparsegpt_model_bit_for_bit(tmp_path):
    staged = _tiny_llama()
    plan = sp.uniform_plan("sparsegpt", 0.7, block_shapes(staged))
    prune_to_plan(staged, plan, tokens=TOKENS, batch_size=3, params=PARAMS)
    measured = measure_pruned(staged, plan)
    write_pruned_weights(tmp_path / "w.safetensors", staged, 3)
    dense_bytes = sum(lin.weight.numel() * 4 for block in staged.model.layers for lin in block_linears(block).values())
    assert (tmp_path / "w.safetensors").stat().st_size < 0.45 * dense_bytes  # 30% of the values and one bit each

    rebuilt = build_pruned(_tiny_llama(), plan.to_dict(), measured=measured, weights=tmp_path / "w.safetensors")
    for name, tensor in staged.state_dict().items():
        assert torch.equal(tensor, rebuilt.state_dict()[name]), name
    copy = build_pruned(_tiny_llama(), plan.to_dict(), measured=measured, weights=tmp_path / "w.safetensors", keep_dense=True)
    assert torch.equal(_logits(copy), _logits(staged))

    write_pruned_weights(tmp_path / "none.safetensors", None, 3)  # what a masking metric's stage writes
    assert holds_weights(tmp_path / "w.safetensors") and not holds_weights(tmp_path / "none.safetensors")
    with pytest.raises(ValueError, match="rebuilt from its stored pruned weights; none were given"):
        build_pruned(_tiny_llama(), plan.to_dict(), measured=measured, weights=tmp_path / "none.safetensors")


def test_obs_scales_are_the_inverse_cholesky_diagonal_and_wandas_norms_for_orthogonal_inputs():
    """``1 / U_jj`` is the Schur complement of the damped H on input j given the later ones (a known answer
    from numpy's inverse); a dead input gets 0; inputs that never co-occur (diagonal H, no damping to speak
    of) give Wanda's norms up to one factor."""
    from lorp.sparse.sparsegpt import obs_input_scales

    x = torch.from_numpy(np.random.default_rng(3).normal(size=(200, 6)))
    x[:, 2] = 0
    h = 2 * x.T @ x / 200
    damped = h.clone()
    damped[2, 2] = 1
    damped.diagonal().add_(0.01 * float(damped.diagonal().mean()))
    expected = [1 / np.sqrt(np.linalg.inv(damped.numpy()[j:, j:])[0, 0]) for j in range(6)]
    expected[2] = 0.0
    np.testing.assert_allclose(obs_input_scales(h, 0.01).numpy(), expected, rtol=1e-10)

    sparse_rows = torch.zeros(60, 3, dtype=torch.float64)  # each token uses one input: X X^T is diagonal
    sparse_rows[:20, 0], sparse_rows[20:40, 1], sparse_rows[40:, 2] = 1.0, 2.0, 5.0
    r = obs_input_scales(2 * sparse_rows.T @ sparse_rows / 60, 1e-9)
    norms = sparse_rows.norm(dim=0)
    torch.testing.assert_close(r / r[0], norms / norms[0], rtol=1e-6, atol=0)
