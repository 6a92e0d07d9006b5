"""MarketEnv: the Gymnasium API, the backtester's account, the reward, causality, rendering."""

from __future__ import annotations

import itertools
import warnings

import gymnasium
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

import tradenn.rl  # noqa: F401  (registers tradenn/Market-v0)
from tradenn.backtest import Backtest, Strategy
from tradenn.data import load
from tradenn.features import build_features
from tradenn.rl.env import MarketEnv


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    return load("SPX", end="2006-12-31")


def _random_actions(env: MarketEnv, count: int, seed: int) -> list:
    env.action_space.seed(seed)
    return [env.action_space.sample() for _ in range(count)]


def _run(env: MarketEnv, actions: list, **reset) -> tuple[list, list, list, list]:
    """Play ``actions`` from a reset; return the observations, rewards, infos and targets."""
    obs, info = env.reset(**reset)
    observations, rewards, infos, targets = [obs], [], [info], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        targets.append(info["position"])
        if terminated or truncated:
            break
    return observations, rewards, infos, targets


def _replay(frame: pd.DataFrame, start: int, targets: list, *, cash: float, fee_bps: float):
    """Run the env's targets through the backtester (decided at each close, traded there)."""
    end = start + len(targets)
    w = np.zeros(end + 1)
    w[start:end] = targets
    w[end] = targets[-1]  # no trade at the last bar the env reached

    class Replay(Strategy):
        def positions(self, data):
            return w[: len(data)]

    return Backtest(
        frame.iloc[: end + 1],
        Replay,
        cash=cash,
        commission=fee_bps / 1e4,
        trade_on_close=True,
        fractional=True,
    ).run()


def _assert_same_account(infos: list, result, frame: pd.DataFrame, start: int) -> None:
    """The env's account at each bar (marked at the close, before that close's trade) is the
    backtester's account after the previous close's fills, marked at this close."""
    close = frame["Close"].to_numpy()[start : start + len(infos)]
    units = result.position.to_numpy()[start - 1 : start + len(infos) - 1]
    cash = result.equity.to_numpy()[start - 1 : start + len(infos) - 1] - units * np.concatenate(
        ([close[0]], close[:-1])
    )
    expected = cash + units * close
    np.testing.assert_allclose([i["equity"] for i in infos], expected, rtol=1e-9)
    np.testing.assert_allclose([i["units"] for i in infos], units, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([i["cash"] for i in infos], cash, rtol=1e-9)
    # The last bar has no trade: there the two equities are the same number.
    assert infos[-1]["equity"] == pytest.approx(result.equity.iloc[-1], rel=1e-12)
    assert infos[-1]["trades"] == int((result.orders["Status"] == "filled").sum())


# ------------------------------------------------------------------------------ Gymnasium API


@pytest.mark.parametrize("actions", ["long_short", "long_only", "continuous"])
@pytest.mark.parametrize("render_mode", [None, "ansi", "rgb_array"])
def test_check_env_passes_without_warnings(actions, render_mode):
    env = gymnasium.make(
        "tradenn/Market-v0", actions=actions, window=10, render_mode=render_mode, end="2003-12-31"
    ).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []


def test_spaces_follow_the_action_kind(spx):
    short = MarketEnv(spx, window=5)
    only = MarketEnv(spx, window=5, actions="long_only")
    cont = MarketEnv(spx, window=5, actions="continuous", include_pnl=True)
    assert short.action_space == gymnasium.spaces.Discrete(3)
    assert only.action_space == gymnasium.spaces.Discrete(2)
    assert cont.action_space == gymnasium.spaces.Box(-1, 1, (1,), np.float32)
    features = len(short.feature_names)
    assert short.observation_space.shape == (5 * features + 1,)
    assert cont.observation_space.shape == (5 * features + 2,)
    assert short.observation_space.dtype == np.float32
    assert only.observation_space.low[-1] == 0 and short.observation_space.low[-1] == -1
    assert np.isfinite(short.observation_space.low).all()
    assert np.isfinite(short.observation_space.high).all()
    targets = [_run(short, [a], seed=0)[3][0] for a in range(3)]
    assert targets == [-1.0, 0.0, 1.0]
    assert [_run(only, [a], seed=0)[3][0] for a in range(2)] == [0.0, 1.0]


def test_make_after_import_builds_the_env():
    env = gymnasium.make("tradenn/Market-v0", window=8, episode_length=5, end="2002-12-31")
    obs, _ = env.reset(seed=1)
    assert obs.shape == env.observation_space.shape
    steps = 0
    truncated = False
    while not truncated:
        obs, _, _, truncated, _ = env.step(env.action_space.sample())
        steps += 1
    assert steps == 5


def test_vector_env_steps_and_autoresets(spx):
    envs = gymnasium.vector.SyncVectorEnv(
        [lambda: MarketEnv(spx, window=10, episode_length=7) for _ in range(3)]
    )
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, envs.single_observation_space.shape[0])
    ends = 0
    for _ in range(20):
        obs, rewards, _, truncated, _ = envs.step(np.array([0, 1, 2]))
        assert obs.shape[0] == 3 and np.isfinite(rewards).all()
        ends += int(truncated.sum())
    assert ends >= 3  # each sub-environment finished at least one 7-step episode
    envs.close()


