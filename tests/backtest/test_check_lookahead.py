"""check_lookahead: every ready strategy is clean; peeking ones are caught at the right bar."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from strategies import available, load_strategy
from strategies.adapters import AgentStrategy, ForecastStrategy
from tradenn import data
from tradenn.backtest import Backtest, BacktestError, LookAheadError, Strategy
from tradenn.backtest.lookahead import check_lookahead
from tradenn.backtest.stats import ImplausibleResultWarning

from .test_model_strategies import OVERRIDES

STRATEGIES = available()
RULES = {
    name: cls
    for name, cls in STRATEGIES.items()
    if not issubclass(cls, ForecastStrategy | AgentStrategy)
}
AGENTS = {name: cls for name, cls in STRATEGIES.items() if issubclass(cls, AgentStrategy)}
MODELS = {name: cls for name, cls in STRATEGIES.items() if issubclass(cls, ForecastStrategy)}

# tiny settings: the check is about causality, not about forecast quality
NET = {"epochs": 2, "patience": 1, "lookback": 5, "train_size": 200, "retrain": 150}
SMALL = {
    "linreg_forecast": {"train_size": 200, "retrain": 100},
    "knn_pattern": {"train_size": 200, "retrain": 100, "k": 10},
    "lstm_forecast": {**NET, "units": 4},
    "gru_forecast": {**NET, "units": 4},
    "attention_forecast": {**NET, "units": 4},
    "tcn_forecast": {**NET, "lookback": 8, "filters": 4},
    "transformer_lm": {
        "train_size": 200,
        "retrain": 150,
        "lookback": 8,
        "epochs": 1,
        "n_bins": 7,
        "d_model": 8,
        "num_layers": 1,
    },
    "q_learning": {"train_size": 200, "retrain": 150, "episodes": 5, "episode_length": 50},
    "dqn": {"train_size": 200, "retrain": 150, "timesteps": 300, "hidden": 8, "episode_length": 50},
}
# the settings of tests/backtest/test_model_strategies.py, on its 2000-bar series
LARGER = {
    **OVERRIDES,
    "q_learning": {"retrain": 500},
    "dqn": {"retrain": 500, "timesteps": 5000},
}


@pytest.fixture(scope="module")
def spx():
    return data.load("SPX", start="2000-01-01", end="2002-12-31")


@pytest.fixture(scope="module")
def ou():
    return data.ornstein_uhlenbeck(500, half_life=5, seed=21)


@pytest.fixture(scope="module")
def short():
    return data.gbm(80, seed=3)


def test_every_ready_strategy_has_a_small_setting_or_is_rule_based():
    assert set(SMALL) == set(MODELS) | set(AGENTS)
    assert len(RULES) >= 6


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_based_strategies_are_clean(name, spx):
    report = check_lookahead(RULES[name], spx, backtest_options={"commission": 0.001})
    assert report.clean, report.summary()
    assert report.first_bar is None
    assert len(report.cuts) == 10
    assert report.runs == 21


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_based_strategies_are_clean_trading_on_the_close(name, spx):
    options = {"trade_on_close": True, "fractional": True}
    report = check_lookahead(RULES[name], spx, cuts=4, seed=1, backtest_options=options)
    assert report.clean, report.summary()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_strategies_are_clean(name, ou):
    report = check_lookahead(MODELS[name], ou, params=SMALL[name], cuts=3)
    assert report.mode == "positions"
    assert report.clean, report.summary()
    assert report.runs == 7


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agent_strategies_only_differ_on_a_prefix_ending_at_their_first_decision(name, ou):
    """AgentStrategy.positions returns flat for a prefix that ends at the first decision bar
    (its ``first > n - 2`` guard: the environment cannot start at the last bar), while the full
    run decides there. Not a use of later bars, but a decision that depends on whether later
    bars exist; the checker reports it. Every other cut and every perturbation is clean."""
    report = check_lookahead(AGENTS[name], ou, params=SMALL[name], cuts=3)
    first_decision = report.cuts[0]  # cuts start at the first bar with a non-flat target
    assert len(report.cuts) == 3 and report.runs == 7
    for finding in report.findings:
        assert finding.kind == "truncated"
        assert finding.cut == finding.bar == first_decision
        assert "-> 0 when" in finding.detail


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LARGER))
def test_model_strategies_are_clean_at_larger_settings(name):
    series = data.ornstein_uhlenbeck(2000, half_life=5, seed=21)
    params = {"train_size": 500, "retrain": 250, **LARGER[name]}
    report = check_lookahead(STRATEGIES[name], series, params=params, cuts=4)
    if name in AGENTS:  # see the agent test above: only the first-decision prefix may differ
        assert all(f.cut == report.cuts[0] == f.bar for f in report.findings), report.summary()
    else:
        assert report.clean, report.summary()


# ------------------------------------------------------------------ peeking strategies


def _every_bar(frame: pd.DataFrame) -> int:
    return len(frame)  # at least one cut per bar after the first decision


def test_next_reading_tomorrow_through_a_closure_of_the_frame(short):
    class Tomorrow(Strategy):
        def init(self):
            frame = self.data._frame  # the whole frame, captured past the BarSeries guard

            def tomorrow() -> float | None:
                i = len(self.data)
                return float(frame["Close"].iloc[i]) if i < len(frame) else None

            self.tomorrow = tomorrow

        def next(self):
            ahead = self.tomorrow()
            if ahead is not None and ahead > self.data.Close[-1]:
                self.buy(size=1)

    close = short["Close"].to_numpy()
    expected = short.index[int(np.flatnonzero(close[1:] > close[:-1])[0])]
    report = check_lookahead(Tomorrow, short, cuts=_every_bar(short), perturb=False)
    assert report.mode == "next"
    assert not report.clean
    assert report.first_bar == expected
    assert "order" in report.findings[0].detail
    assert report.findings[0].kind == "truncated"
    assert report.findings[0].time == expected
    # a causal twin (yesterday instead of tomorrow) is clean under the same check
    assert check_lookahead(_yesterday_twin(), short, cuts=_every_bar(short)).clean


def _yesterday_twin() -> type[Strategy]:
    class Yesterday(Strategy):
        def next(self):
            if len(self.data) > 1 and self.data.Close[-2] > self.data.Close[-1]:
                self.buy(size=1)

    return Yesterday


def centered(close: np.ndarray) -> np.ndarray:
    return pd.Series(close).rolling(5, center=True).mean().to_numpy()


def test_an_unchecked_centered_indicator_is_caught(short):
    class Centered(Strategy):
        def init(self):
            self.m = self.I(centered, self.data.Close, check_lookahead=False)

        def next(self):
            if self.m[-1] > self.data.Close[-1]:
                self.buy(size=1)

    m = centered(short["Close"].to_numpy())
    expected = short.index[int(np.flatnonzero(m > short["Close"].to_numpy())[0])]
    report = check_lookahead(Centered, short, cuts=_every_bar(short), perturb=False)
    assert report.first_bar == expected
    with_noise = check_lookahead(Centered, short, cuts=10)
    assert not with_noise.clean and with_noise.first_bar <= expected


def test_a_checked_peeking_indicator_is_reported_not_raised(short):
    class Checked(Strategy):
        def init(self):
            self.m = self.I(centered, self.data.Close)

        def next(self):
            if self.m[-1] > self.data.Close[-1]:
                self.buy(size=1)

    with pytest.raises(LookAheadError):
        Backtest(short, Checked).run()
    report = check_lookahead(Checked, short)
    assert [f.kind for f in report.findings] == ["engine"]
    # the indicator's own check cuts at a third of the data; the centered window changes the
    # value two bars before the cut
    assert report.first_index == len(short) // 3 - 2
    assert report.runs == 1


class ShiftedTarget(Strategy):
    """Flat for 20 bars, then long or short by tomorrow's close (shift(-1))."""

    def positions(self, frame):
        target = np.sign(frame.Close.shift(-1) - frame.Close).fillna(0.0)
        target.iloc[:20] = 0.0
        return target


