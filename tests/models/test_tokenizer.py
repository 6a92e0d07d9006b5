"""PriceTokenizer: vocabulary layout, round trips within half a bin, clipping, fitting, configs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tradenn.models.tokenizer import PriceTokenizer
from tradenn.nn.serialization import read_file, write_file


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def reference_bin(value, edges):
    """Index of the half-open bin [edges[i], edges[i + 1]) holding value, clipped at both ends."""
    n_bins = len(edges) - 1
    for i in range(n_bins):
        if value < edges[i + 1]:
            return i
    return n_bins - 1


def test_default_vocabulary_is_256_ids_with_pad_bos_eos_first():
    tok = PriceTokenizer()
    assert (tok.PAD, tok.BOS, tok.EOS) == (0, 1, 2)
    assert tok.vocab_size == 256 and tok.n_bins == 253
    assert tok.bin_width == pytest.approx(0.2 / 253)
    assert tok.encode([0.0], kind="returns")[0] == 3 + 126  # the middle bin holds zero
    assert tok.decode([3 + 126])[0] == pytest.approx(0.0, abs=1e-15)


def test_tokens_are_the_bins_of_a_reference_walk_over_the_edges(rng):
    tok = PriceTokenizer(n_bins=11, limit=0.05)
    edges = tok.bin_edges
    np.testing.assert_allclose(edges, [-0.05 + i * 0.1 / 11 for i in range(12)], atol=1e-15)
    values = np.concatenate([rng.uniform(-0.08, 0.08, 200), edges])
    expected = [3 + reference_bin(v, edges.tolist()) for v in values]
    np.testing.assert_array_equal(tok.encode(values, kind="returns"), expected)


def test_returns_round_trip_within_half_a_bin_width(rng):
    tok = PriceTokenizer(n_bins=101, limit=0.1)
    r = np.concatenate([rng.uniform(-0.1, 0.1, 10_000), [-0.1, 0.1, 0.0]])
    error = np.abs(tok.decode(tok.encode(r, kind="returns")) - r)
    assert error.max() <= tok.bin_width / 2 * (1 + 1e-9)


def test_prices_become_log_returns_then_tokens(rng):
    tok = PriceTokenizer()
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
    ids = tok.encode(prices)
    assert ids.shape == (499,)
    error = np.abs(tok.decode(ids) - np.diff(np.log(prices)))
    assert error.max() <= tok.bin_width / 2 * (1 + 1e-9)


def test_out_of_range_values_clip_to_the_edge_bins():
    tok = PriceTokenizer(limit=0.1)
    ids = tok.encode([-0.5, -0.1000001, 0.1, 0.35], kind="returns")
    np.testing.assert_array_equal(ids, [3, 3, 255, 255])
    np.testing.assert_allclose(tok.decode(ids), [-0.1, -0.1, 0.1, 0.1], atol=tok.bin_width / 2)


def test_a_crash_bar_in_prices_lands_in_the_lowest_bin():
    ids = PriceTokenizer(limit=0.1).encode([100.0, 70.0, 71.0])
    assert ids[0] == 3


def test_bos_and_eos_wrap_each_sequence_of_a_batch(rng):
    tok = PriceTokenizer()
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (4, 9)), axis=1))
    ids = tok.encode(prices, bos=True, eos=True)
    assert ids.shape == (4, 10)
    assert (ids[:, 0] == tok.BOS).all() and (ids[:, -1] == tok.EOS).all()
    np.testing.assert_array_equal(ids[2, 1:-1], tok.encode(prices[2]))


def test_a_series_encodes_like_its_values():
    prices = pd.Series([100.0, 102.0, 101.0], index=pd.date_range("2024-01-01", periods=3))
    tok = PriceTokenizer()
    np.testing.assert_array_equal(tok.encode(prices), tok.encode(prices.to_numpy()))


def test_mean_scaled_mode_divides_each_context_by_its_mean_absolute_value(rng):
    tok = PriceTokenizer(n_bins=4093, mode="mean_scaled")  # Chronos-sized vocabulary
    assert tok.limit == 15.0
    contexts = np.array([[10.0, 12.0, 14.0], [200.0, 100.0, 300.0]])
    np.testing.assert_allclose(tok.scale_of(contexts), [12.0, 200.0])
    np.testing.assert_allclose(tok.values(contexts), contexts / [[12.0], [200.0]])
    scale = tok.scale_of(contexts)
    decoded = tok.decode(tok.encode(contexts), scale=scale)
    assert (np.abs(decoded - contexts) <= scale[:, None] * tok.bin_width / 2 * (1 + 1e-9)).all()


def test_mean_scaled_continuation_is_encoded_on_the_context_scale():
    tok = PriceTokenizer(mode="mean_scaled")
    scale = tok.scale_of([100.0, 100.0])
    continuation = tok.encode([150.0, 50.0], scale=scale)
    np.testing.assert_allclose(tok.decode(continuation, scale=scale), [150, 50], atol=6)


def test_mean_scale_of_an_all_zero_context_is_one():
    assert PriceTokenizer(mode="mean_scaled").scale_of([0.0, 0.0], kind="returns") == 1.0


def test_mean_scaled_decode_needs_the_scale_and_log_return_mode_refuses_one():
    with pytest.raises(ValueError, match="scale is required"):
        PriceTokenizer(mode="mean_scaled").decode([10, 11])
    with pytest.raises(ValueError, match="scale applies to mode='mean_scaled' only"):
        PriceTokenizer().decode([10, 11], scale=2.0)


def test_fit_takes_the_limit_from_training_returns_only(rng):
    train = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 5000)))
    tok = PriceTokenizer().fit(train, quantile=0.99)
    assert tok.limit == pytest.approx(np.quantile(np.abs(np.diff(np.log(train))), 0.99))
    limit = tok.limit
    tok.encode([100.0, 150.0, 60.0])  # extreme test data: clipped, never widens the range
    assert tok.limit == limit


def test_fit_on_mean_scaled_windows_scales_each_window_by_its_own_mean():
    windows = np.array([[1.0, 3.0], [10.0, 30.0]])
    tok = PriceTokenizer(mode="mean_scaled").fit(windows, quantile=1.0)
    assert tok.limit == pytest.approx(1.5)


def test_config_is_json_and_rebuilds_an_equal_tokenizer(tmp_path, rng):
    tok = PriceTokenizer(n_bins=63, mode="log_return").fit(rng.normal(0, 0.02, 300), kind="returns")
    config = json.loads(json.dumps(tok.get_config()))
    assert PriceTokenizer.from_config(config) == tok
    tok.save(tmp_path / "tokenizer.npz")
    loaded = PriceTokenizer.load(tmp_path / "tokenizer.npz")
    assert loaded == tok and loaded.limit == tok.limit
    saved = read_file(tmp_path / "tokenizer.npz", None, "tokenizer")
    assert saved.format == "tradenn.models.PriceTokenizer" and saved.config["n_bins"] == 63


def test_load_refuses_a_file_that_is_not_a_tokenizer(tmp_path):
    path = tmp_path / "other.npz"
    path.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="is not a readable PriceTokenizer file"):
        PriceTokenizer.load(path)
    write_file(path, "something.Else", {}, {})
    with pytest.raises(ValueError, match=r"is a something\.Else file, not a PriceTokenizer"):
        PriceTokenizer.load(path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PriceTokenizer(n_bins=1), "n_bins must be an integer >= 2"),
        (lambda: PriceTokenizer(n_bins=10.5), "n_bins must be an integer >= 2"),
        (lambda: PriceTokenizer(limit=0.0), "limit must be a finite number > 0"),
        (lambda: PriceTokenizer(limit=float("nan")), "limit must be a finite number > 0"),
        (lambda: PriceTokenizer(mode="bytes"), "mode must be"),
    ],
)
def test_bad_constructor_arguments_are_value_errors_naming_them(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.encode([100.0, np.nan, 101.0]), "series contains NaN or inf at position 1"),
        (
            lambda t: t.encode([100.0, 0.0]),
            "series must hold positive prices; got 0.0 at position 1",
        ),
        (lambda t: t.encode([[1.0, 2.0], [3.0, -1.0]]), "row 1, position 1"),
        (lambda t: t.encode([]), "series must be a non-empty 1-D or 2-D array"),
        (lambda t: t.encode([1.0, 2.0], kind="levels"), "kind must be"),
        (lambda t: t.decode([3, 256]), "ids must be in \\[0, 256\\)"),
        (lambda t: t.decode([1, 5]), "ids contains special tokens"),
        (lambda t: t.decode([3.0, 4.0]), "ids must be integers"),
        (lambda t: t.fit([1.0, 2.0], quantile=0.0), "quantile must be in \\(0, 1\\]"),
        (lambda t: t.fit([5.0, 5.0, 5.0]), "need > 0"),
    ],
)
def test_bad_inputs_are_one_line_value_errors_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call(PriceTokenizer())
    assert "\n" not in str(error.value)


def test_volatility_scaled_divides_each_return_by_the_ewma_volatility_before_it(rng):
    from tradenn.models.tokenizer import volatility_scaled

    r = rng.standard_normal((2, 60)) * np.array([[0.01], [0.03]])
    z, scale = volatility_scaled(r, decay=0.9, warmup=5)
    for row in range(2):
        variance = float(np.mean(r[row, :5] ** 2))
        for k, t in enumerate(range(5, 60)):
            assert z[row, k] == pytest.approx(r[row, t] / np.sqrt(variance), rel=1e-12)
            variance = 0.9 * variance + 0.1 * r[row, t] ** 2
        assert scale[row] == pytest.approx(np.sqrt(variance), rel=1e-12)
    z_1d, scale_1d = volatility_scaled(r[1], decay=0.9, warmup=5)
    np.testing.assert_array_equal(z_1d, z[1])
    assert scale_1d == scale[1]
    with pytest.raises(ValueError, match="more than warmup=5"):
        volatility_scaled(r[:, :5], warmup=5)
