"""The account kernel's loop: a series of target changes traded on flat buffers of floats.

:func:`tradenn.account.trade_targets` calls :func:`trade_loop` with the bars where the target
changes. The loop is written once, in the subset of Python that numba compiles. With the
optional extra ``tradenn[fast]`` (numba) installed, runs of :data:`JIT_CHANGES` target changes
or more use it compiled; otherwise CPython runs the same source on Python lists (list indexing
is several times cheaper than numpy's in CPython). Both give the same bits: the arithmetic is
IEEE double precision in the same order either way (numba is not allowed to reassociate, no
``fastmath``), and ``tests/backtest/test_trade_targets`` compares the two. ``TRADENN_JIT=0``
keeps the CPython path with numba installed.

Buffers (one flat list or array each, ``width`` values per row):

* ``fills`` (3): bar, units held after, cash after;
* ``orders`` (6): bar, side, size, fill price (NaN if canceled), filled (1) or canceled (0),
  tag (0 none, 1 margin call, 2 end of data);
* ``trades`` (6), the closed trades: size, entry bar, exit bar, entry price, exit price,
  commission;
* ``lots`` (4), the open lots oldest first (rows ``head`` to ``tail``): size, entry price,
  entry bar, commission paid so far.
"""

from __future__ import annotations

import math
import os

import numpy as np

FLAT = 1e-9  # tradenn.account.FLAT (a test checks they agree)
TAG_MARGIN_CALL, TAG_END = 1, 2


def trade_loop(
    bars, targets, quotes, close, low, high, cash, impact, commission, fixed, margin,
    fractional, finalize, fills, orders, trades, lots,
):  # fmt: skip
    """Trade the target changes (``targets[j]`` on bar ``bars[j]`` at ``quotes[j]``) as
    :meth:`tradenn.account.Account.trade_to` would, checking for a margin call at ``close``
    between them (``low``/``high``: the lowest and highest close, for the quick test that
    no close can end equity). Returns the rows written to ``fills``, ``orders`` and ``trades``,
    the final cash and units, the fees paid and whether a margin call halted the account."""
    n = len(close)
    units, fees, halted = 0.0, 0.0, False
    nf, no, nt, head, tail = 0, 0, 0, 0, 0
    changes = len(bars)
    for j in range(changes + 1):  # sequential: whole-unit sizing depends on the equity so far
        until = bars[j] if j < changes else n
        ruined = -1
        if nf > 0:  # did equity run out between the last fill and this bar?
            if units == 0.0:
                safe = cash > 0
            elif units > 0:  # equity is monotone in the close: test the extreme one first
                safe = cash + units * low > 0
            else:
                safe = cash + units * high > 0
            if not safe:
                since = int(fills[3 * (nf - 1)])
                gone = np.flatnonzero(cash + units * close[since:until] <= 0)
                if len(gone) > 0:
                    ruined = since + int(gone[0])
        if ruined >= 0 or j == changes:
            # a margin call, or the end: at most one order, closing everything
            if ruined < 0 and not (finalize and tail > head):
                break
            i = ruined if ruined >= 0 else n - 1
            quote, target, tag = float(close[i]), 0.0, TAG_MARGIN_CALL if ruined >= 0 else TAG_END
            halted = ruined >= 0
        else:
            i, quote, target, tag = bars[j], quotes[j], targets[j], 0
        for step in range(2):
            # step 0 closes the position (on an exit or a flip), step 1 trades to the target
            amount, opening = 0.0, 0.0
            if step == 0:
                if units == 0.0 or abs(units) <= FLAT:
                    continue
                if target != 0 and (target > 0) == (units > 0):
                    continue
                side = -1 if units > 0 else 1
                size = amount = abs(units)
            else:
                if target == 0:
                    break
                held, sign = units, 1 if target > 0 else -1
                equity = cash + held * quote
                k = quote * impact + commission * (quote * (1 + sign * impact))
                want = abs(target) * (equity - fixed) / (quote * margin + k)
                if not fractional:
                    want = float(math.floor(want + FLAT))
                delta = want - abs(held)
                if delta > FLAT:
                    side, size, opening = sign, delta, delta
                elif delta < -FLAT:
                    side, size, amount = -sign, -delta, min(-delta, abs(units))
                else:
                    break
            # ---- one fill: Account._fifo, _settle and _close_lot, in their order ----
            price = quote * (1 + side * impact)
            traded, left, r = opening, amount, head
            while r < tail and left > FLAT:
                take = min(abs(lots[4 * r]), left)
                traded += take
                left -= take
                r += 1
            base = 6 * no
            orders[base], orders[base + 1], orders[base + 2] = i, side, size
            orders[base + 5] = tag
            no += 1
            if traded <= FLAT:
                orders[base + 3], orders[base + 4] = math.nan, 0.0  # canceled: nothing to trade
                continue
            orders[base + 3], orders[base + 4] = price, 1.0
            fee = commission * (traded * price) + fixed
            cash -= side * traded * price + fee
            fees += fee
            units += side * traded
            if abs(units) <= FLAT:
                units = 0.0
            left = amount
            while head < tail and left > FLAT:
                lot = 4 * head
                lot_size = lots[lot]
                take = min(abs(lot_size), left)
                left -= take
                share_fee = fee * take / traded
                row = 6 * nt
                trades[row + 1], trades[row + 2] = lots[lot + 2], i
                trades[row + 3], trades[row + 4] = lots[lot + 1], price
                nt += 1
                if take >= abs(lot_size) - FLAT:
                    trades[row], trades[row + 5] = lot_size, lots[lot + 3] + share_fee
                    head += 1
                else:  # the closed part becomes a trade with its share of the entry fee
                    share = take / abs(lot_size)
                    part = math.copysign(take, lot_size)
                    trades[row], trades[row + 5] = part, lots[lot + 3] * share + share_fee
                    lots[lot + 3] *= 1 - share
                    lots[lot] = lot_size - part
            if opening > FLAT:
                lot = 4 * tail
                lots[lot], lots[lot + 1] = side * opening, price
                lots[lot + 2], lots[lot + 3] = i, fee * opening / traded
                tail += 1
            fills[3 * nf], fills[3 * nf + 1], fills[3 * nf + 2] = i, units, cash
            nf += 1
        if halted or j == changes:
            break
    return nf, no, nt, cash, units, fees, halted


JIT_CHANGES = 2_000
"""From this many target changes on, the compiled loop is used (when numba is installed): below
it, importing numba and loading the compiled loop (about half a second per process, a few
seconds the first time it compiles) costs more than CPython's loop (about 4 us per change)."""

_COMPILED: list = []  # the compiled loop, once asked for (None: not available)


def compiled():
    """:func:`trade_loop` compiled by numba (cached on disk), or None without numba or with
    ``TRADENN_JIT=0``; imported and compiled on first use."""
    if not _COMPILED:
        loop = None
        if os.environ.get("TRADENN_JIT", "1") != "0":
            try:
                import numba
            except ImportError:
                pass
            else:
                loop = numba.njit(cache=True, nogil=True)(trade_loop)
        _COMPILED.append(loop)
    return _COMPILED[0]
