"""trade_targets (the account kernel for positions() runs) equals the Account, bit for bit,
compiled by numba and run by CPython alike.

The reference is the account itself, driven the plain way: bar by bar, ``Account.trade_to``
where the target changes, a margin call at the first close where equity is gone, and the
open position closed at the end when asked. Everything the kernel records (fills, closed
trades, orders, commissions, halting) must be exactly what ``Record.of`` reads off that account.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import account as account_module
from tradenn import targets as targets_module
from tradenn.account import FLAT, Account, Record, Settings, trade_targets

LEVELS = np.array([-1.0, -0.6, -0.25, 0.0, 0.0, 0.1, 0.35, 0.8, 1.0])


def _reference(settings: Settings, targets, quotes, close, delay, finalize) -> Record:
    account = Account(settings)
    (book,) = account.books.values()
    n = len(close)
    for i in range(n):
        t = i - delay
        if t >= 0 and targets[t] != (targets[t - 1] if t > 0 else 0.0):
            account.trade_to(book, float(targets[t]), float(quotes[i]), i)
        if account.fills and account.cash + book.units * close[i] <= 0:
            account.liquidate(i, {book.name: float(close[i])}, "margin call: equity exhausted")
            account.halted = True
            break
    if finalize and book.trades and not account.halted:
        account.liquidate(n - 1, {book.name: float(close[-1])}, "end of data")
    return Record.of(account, book)


def _case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 160))
    steps = rng.normal(0.0, rng.choice([0.01, 0.05]), n)
    if rng.random() < 0.3:  # a crash or a squeeze: margin calls for leveraged positions
        steps[rng.integers(0, n)] = rng.choice([-0.9, 1.5])
    close = 50.0 * np.exp(np.cumsum(steps))
    opens = close * np.exp(rng.normal(0.0, 0.005, n))
    hold = rng.integers(1, 8, n)
    targets = np.repeat(rng.choice(LEVELS, n), hold)[:n]
    settings = Settings(
        cash=float(rng.choice([1_000.0, 10_000.0, 333.33])),
        commission=float(rng.choice([0.0, 0.001, 0.004])),
        fixed_commission=float(rng.choice([0.0, 0.0, 1.5])),
        spread=float(rng.choice([0.0, 0.002])),
        slippage_bps=float(rng.choice([0.0, 5.0])),
        margin=float(rng.choice([1.0, 0.5, 0.2])),
        trade_on_close=bool(rng.random() < 0.3),
        fractional=bool(rng.random() < 0.5),
    )
    delay = 0 if settings.trade_on_close else 1
    quotes = close if settings.trade_on_close else opens
    return settings, targets, quotes, close, delay, bool(rng.random() < 0.5)


PATHS = ["cpython"] + (["numba"] if targets_module.compiled() is not None else [])


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """Run the kernel's loop the given way, whatever the number of changes (numba only where
    it is installed)."""
    if request.param == "cpython":
        monkeypatch.setattr(targets_module, "JIT_CHANGES", 10**18)
    else:
        monkeypatch.setattr(targets_module, "JIT_CHANGES", 0)
    return request.param


def _records_equal(found: Record, expected: Record) -> None:
    np.testing.assert_array_equal(found.fills, expected.fills)
    np.testing.assert_array_equal(found.trades, expected.trades)
    assert found.trade_tags == expected.trade_tags
    for key, column in expected.orders.items():
        assert list(found.orders[key]) == list(column), key
    assert found.commissions == expected.commissions
    assert found.halted == expected.halted


def test_the_loop_flat_threshold_is_the_account_s():
    assert targets_module.FLAT == FLAT == account_module.FLAT


@pytest.mark.parametrize("block", range(6))
def test_trade_targets_equals_the_account_bar_by_bar(block, path):
    halted = 0
    for seed in range(block * 60, (block + 1) * 60):
        settings, targets, quotes, close, delay, finalize = _case(seed)
        expected = _reference(settings, targets, quotes, close, delay, finalize)
        found = trade_targets(
            settings, settings.costs(), targets, quotes, close, delay=delay, finalize=finalize
        )
        _records_equal(found, expected)
        halted += found.halted
    assert halted > 0  # the margin call is exercised in every block


def test_a_margin_call_liquidates_at_the_first_close_without_equity(path):
    close = np.array([100.0, 100.0, 100.0, 160.0, 250.0, 260.0])
    targets = np.array([-1.0, -1.0, -1.0, -1.0, -1.0, -1.0])  # short 2x from the first bar
    settings = Settings(cash=1_000.0, margin=0.5, fractional=True)
    record = trade_targets(settings, settings.costs(), targets, close, close, delay=0)
    assert record.halted
    # short 20 units at 100 (2x of 1,000): equity 3,000 - 20 x close is gone at 160 (bar 3)
    assert record.fills[:, 0].tolist() == [0, 3]
    assert record.trades[0, 2] == 3 and record.trades[0, 4] == 160.0  # exit bar and price
    assert record.orders["tag"][-1] == "margin call: equity exhausted"
