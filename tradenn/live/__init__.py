"""Paper trading: a backtest strategy, unchanged, on a live or replayed feed.

* :class:`SimulatedBroker` is a view of the backtester's account (same fills and costs);
  :class:`Broker` is the interface a real broker adapter implements.
* :class:`Ledger` records every bar's orders, fills, position and equity in SQLite, one
  transaction per bar.
* :class:`PaperTrader` is the run loop (the backtester's runner over a feed): it resumes from
  the last bar's snapshot in the ledger, and processes each bar exactly once whatever kills it.
"""

from tradenn.account import Fill
from tradenn.live.broker import Broker, SimulatedBroker
from tradenn.live.feeds import Bar
from tradenn.live.ledger import Ledger, LedgerDiskError, LedgerError
from tradenn.live.loop import PaperTrader, RunSummary

__all__ = [
    "Bar",
    "Broker",
    "Fill",
    "Ledger",
    "LedgerDiskError",
    "LedgerError",
    "PaperTrader",
    "RunSummary",
    "SimulatedBroker",
]
