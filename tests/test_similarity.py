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


def test_directory_is_read_chunk_by_chunk(tmp_path, monkeypatch):
    """The layer files are read a chunk of rows at a time, never whole (nor memory-mapped, whose pages
    would stay resident), and give what the arrays in memory give."""
    from lorp.depth import similarity

    layers = make_layers(np.random.default_rng(2))
    for i, a in enumerate(layers):
        np.save(tmp_path / f"layer_{i:03d}.npy", a.astype(np.float16))
    reads = []
    original = similarity.LayerFile.__getitem__
    monkeypatch.setattr(similarity.LayerFile, "__getitem__",
                        lambda self, rows: reads.append(rows) or original(self, rows))
    result = cosine_from_directory(tmp_path, 4, chunk_tokens=3)
    assert reads and max(r.stop - r.start for r in reads) <= 3
    np.testing.assert_allclose(result.extended[0, 2], -1.0, atol=1e-3)
    in_memory = cosine_from_arrays([a.astype(np.float16) for a in layers], chunk_tokens=3)
    np.testing.assert_array_equal(result.extended, in_memory.extended)
    reader = similarity.LayerFile(tmp_path / "layer_001.npy")
    np.testing.assert_array_equal(reader[2:7], layers[1].astype(np.float16)[2:7])
    with open(tmp_path / "layer_001.npy", "r+b") as fh:
        fh.truncate(200)
    with pytest.raises(OSError, match="truncated"):
        similarity.LayerFile(tmp_path / "layer_001.npy")[0:10]


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        cosine_from_arrays([np.ones((3, 2)), np.ones((4, 2))])


# ------------------------------------------------------------------ robust statistics (issue 13 §2)
from lorp.depth.similarity import (massive_dimensions, resample, similarity_from_arrays,  # noqa: E402
                                   unbiased_hsic)


def test_centred_cosine_is_the_cosine_of_the_deviations():
    """Two layers that share a large mean but whose deviations are orthogonal: cosine ~1, centred ~0."""
    rng = np.random.default_rng(3)
    a, b = make_layers(rng, t=64, d=8)[0], make_layers(rng, t=64, d=8)[3]
    a, b = a - a.mean(0), b - b.mean(0)
    offset = np.full(8, 50.0)
    layers = [a + offset, b + offset, -a + 2 * offset]
    cosine = similarity_from_arrays(layers, "cosine").extended
    centred = similarity_from_arrays(layers, "centred", chunk_tokens=5).extended
    assert cosine[0, 1] > 0.99 and cosine[0, 2] > 0.99
    dev = [a, b, -a]
    expected = np.mean([dev[0][t] @ dev[1][t] / np.linalg.norm(dev[0][t]) / np.linalg.norm(dev[1][t])
                        for t in range(64)])
    assert centred[0, 1] == pytest.approx(expected, abs=1e-5)
    assert centred[0, 2] == pytest.approx(-1.0, abs=1e-5)


def test_massive_dimensions_are_excluded_from_every_layer():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    spike = np.zeros(6)
    spike[4] = 1e5
    layers = [x + spike, y + spike]  # dimension 4 is massive in both: the plain cosine is ~1
    magnitude = np.stack([np.abs(a).mean(0) for a in layers])
    assert massive_dimensions(magnitude, 100.0).tolist() == [4]
    result = similarity_from_arrays(layers, "no-massive", massive_multiple=100.0)
    assert result.excluded_dimensions == (4,)
    keep = [0, 1, 2, 3, 5]
    expected = np.mean([x[t, keep] @ y[t, keep] / np.linalg.norm(x[t, keep]) / np.linalg.norm(y[t, keep])
                        for t in range(40)])
    assert similarity_from_arrays(layers, "cosine").extended[0, 1] > 0.999
    assert result.extended[0, 1] == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="must exceed 1"):
        massive_dimensions(magnitude, 1.0)


def test_cka_known_answers():
    """Linear CKA is 1 under rotation, isotropic scaling and translation, ~0 for independent layers, and the
    minibatch estimate with one batch equals the unbiased-HSIC formula computed by hand."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 10))
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    layers = [x, 3.0 * x @ q + 7.0, rng.normal(size=(300, 10))]
    result = similarity_from_arrays(layers, "cka", cka_batch_tokens=300)
    assert result.statistic == "cka"
    assert result.extended[0, 1] == pytest.approx(1.0, abs=1e-4)
    assert abs(result.extended[0, 2]) < 0.05
    k, m = x @ x.T, layers[2] @ layers[2].T
    n = 300
    def hsic(a, b):
        a, b = a - np.diag(np.diag(a)), b - np.diag(np.diag(b))
        one = np.ones(n)
        return (np.trace(a @ b) + (one @ a @ one) * (one @ b @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ a @ b @ one) / (n * (n - 3))
    expected = hsic(k, m) / np.sqrt(hsic(k, k) * hsic(m, m))
    np.testing.assert_allclose(unbiased_hsic(np.stack([k, m]))[0, 1], hsic(k, m), rtol=1e-9)
    assert result.extended[0, 2] == pytest.approx(expected, abs=1e-4)
    batched = similarity_from_arrays(layers, "cka", cka_batch_tokens=64)
    assert batched.extended[0, 1] == pytest.approx(1.0, abs=1e-4) and abs(batched.extended[0, 2]) < 0.1


def test_per_sequence_sums_and_resampling():
    """The per-sequence sums add up to the full matrix, and resampling with every count 1 gives it back;
    drawing one sequence twice equals the statistic of the duplicated data."""
    rng = np.random.default_rng(6)
    per, n_seq = 5, 6
    layers = [rng.normal(size=(per * n_seq, 4)).astype(np.float32) for _ in range(3)]
    last = np.arange(per - 1, per * n_seq, per)
    for statistic in ("cosine", "centred", "no-massive"):
        result = similarity_from_arrays(layers, statistic, last_token_rows=last, tokens_per_sequence=per,
                                        chunk_tokens=7)
        assert result.per_sequence.shape == (n_seq, 3, 3) and result.per_sequence_last.shape == (n_seq, 3, 3)
        np.testing.assert_allclose(resample(result.per_sequence, per, np.ones(n_seq)), result.extended, atol=1e-6)
        np.testing.assert_allclose(resample(result.per_sequence_last, 1, np.ones(n_seq)), result.last_token,
                                   atol=1e-6)
    counts = np.array([2, 0, 1, 1, 1, 1])
    rows = np.concatenate([np.arange(s * per, (s + 1) * per) for s, c in enumerate(counts) for _ in range(c)])
    drawn = similarity_from_arrays([a[rows] for a in layers], "cosine").extended
    result = similarity_from_arrays(layers, "cosine", tokens_per_sequence=per)
    np.testing.assert_allclose(resample(result.per_sequence, per, counts), drawn, atol=1e-6)
    with pytest.raises(ValueError, match="whole sequences"):
        similarity_from_arrays(layers, "cosine", tokens_per_sequence=7)
    with pytest.raises(ValueError, match="unknown similarity statistic"):
        similarity_from_arrays(layers, "pearson")
