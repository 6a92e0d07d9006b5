"""The SMA(10, 20) crossover of backtesting.py's README, once per library: the bench's reference.

The bench scripts that set tradenn beside backtesting.py import their strategies from here, so
each form is written once per library. The tradenn and backtesting.py bodies are the same apart
from the imports (docs/porting_from_backtesting_py.md shows the pair), and the parameters keep
the README's names, ``n1`` and ``n2``:

* ``SmaCross`` / ``SmaCrossBt``: the README form, ``buy()`` on a cross above, ``sell()`` on a
  cross below (the same trades as the reversal under ``exclusive_orders=True``);
* ``SmaReverseBt``: ``position.close()`` first, then ``buy()`` or ``sell()``, under default
  settings: in backtesting.py the rule of tradenn's bundled ``strategies/sma_cross.py``, which
  is its tradenn side.

Imported by scripts run as ``python bench/X.py``, which puts this folder on ``sys.path``.
"""

from __future__ import annotations

import backtesting
from backtesting.lib import crossover as bt_crossover
from backtesting.test import SMA

from tradenn.backtest import Strategy, crossover
from tradenn.features import sma

__all__ = ["SmaCross", "SmaCrossBt", "SmaReverseBt", "reverse_bt"]


class SmaCrossBt(backtesting.Strategy):
    """backtesting.py's README example: buy on a cross above, sell on a cross below."""

    n1 = 10
    n2 = 20

    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):
        if bt_crossover(self.sma1, self.sma2):
            self.buy()
        elif bt_crossover(self.sma2, self.sma1):
            self.sell()


class SmaCross(Strategy):
    """The same in tradenn."""

    n1 = 10
    n2 = 20

    def init(self):
        self.sma1 = self.I(sma, self.data.Close, self.n1)
        self.sma2 = self.I(sma, self.data.Close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.sell()


def reverse_bt(strategy: backtesting.Strategy) -> None:
    """The reversal in backtesting.py: on a cross of ``strategy.sma1`` and ``strategy.sma2``,
    close the position, then enter the other way (no ``exclusive_orders`` needed)."""
    if bt_crossover(strategy.sma1, strategy.sma2):
        strategy.position.close()
        strategy.buy()
    elif bt_crossover(strategy.sma2, strategy.sma1):
        strategy.position.close()
        strategy.sell()


class SmaReverseBt(SmaCrossBt):
    """Close the position explicitly, then enter (:func:`reverse_bt`)."""

    def next(self):
        reverse_bt(self)
