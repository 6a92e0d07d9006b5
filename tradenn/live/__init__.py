"""Paper trading: a backtest strategy, unchanged, on a live or replayed feed.

* :class:`SimulatedBroker` fills with the backtester's broker (same fills and costs);
  :class:`Broker` is the interface a real broker adapter implements.
* :class:`Ledger` records every bar's orders, fills, position and equity in SQLite, one
  transaction per bar.
* :class:`PaperTrader` is the run loop: it resumes from the ledger by replaying its bars, and
  processes each bar exactly once whatever kills it.
"""

from tradenn.live.broker import Bar, Broker, Fill, SimulatedBroker
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