def test_positions_using_shift_minus_one_is_reported_at_the_first_decision(short):
    with pytest.raises(LookAheadError):
        Backtest(short, ShiftedTarget).run()
    report = check_lookahead(ShiftedTarget, short)
    assert report.mode == "positions"
    assert report.cuts[0] == 20
    assert report.first_bar == short.index[20]
    assert report.first_index == 20
    assert all(f.kind in ("truncated", "perturbed") for f in report.findings)


class UnderlyingFrame(Strategy):
    """Flat for 20 bars, then sized by tomorrow's return read from ``self.data``'s frame, not
    from the frame handed to positions(): a prefix still sees the whole future there."""

    def positions(self, frame):
        full = self.data._frame["Close"]
        target = np.tanh(10.0 * (full.shift(-1) / full - 1.0)).reindex(frame.index).fillna(0.0)
        target.iloc[:20] = 0.0
        return target


def test_a_peek_only_perturbation_catches(short):
    # the engine's own truncation check passes it; only its too smooth result gives it away
    with pytest.warns(ImplausibleResultWarning, match=r"UnderlyingFrame\(\): .*Sortino"):
        Backtest(short, UnderlyingFrame).run()
    assert check_lookahead(UnderlyingFrame, short, perturb=False).clean
    report = check_lookahead(UnderlyingFrame, short)
    assert not report.clean
    assert {f.kind for f in report.findings} == {"perturbed"}
    assert report.first_bar == short.index[20]


