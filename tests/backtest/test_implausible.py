"""Results too good to be true: one warning per run, pointing at the look-ahead check.

The cheats here read the future through a side channel the engine cannot see: a module-level
array of every close (``FUTURE``), which ``next()``, ``positions()`` and ``weights()`` index one
bar ahead. Trading at the close on tomorrow's direction makes every bar a winner.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from tradenn.backtest import Backtest, PortfolioBacktest, PortfolioStrategy, Strategy
from tradenn.backtest.lookahead import check_lookahead
from tradenn.backtest.optimize import optimize, walk_forward_optimize
from tradenn.backtest.stats import ImplausibleResultWarning, implausible
from tradenn.cli import main
from tradenn.data import gbm

FUTURE = np.empty(0)  # every close of the data under test: the side channel
MESSAGE = re.compile(
    r"^(?P<label>.+): a return of \+\S+ % \(Sharpe \d+\.\d\) is implausible; check for "
    r"look-ahead: tradenn check-lookahead STRATEGY --data SOURCE$"
)


@pytest.fixture
def prices(monkeypatch) -> pd.DataFrame:
    """600 business days of a GBM, their closes also in ``FUTURE``."""
    frame = gbm(600, sigma=0.4, seed=4)
    monkeypatch.setitem(globals(), "FUTURE", frame["Close"].to_numpy())
    return frame


def tomorrow_up(bars: int) -> np.ndarray:
    """+1 where the next close is higher, else -1, for the first ``bars`` bars (0 at the last
    bar of the data, which has no tomorrow)."""
    ahead = np.append(np.sign(np.diff(FUTURE)), 0.0)
    return ahead[:bars]


class Peek(Strategy):
    """Long before a rise, short before a fall."""

    scale = 1.0

    def next(self):
        side = tomorrow_up(len(self.data))[-1]
        if side > 0 and not self.position.is_long:
            self.position.close()
            self.buy(size=0.99 * self.scale)
        elif side < 0 and not self.position.is_short:
            self.position.close()
            self.sell(size=0.99 * self.scale)


class PeekTargets(Strategy):
    """The same as target exposures."""

    def positions(self, data):
        return 0.99 * tomorrow_up(len(data))


class PeekWeights(PortfolioStrategy):
    """The same in a portfolio: all in the asset whose future is known, nothing in the other."""

    def weights(self, data):
        ahead = tomorrow_up(len(data))
        return pd.DataFrame({"A": 0.99 * ahead, "B": 0.0}, index=data.index)


def caught(call) -> list[str]:
    """The messages of the implausible-result warnings ``call()`` gives (every one: no
    once-per-location filter)."""
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in found if issubclass(w.category, ImplausibleResultWarning)]


def test_a_strategy_that_reads_the_future_gets_one_warning(prices):
    found = []
    backtest = Backtest(prices, Peek, trade_on_close=True, fractional=True)
    messages = caught(lambda: found.append(backtest.run()))
    assert len(messages) == 1
    match = MESSAGE.match(messages[0])
    assert match and match["label"] == "Peek(scale=1.0)", messages[0]
    stats = found[0].stats
    assert stats["Return [%]"] > 1e6 and stats["Sharpe Ratio"] > 10  # what it reports
    assert f"+{stats['Return [%]']:.1e} %" in messages[0]
    assert f"(Sharpe {stats['Sharpe Ratio']:.1f})" in messages[0]


def test_a_positions_strategy_that_reads_the_future_gets_one_warning(prices):
    messages = caught(Backtest(prices, PeekTargets, trade_on_close=True).run)
    assert len(messages) == 1 and MESSAGE.match(messages[0])["label"] == "PeekTargets()"


def test_a_portfolio_that_reads_the_future_gets_one_warning(prices):
    other = gbm(600, sigma=0.4, seed=5)
    engine = PortfolioBacktest({"A": prices, "B": other}, PeekWeights, trade_on_close=True)
    messages = caught(engine.run)
    assert len(messages) == 1 and MESSAGE.match(messages[0])["label"].startswith("PeekWeights(")


def test_an_honest_strategy_on_the_same_data_does_not_warn(prices):
    class Honest(Strategy):  # the same trading, on yesterday's direction
        def next(self):
            if len(self.data) > 1:
                up = self.data.Close[-1] > self.data.Close[-2]
                if up and not self.position.is_long:
                    self.position.close()
                    self.buy(size=0.99)
                elif not up and not self.position.is_short:
                    self.position.close()
                    self.sell(size=0.99)

    assert caught(Backtest(prices, Honest, trade_on_close=True).run) == []


def test_a_sweep_warns_once_for_its_best_combination(prices):
    backtest = Backtest(prices, Peek, trade_on_close=True, fractional=True)
    sweep = None

    def run():
        nonlocal sweep
        sweep = optimize(backtest, scale=[0.5, 0.8, 1.0], jobs=1)

    messages = caught(run)
    assert len(messages) == 1  # not one per combination
    assert MESSAGE.match(messages[0])["label"] == f"Peek(scale={sweep.best_params['scale']})"


def test_a_walk_forward_optimization_warns_once_for_its_stitched_result(prices):
    backtest = Backtest(prices, Peek, trade_on_close=True, fractional=True)
    messages = caught(
        lambda: walk_forward_optimize(backtest, train=200, test=100, scale=[0.5, 1.0], jobs=1)
    )
    assert len(messages) == 1 and MESSAGE.match(messages[0])["label"] == "Peek walk-forward"


def test_the_look_ahead_check_does_not_warn_about_its_own_runs(prices):
    # (nor can it catch this cheat: the array it reads is not the data the checker cuts)
    messages = caught(
        lambda: check_lookahead(Peek, prices, cuts=2, backtest_options={"trade_on_close": True})
    )
    assert messages == []


def test_the_command_line_prints_the_warning_as_one_line(tmp_path, capsys):
    source = tmp_path / "peek.py"
    source.write_text(
        "import numpy as np\n"
        "from tradenn import data\n"
        "from tradenn.backtest import Strategy\n"
        "FUTURE = data.load('SPX')['Close'].to_numpy()\n"
        "class Peek(Strategy):\n"
        "    def positions(self, frame):\n"
        "        return np.append(np.sign(np.diff(FUTURE)), 0.0)[: len(frame)]\n"
    )
    argv = ["backtest", f"{source}:Peek", "--end", "2002-12-31", "--trade-on-close"]
    assert main([*argv, "--no-plot", "--commission", "0"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "implausible" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("tradenn: warning: Peek(): a return of +")
    assert lines[0].endswith("check for look-ahead: tradenn check-lookahead STRATEGY --data SOURCE")


# ------------------------------------------------------------------------- the thresholds


def stats(total=10.0, sharpe=1.0, sortino=1.5, days=365) -> pd.Series:
    return pd.Series(
        {
            "Duration": pd.Timedelta(days=days),
            "Return [%]": total,
            "Sharpe Ratio": sharpe,
            "Sortino Ratio": sortino,
        }
    )


def test_a_return_above_a_million_percent_is_implausible_however_short_the_run():
    assert implausible(stats(total=2.5e6, sharpe=3.0), bars=5) == (
        "a return of +2.5e+06 % (Sharpe 3.0)"
    )
    assert implausible(stats(total=9.9e5, sharpe=3.0), bars=5) is None


def test_a_sharpe_above_ten_is_implausible_over_a_quarter_year_and_thirty_returns():
    assert implausible(stats(total=500.0, sharpe=12.34), bars=253) == (
        "a return of +500.0 % (Sharpe 12.3)"
    )
    assert implausible(stats(sharpe=9.9), bars=253) is None
    # luck on a short run: a month of bars, or thirty bars of an hour each
    assert implausible(stats(sharpe=15.0, days=30), bars=22) is None
    assert implausible(stats(sharpe=15.0, days=2), bars=40) is None
    assert implausible(stats(sharpe=15.0, days=120), bars=25) is None


def test_a_sortino_above_twenty_is_implausible_and_named():
    assert implausible(stats(total=80.0, sharpe=8.0, sortino=25.0), bars=253) == (
        "a return of +80.0 % (Sharpe 8.0, Sortino 25.0)"
    )
    assert implausible(stats(sharpe=8.0, sortino=19.0), bars=253) is None


def test_undefined_ratios_are_not_implausible():
    assert implausible(stats(sharpe=float("nan"), sortino=float("nan")), bars=253) is None
    assert implausible(stats(total=float("nan")), bars=253) is None
    assert implausible(stats(total=3e6, sharpe=float("nan")), bars=253) == (
        "a return of +3.0e+06 %"
    )
