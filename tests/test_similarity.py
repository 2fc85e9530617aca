"""Out-of-core cosine similarity against hand-built activations."""

import numpy as np
import pytest

from lorp.depth.similarity import cosine_from_arrays, cosine_from_directory


def make_layers(rng, t=10, d=6):
    a = rng.normal(size=(t, d))
    b = rng.normal(size=(t, d))
    b -= (b * a).sum(1, keepdims=True) / (a * a).sum(1, keepdims=True) * a  # row-wise orthogonal to a
    return [a, 3.0 * a, -a, b]


def test_known_cosines():
    layers = make_layers(np.random.default_rng(0))
    result = cosine_from_arrays(layers)
    expected = np.array([[1, 1, -1, 0], [1, 1, -1, 0], [-1, -1, 1, 0], [0, 0, 0, 1]], dtype=float)
    np.testing.assert_allclose(result.extended, expected, atol=1e-6)
    np.testing.assert_allclose(result.cosine, expected[:3, :3], atol=1e-6)
    assert result.n_tokens == 10


def test_mean_over_tokens_and_chunking():
    rng = np.random.default_rng(1)
    layers = [rng.normal(size=(17, 5)).astype(np.float16) for _ in range(4)]
    full = cosine_from_arrays(layers, last_token_rows=np.array([3, 16]))
    chunked = cosine_from_arrays(layers, last_token_rows=np.array([3, 16]), chunk_tokens=4)
    np.testing.assert_allclose(full.extended, chunked.extended, atol=1e-6)
    np.testing.assert_allclose(full.last_token, chunked.last_token, atol=1e-6)
    x = [np.asarray(a, dtype=np.float64) for a in layers]
    cos01 = np.mean([x[0][t] @ x[1][t] / np.linalg.norm(x[0][t]) / np.linalg.norm(x[1][t]) for t in range(17)])
    assert full.extended[0, 1] == pytest.approx(cos01, abs=1e-5)
    last01 = np.mean([x[0][t] @ x[1][t] / np.linalg.norm(x[0][t]) / np.linalg.norm(x[1][t]) for t in (3, 16)])
    assert full.last_token[0, 1] == pytest.approx(last01, abs=1e-5)
    assert full.n_last_tokens == 2
    s = full.extended
    assert np.array_equal(s, s.T) and np.all(np.diag(s) == 1) and s.min() >= -1 and s.max() <= 1


def test_directory_is_memory_mapped(tmp_path, monkeypatch):
    """The layer files are read as memory maps, chunk by chunk, never loaded whole."""
    from lorp.depth import similarity

    layers = make_layers(np.random.default_rng(2))
    for i, a in enumerate(layers):
        np.save(tmp_path / f"layer_{i:03d}.npy", a.astype(np.float16))
    seen = []
    original = similarity.cosine_from_arrays
    monkeypatch.setattr(similarity, "cosine_from_arrays",
                        lambda arrays, *args, **kwargs: seen.extend(arrays) or original(arrays, *args, **kwargs))
    result = cosine_from_directory(tmp_path, 4, chunk_tokens=3)
    assert len(seen) == 4 and all(isinstance(a, np.memmap) for a in seen)
    np.testing.assert_allclose(result.extended[0, 2], -1.0, atol=1e-3)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        cosine_from_arrays([np.ones((3, 2)), np.ones((4, 2))])