def test_perturbation_leaves_the_past_alone_and_keeps_bars_valid(short):
    from tradenn.backtest.lookahead import _perturbed
    from tradenn.data.validation import validate

    shaken = _perturbed(short, 30, np.random.default_rng(0))
    validate(shaken)
    pd.testing.assert_frame_equal(shaken.iloc[:31], short.iloc[:31])
    assert (shaken.iloc[31:, :5].to_numpy() != short.iloc[31:, :5].to_numpy()).all()


def test_report_fields_and_serialization(short):
    report = check_lookahead(ShiftedTarget, short, cuts=3)
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["clean"] is False
    assert payload["first_bar"] == short.index[20].isoformat()
    assert payload["runs"] == report.runs == 7
    assert len(payload["findings"]) == len(report.findings) >= 1
    assert "LOOK-AHEAD" in report.summary() and str(short.index[20].date()) in report.summary()
    clean = check_lookahead(STRATEGIES["sma_cross"], short, cuts=3)
    assert clean.to_dict()["first_bar"] is None
    assert "clean" in clean.summary().splitlines()[0]
    assert clean.summary().count("\n") == 0


def test_strategy_by_name_and_parameters(short):
    report = check_lookahead(
        load_strategy("sma_cross"), short, params={"fast": 3, "slow": 7}, cuts=2
    )
    assert report.clean and report.strategy == "SmaCross(fast=3, slow=7)"


def test_a_strategy_name_is_refused_with_a_pointer_to_the_registry(short):
    # the engine knows no ready strategy: names are resolved above it (the CLI, the caller)
    with pytest.raises(BacktestError) as caught:
        check_lookahead("sma_cross", short, cuts=2)
    message = str(caught.value)
    assert "\n" not in message
    assert "strategy must be a Strategy class" in message
    assert "strategies.load_strategy('sma_cross')" in message


@pytest.mark.parametrize("cuts", [0, -1, 2.5, True])
def test_bad_cuts_are_rejected(short, cuts):
    with pytest.raises(BacktestError, match="cuts must be a positive integer"):
        check_lookahead(load_strategy("sma_cross"), short, cuts=cuts)


# ----------------------------------------------------------------------- portfolios and the CLI


def test_a_multi_asset_portfolio_is_clean_and_a_peeking_one_is_caught():
    import pandas as pd

    from tradenn.backtest.portfolio import PortfolioStrategy
    from tradenn.data import load

    assets = {
        "SPX": load("SPX", "2010-01-01", "2011-12-31"),
        "MSFT": load("MSFT", "2010-01-01", "2011-12-31"),
    }
    report = check_lookahead(load_strategy("equal_weight"), assets, cuts=4)
    assert report.clean and report.mode == "weights" and report.runs == 9

    class Tomorrow(PortfolioStrategy):
        def weights(self, panel):
            close = panel["Close"]
            up = (close.shift(-1) > close).astype(float) * 0.5
            return pd.DataFrame(up, index=panel.index, columns=close.columns)

    report = check_lookahead(Tomorrow, assets, cuts=4)
    assert not report.clean and report.first_bar is not None


def test_cli_exit_codes(capsys, tmp_path):
    from tradenn.cli import main

    argv = ["check-lookahead", "sma_cross", "--end", "2001-12-31", "--cuts", "3"]
    assert main(argv) == 0
    assert "clean" in capsys.readouterr().out.lower()
    peek = tmp_path / "peek.py"
    peek.write_text(
        "import numpy as np, pandas as pd\n"
        "from tradenn.backtest import Strategy\n"
        "class Peek(Strategy):\n"
        "    def positions(self, data):\n"
        "        up = data.Close.shift(-1) > data.Close\n"
        "        return pd.Series(np.where(up, 1.0, 0.0), index=data.index)\n"
    )
    argv = ["check-lookahead", f"{peek}:Peek", "--end", "2001-12-31", "--cuts", "3", "--json"]
    assert main(argv) == 1
    import json

    payload = json.loads(capsys.readouterr().out)
    assert payload["clean"] is False and payload["first_bar"]