# --------------------------------------------------------------------------------- episodes


def test_same_seed_same_trajectory_different_seed_different_start(spx):
    actions = _random_actions(MarketEnv(spx, window=10), 50, seed=5)
    first = _run(MarketEnv(spx, window=10, episode_length=50), actions, seed=3)
    second = _run(MarketEnv(spx, window=10, episode_length=50), actions, seed=3)
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]
    assert [i["equity"] for i in first[2]] == [i["equity"] for i in second[2]]
    env = MarketEnv(spx, window=10, episode_length=50)
    starts = {env.reset(seed=s)[1]["timestamp"] for s in range(5)}
    assert len(starts) > 1


def test_whole_series_episode_runs_from_first_full_window_to_the_end(spx):
    env = MarketEnv(spx, window=10)
    _, info = env.reset(seed=0)
    assert info["timestamp"] == spx.index[env.first_bar]
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(1)
        steps += 1
        assert not terminated
    assert steps == len(spx) - 1 - env.first_bar
    assert info["timestamp"] == spx.index[-1]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(1)


def test_equity_at_or_below_zero_terminates():
    index = pd.date_range("2020-01-01", periods=8, freq="D")
    close = np.array([100.0, 100, 100, 100, 100, 350, 350, 350])
    frame = pd.DataFrame(
        {"Open": close, "High": close, "Low": close, "Close": close, "Volume": 1.0}, index=index
    )
    zeros = pd.DataFrame({"x": np.zeros(8)}, index=index)
    env = MarketEnv(frame, window=1, features=zeros, normalize="none", fee_bps=0)
    env.reset(options={"start": 4})
    _, _, terminated, truncated, info = env.step(0)  # short at 100, price goes to 350
    assert terminated and not truncated
    assert info["equity"] == pytest.approx(10_000 - 100 * 250)


# ------------------------------------------------------------------------------- accounting


@pytest.mark.parametrize("seed", [0, 1])
def test_discrete_equity_matches_the_backtester(spx, seed):
    env = MarketEnv(spx, window=10, episode_length=300, fee_bps=7.0)
    actions = _random_actions(env, 300, seed)
    _, _, infos, targets = _run(env, actions, seed=seed)
    assert any(a * b < 0 for a, b in itertools.pairwise(targets))  # flips happen
    start = spx.index.get_loc(infos[0]["timestamp"])
    result = _replay(spx, start, targets, cash=10_000, fee_bps=7.0)
    _assert_same_account(infos, result, spx, start)


def test_continuous_equity_matches_the_backtester(spx):
    # a small account: many rebalances are below one unit (a case the backtester once misread)
    cash = 10_000.0
    env = MarketEnv(spx, window=10, episode_length=300, actions="continuous", cash=cash)
    actions = _random_actions(env, 300, seed=2)
    actions[10:14] = [np.array([0.0], np.float32)] * 4  # flat spells and repeats too
    actions[20:23] = [np.array([0.4], np.float32)] * 3
    _, _, infos, targets = _run(env, actions, seed=2)
    start = spx.index.get_loc(infos[0]["timestamp"])
    result = _replay(spx, start, targets, cash=cash, fee_bps=5.0)
    _assert_same_account(infos, result, spx, start)


def test_reward_is_position_times_next_log_return_less_fee_and_risk(spx):
    window, fee_bps, penalty = 10, 8.0, 3.0
    env = MarketEnv(spx, window=window, fee_bps=fee_bps, risk_penalty=penalty, episode_length=80)
    actions = _random_actions(env, 80, seed=4)
    _, rewards, infos, targets = _run(env, actions, seed=4)
    start = spx.index.get_loc(infos[0]["timestamp"])
    log_close = np.log(spx["Close"].to_numpy())
    returns = np.diff(log_close, prepend=np.nan)
    expected, previous = [], 0.0
    for k, w in enumerate(targets):
        t = start + k
        variance = np.var(returns[t - window + 1 : t + 1])
        cost = fee_bps / 1e4 * abs(w - previous)
        expected.append(w * (log_close[t + 1] - log_close[t]) - cost - penalty * w * w * variance)
        previous = w
    np.testing.assert_allclose(rewards, expected, rtol=1e-10, atol=1e-15)
    assert sum(rewards) == pytest.approx(sum(expected), rel=1e-10)


