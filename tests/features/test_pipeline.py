"""build_features: causality (perturbed, replaced, truncated futures), values by hand, errors."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tradenn import data
from tradenn.features import indicators as ind
from tradenn.features.pipeline import build_features, minimal_features

PRICE_COLUMNS = ["Open", "High", "Low", "Close"]


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    """Real daily bars with real volume, short enough to keep the tests fast."""
    return data.load("SPX").iloc[:400]


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return data.gbm(300, seed=7)


# ---------------------------------------------------------------------------- causality check
def perturb_after(frame: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    """``frame`` with every bar after position ``t`` scaled by random factors (prices, volume)."""
    out = frame.copy()
    n = len(frame) - t - 1
    price_factor = rng.uniform(0.5, 2.0, size=n)
    out.iloc[t + 1 :, out.columns.get_indexer(PRICE_COLUMNS)] *= price_factor[:, None]
    if "Volume" in out.columns:
        out.iloc[t + 1 :, out.columns.get_loc("Volume")] *= rng.uniform(0.1, 10.0, size=n)
    return out


def replace_after(frame: pd.DataFrame, t: int, other: pd.DataFrame) -> pd.DataFrame:
    """``frame`` up to position ``t``, then the bars of another series on the same timestamps."""
    out = frame.copy()
    out.iloc[t + 1 :] = other.iloc[t + 1 : len(frame)].to_numpy()
    return out


def assert_causal(
    make: Callable[[pd.DataFrame], pd.DataFrame],
    frame: pd.DataFrame,
    cuts: list[int],
    seed: int = 0,
) -> None:
    """Every column of ``make(frame)`` at bars ``<= t`` must not change when the bars after ``t``
    are perturbed, replaced by another series, or cut off. Raises AssertionError naming the column.
    """
    rng = np.random.default_rng(seed)
    other = data.gbm(len(frame), s0=float(frame["Close"].iloc[0]) * 3.0, seed=seed + 1)
    other = other.reindex(columns=frame.columns, fill_value=1.0)
    reference = make(frame)
    for t in cuts:
        futures = {
            "perturbed": make(perturb_after(frame, t, rng)),
            "replaced": make(replace_after(frame, t, other)),
            "truncated": make(frame.iloc[: t + 1]),
        }
        for how, features in futures.items():
            assert list(features.columns) == list(reference.columns), f"{how} at {t}: columns"
            for column in reference.columns:
                np.testing.assert_array_equal(
                    features[column].to_numpy()[: t + 1],
                    reference[column].to_numpy()[: t + 1],
                    err_msg=f"column {column!r} at bars <= {t} changed when the future was {how}",
                )


CUTS = [0, 3, 15, 40, 150, 298]


def test_every_feature_is_causal_on_real_bars(spx):
    assert_causal(build_features, spx, [*CUTS, 398])


def test_every_feature_is_causal_on_synthetic_bars(synthetic):
    assert_causal(lambda f: build_features(f, lags=3, windows=(2, 7, 30)), synthetic, CUTS)


# The peeking column of each case: the honest features it is added to, and how it looks ahead.
PEEKING_COLUMNS = {
    # a rolling mean centered on the bar averages the next two closes
    "close_centered_5": (
        build_features,
        lambda frame, features: frame["Close"].rolling(5, center=True).mean(),
    ),
    # the next bar's return
    "ret_next": (minimal_features, lambda frame, features: features["ret_1"].shift(-1)),
    # normalized with the mean and deviation of the whole sample, future bars included
    "close_z_full": (
        minimal_features,
        lambda frame, features: (frame["Close"] - frame["Close"].mean()) / frame["Close"].std(),
    ),
}


@pytest.mark.parametrize("column", PEEKING_COLUMNS)
def test_causality_check_names_the_column_that_peeks(synthetic, column):
    honest, peek = PEEKING_COLUMNS[column]

    def peeking(frame):
        features = honest(frame)
        features[column] = peek(frame, features)
        return features

    with pytest.raises(AssertionError, match=column):
        assert_causal(peeking, synthetic, CUTS)


# ---------------------------------------------------------------------------- values by hand
def test_returns_and_lags_by_hand(spx):
    features = build_features(spx, lags=3)
    close = spx["Close"].tolist()
    for t in (1, 10, 250):
        assert features["ret_1"].iloc[t] == pytest.approx(math.log(close[t] / close[t - 1]), 1e-14)
    for k in (1, 2, 3):
        t = 50
        expected = math.log(close[t - k] / close[t - k - 1])
        assert features[f"ret_lag_{k}"].iloc[t] == pytest.approx(expected, rel=1e-14)


def test_rolling_return_features_by_hand(spx):
    features = build_features(spx, windows=(5, 20))
    close = spx["Close"].tolist()
    t = 123
    for w in (5, 20):
        window = [math.log(close[s] / close[s - 1]) for s in range(t - w + 1, t + 1)]
        mean, std = statistics.fmean(window), statistics.pstdev(window)
        sma = statistics.fmean(close[t - w + 1 : t + 1])
        assert features[f"ret_mean_{w}"].iloc[t] == pytest.approx(mean, rel=1e-10)
        assert features[f"ret_std_{w}"].iloc[t] == pytest.approx(std, rel=1e-10)
        assert features[f"ret_z_{w}"].iloc[t] == pytest.approx((window[-1] - mean) / std, 1e-9)
        assert features[f"close_sma_ratio_{w}"].iloc[t] == pytest.approx(
            math.log(close[t] / sma), rel=1e-10
        )


def test_bar_shape_and_bollinger_by_hand(spx):
    features = build_features(spx)
    o, h, lo, c = (spx[name].tolist() for name in PRICE_COLUMNS)
    t = 77
    assert features["range_hl"].iloc[t] == pytest.approx(math.log(h[t] / lo[t]), rel=1e-14)
    assert features["gap"].iloc[t] == pytest.approx(math.log(o[t] / c[t - 1]), rel=1e-12)
    window = c[t - 19 : t + 1]
    mid, sd = statistics.fmean(window), statistics.pstdev(window)
    lower, upper = mid - 2 * sd, mid + 2 * sd
    assert features["bb_pct_b_20"].iloc[t] == pytest.approx((c[t] - lower) / (upper - lower), 1e-9)
    assert features["mom_10"].iloc[t] == pytest.approx(c[t] / c[t - 10] - 1, rel=1e-12)


def test_indicator_features_are_the_indicators_normalized(spx):
    features = build_features(spx)
    close = spx["Close"]
    np.testing.assert_allclose(features["rsi_14"], (ind.rsi(close, 14) - 50) / 50, rtol=1e-15)
    np.testing.assert_allclose(
        features["macd_hist_12_26_9"], ind.macd(close, 12, 26, 9)[2] / close, rtol=1e-15
    )
    np.testing.assert_allclose(
        features["atr_ratio_14"], ind.atr(spx["High"], spx["Low"], close, 14) / close, rtol=1e-15
    )
    rsi = features["rsi_14"].dropna()
    assert rsi.between(-1, 1).all() and rsi.min() < 0 < rsi.max()


def test_volume_features_by_hand(spx):
    features = build_features(spx, windows=(5,))
    v = spx["Volume"].tolist()
    t = 30
    assert features["vol_change"].iloc[t] == pytest.approx(
        math.log((1 + v[t]) / (1 + v[t - 1])), rel=1e-12
    )
    logs = [math.log1p(x) for x in v[t - 4 : t + 1]]
    expected = (logs[-1] - statistics.fmean(logs)) / statistics.pstdev(logs)
    assert features["vol_z_5"].iloc[t] == pytest.approx(expected, rel=1e-9)


def test_calendar_features_by_hand():
    index = pd.DatetimeIndex(["2024-01-01", "2024-07-03"])  # a Monday in January, a July Wednesday
    frame = pd.DataFrame({"Close": [1.0, 2.0]}, index=index)
    features = build_features(frame, windows=(), indicators=False)
    np.testing.assert_allclose(features.loc[index[0], ["dow_sin", "dow_cos"]], [0.0, 1.0])
    np.testing.assert_allclose(features.loc[index[0], ["month_sin", "month_cos"]], [0.0, 1.0])
    wednesday, july = 2 * math.pi * 2 / 7, 2 * math.pi * 6 / 12
    np.testing.assert_allclose(
        features.loc[index[1], ["dow_sin", "dow_cos", "month_sin", "month_cos"]],
        [math.sin(wednesday), math.cos(wednesday), math.sin(july), math.cos(july)],
        atol=1e-15,
    )


def test_flat_prices_give_zero_z_score_and_mid_band():
    index = pd.bdate_range("2020-01-01", periods=30)
    close = np.r_[np.linspace(100, 110, 10), np.full(20, 110.0)]
    frame = pd.DataFrame({c: close for c in PRICE_COLUMNS} | {"Volume": 5.0}, index=index)
    features = build_features(frame, windows=(5,), volume=False)
    assert (features["ret_z_5"].iloc[15:] == 0).all()
    assert (features["bb_pct_b_20"].iloc[-1:] == 0.5).all()


# ---------------------------------------------------------------------------- shape and groups
def test_output_has_the_frame_index_float_columns_and_nan_warm_up(spx):
    features = build_features(spx)
    assert features.index.equals(spx.index)
    assert (features.dtypes == np.float64).all()
    first_valid = {name: int(np.argmax(features[name].notna())) for name in features.columns}
    expected = {"range_hl": 0, "dow_sin": 0, "ret_1": 1, "gap": 1, "vol_change": 1}
    expected |= {"ret_lag_5": 6, "ret_mean_20": 20, "ret_z_5": 5, "close_sma_ratio_20": 19}
    expected |= {"vol_z_20": 19, "bb_pct_b_20": 19, "rsi_14": 14, "atr_ratio_14": 13}
    expected |= {"mom_10": 10, "macd_hist_12_26_9": 33}
    assert {name: first_valid[name] for name in expected} == expected
    assert features.iloc[34:].notna().all().all()


def test_default_columns_in_documented_order(spx):
    columns = list(build_features(spx, lags=2, windows=(3,)).columns)
    assert columns == [
        "ret_1", "ret_lag_1", "ret_lag_2",
        "ret_mean_3", "ret_std_3", "ret_z_3", "close_sma_ratio_3",
        "rsi_14", "macd_hist_12_26_9", "bb_pct_b_20", "atr_ratio_14", "mom_10", "range_hl", "gap",
        "vol_change", "vol_z_3",
        "dow_sin", "dow_cos", "month_sin", "month_cos",
    ]  # fmt: skip


def test_flags_leave_groups_out(spx):
    features = build_features(spx, returns=False, windows=(), indicators=False, volume=False)
    assert list(features.columns) == ["dow_sin", "dow_cos", "month_sin", "month_cos"]


def test_minimal_features_are_returns_and_lags(spx):
    features = minimal_features(spx, lags=3)
    assert list(features.columns) == ["ret_1", "ret_lag_1", "ret_lag_2", "ret_lag_3"]
    pd.testing.assert_frame_equal(features, build_features(spx, lags=3)[features.columns])


def test_close_only_frame_works_without_indicators():
    frame = data.gbm(50, seed=1)[["Close"]]
    features = build_features(frame, indicators=False)
    assert "ret_mean_20" in features.columns and "rsi_14" not in features.columns


@pytest.mark.parametrize("volume", ["absent", "zero"])
def test_missing_or_zero_volume_skips_volume_features(volume):
    frame = data.gbm(60, seed=2)
    frame = frame.drop(columns="Volume") if volume == "absent" else frame.assign(Volume=0.0)
    features = build_features(frame)
    assert not [name for name in features.columns if name.startswith("vol_")]
    assert "ret_1" in features.columns


def test_zero_volume_bars_stay_finite():
    frame = data.gbm(40, seed=3)
    frame.iloc[10, frame.columns.get_loc("Volume")] = 0.0
    features = build_features(frame, windows=(5,))
    assert np.isfinite(features[["vol_change", "vol_z_5"]].iloc[5:]).all().all()


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lags": -1}, "lags must be a non-negative integer"),
        ({"lags": 2.0}, "lags must be a non-negative integer"),
        ({"lags": True}, "lags must be a non-negative integer"),
        ({"windows": (5, 0)}, "each of windows must be an integer >= 2"),
        ({"windows": (-3,)}, "each of windows must be an integer >= 2"),
        ({"windows": (1,)}, "each of windows must be an integer >= 2"),
        ({"windows": (5.0,)}, "each of windows must be an integer >= 2"),
        ({"windows": (5, 5)}, "windows must not repeat"),
        ({"windows": 5}, "windows must be a sequence"),
    ],
)
def test_bad_arguments_are_rejected(synthetic, kwargs, message):
    with pytest.raises(ValueError, match=f"build_features: {message}"):
        build_features(synthetic, **kwargs)


def test_frame_without_close_is_rejected(synthetic):
    with pytest.raises(ValueError, match="build_features: frame has no Close column"):
        build_features(synthetic.drop(columns="Close"))


def test_indicators_need_open_high_low(synthetic):
    with pytest.raises(ValueError, match="frame has no High, Low column"):
        build_features(synthetic.drop(columns=["High", "Low"]))


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda f: f["Close"], "frame must be a DataFrame"),
        (lambda f: f.iloc[:0], "frame is empty"),
        (lambda f: f.iloc[::-1], "index must be increasing"),
        (lambda f: pd.concat([f.iloc[:3], f.iloc[2:5]]), "without duplicates"),
        (lambda f: f.reset_index(drop=True), "calendar=True needs a DatetimeIndex"),
        (lambda f: f.assign(Close=f["Close"].where(f.index != f.index[4], 0.0)), "Close must be"),
    ],
)
def test_bad_frames_are_rejected(synthetic, make_bad, message):
    with pytest.raises(ValueError, match=message):
        build_features(make_bad(synthetic))


def test_error_messages_are_one_line(synthetic):
    with pytest.raises(ValueError) as info:
        build_features(synthetic, windows=(3, -1))
    assert "\n" not in str(info.value)
