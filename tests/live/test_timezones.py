"""A paper run on tz-aware bars: the ledger keeps the zone, so a restart across a daylight-saving
change replays the ledger and continues exactly as one uninterrupted run (and as the backtest)."""

from __future__ import annotations

import pandas as pd

from strategies import load_strategy
from tradenn.backtest import Backtest
from tradenn.data.synthetic import gbm
from tradenn.live import Ledger, PaperTrader, SimulatedBroker
from tradenn.live.feeds import ReplayFeed

NEW_YORK = "America/New_York"
PARAMS = {"fast": 5, "slow": 15}


def _paper(frame: pd.DataFrame, path) -> tuple:
    with Ledger(path) as ledger:
        trader = PaperTrader(
            load_strategy("sma_cross"),
            lambda: SimulatedBroker(10_000.0),
            ledger,
            ReplayFeed(frame),
            params=PARAMS,
        )
        summary = trader.run()
        return summary, ledger.rows("orders"), ledger.rows("fills"), ledger.bars()


def test_a_tz_aware_paper_run_resumes_across_a_dst_change_as_one_run(tmp_path):
    prices = gbm(120, sigma=0.35, seed=7)[["Open", "High", "Low", "Close", "Volume"]]
    prices.index = pd.bdate_range("2017-02-01", periods=120, name="Date", tz=NEW_YORK)
    dst = int(prices.index.searchsorted(pd.Timestamp("2017-03-13", tz=NEW_YORK)))
    assert prices.index[dst - 1].utcoffset() != prices.index[dst].utcoffset()

    whole = _paper(prices, tmp_path / "whole.db")
    path = tmp_path / "parts.db"
    _paper(prices.iloc[: dst - 5], path)  # stopped before the change
    _paper(prices.iloc[: dst + 5], path)  # replays bars in -05:00, continues in -04:00
    summary, orders, fills, bars = _paper(prices, path)  # replays bars on both sides

    assert (summary.replayed, summary.processed) == (dst + 5, len(prices) - dst - 5)
    assert (orders, fills) == (whole[1], whole[2])
    assert bars.index.equals(prices.index) and str(bars.index.tz) == NEW_YORK

    backtest = Backtest(prices, load_strategy("sma_cross")).run(**PARAMS)
    filled = backtest.orders[backtest.orders["Status"] == "filled"]
    assert len(fills) == len(filled) > 2
    assert [f["time"] for f in fills] == [t.isoformat() for t in filled["FillTime"]]