def test_holding_keeps_units_and_the_pnl_feature_tracks_equity(spx):
    env = MarketEnv(spx, window=10, include_pnl=True, fee_bps=0)
    obs, _ = env.reset(options={"start": 200})
    obs, _, _, _, info = env.step(2)
    units = info["units"]
    assert units == pytest.approx(10_000 / spx["Close"].iloc[200])
    for k in range(1, 4):
        obs, _, _, _, info = env.step(2)
        assert info["units"] == units and info["trades"] == 1
        close = spx["Close"].to_numpy()
        assert info["equity"] == pytest.approx(units * close[201 + k])
        assert obs[-1] == pytest.approx(close[201 + k] / close[200] - 1, rel=1e-5)
        assert obs[-2] == 1.0


# ------------------------------------------------------------------------------ observations


def test_observation_is_the_feature_window_then_the_position(spx):
    features = build_features(spx, windows=(5,), indicators=False, calendar=False)
    env = MarketEnv(spx, window=4, features=features, normalize="none", clip=1.0)
    obs, _ = env.reset(options={"start": 100})
    obs, *_ = env.step(0)
    window = features.iloc[98:102].to_numpy(np.float32).clip(-1, 1)
    np.testing.assert_array_equal(obs[:-1], window.ravel())
    assert obs[-1] == -1.0
    assert env.feature_names == list(features.columns)


def test_observations_do_not_depend_on_later_bars(spx):
    cut = 400
    changed = spx.copy()
    factor = np.exp(np.random.default_rng(0).normal(0, 0.05, len(spx) - cut - 1))
    for column in ("Open", "High", "Low", "Close"):
        changed.iloc[cut + 1 :, changed.columns.get_loc(column)] *= factor
    for features in (None, build_features):
        original = MarketEnv(spx, window=10, features=features)
        altered = MarketEnv(changed, window=10, features=features)
        first = _run(original, [2] * (cut - original.first_bar), seed=0)[0]
        second = _run(altered, [2] * (cut - altered.first_bar), seed=0)[0]
        assert len(first) == cut - original.first_bar + 1  # observations up to bar `cut`
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b)
        later = original.step(2)[0], altered.step(2)[0]
        assert not np.array_equal(*later)  # the change is visible once bar cut + 1 is observed


def test_observations_stay_in_bounds_and_are_never_mutated(spx):
    env = MarketEnv(spx, window=10, actions="continuous", include_pnl=True)
    observations = _run(env, _random_actions(env, 500, seed=1), seed=0)[0]
    kept = [o.copy() for o in observations]
    for obs, copy in zip(observations, kept, strict=True):
        np.testing.assert_array_equal(obs, copy)
        assert env.observation_space.contains(obs)
    z = np.concatenate([o[:-2] for o in observations])
    assert 0.5 < z.std() < 2.0  # normalized features, not raw prices


# --------------------------------------------------------------------------------- render


def test_render_ansi_and_rgb_array(spx):
    text_env = MarketEnv(spx, window=10, render_mode="ansi")
    text_env.reset(seed=0)
    text_env.step(2)
    line = text_env.render()
    assert isinstance(line, str) and "\n" not in line
    assert "equity" in line and "position +1.000" in line
    picture_env = MarketEnv(spx, window=10, render_mode="rgb_array", episode_length=40)
    _run(picture_env, _random_actions(picture_env, 40, seed=0), seed=0)
    image = picture_env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # something is drawn
    assert MarketEnv(spx, window=10).render() is None


# --------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"window": 0}, "window"),
        ({"window": 2.5}, "window"),
        ({"actions": "both"}, "actions"),
        ({"fee_bps": -1}, "fee_bps"),
        ({"fee_bps": float("nan")}, "fee_bps"),
        ({"episode_length": 0}, "episode_length"),
        ({"episode_length": 10**6}, "data too short"),
        ({"render_mode": "human"}, "render_mode"),
        ({"cash": 0}, "cash"),
        ({"risk_penalty": -0.1}, "risk_penalty"),
        ({"normalize": "minmax"}, "normalize"),
        ({"norm_warmup": 0}, "norm_warmup"),
        ({"clip": 0}, "clip"),
        ({"data": 123}, "data"),
        ({"features": pd.DataFrame({"x": [1.0, 2.0]})}, "features"),
        ({"features": lambda frame: frame["Close"]}, "features"),
    ],
)
def test_bad_arguments_raise_one_line_errors(spx, kwargs, argument):
    settings = {"data": spx, "window": 10, **kwargs}
    with pytest.raises(ValueError, match=argument) as caught:
        MarketEnv(**settings)
    message = str(caught.value)
    assert message.startswith("MarketEnv: ") and "\n" not in message


def test_bad_actions_raise(spx):
    env = MarketEnv(spx, window=10)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(3)
    with pytest.raises(ValueError, match="action"):
        env.step(1.5)
    assert env.step(np.array(2))[4]["position"] == 1.0  # a 0-d array is an action too
    continuous = MarketEnv(spx, window=10, actions="continuous")
    continuous.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        continuous.step(np.array([np.nan], np.float32))
    with pytest.raises(ValueError, match="start"):
        env.reset(options={"start": 0})
