"""An interactive chart of a backtest: one self-contained HTML page drawn by Bokeh.

:func:`interactive_chart` writes what :func:`~tradenn.backtest.plotting.plot_result` draws as a
page a browser can zoom and pan: stacked panels sharing one time axis (zooming or panning one
moves them all, and each panel's price or value axis refits to the bars in view), a crosshair
across every panel, and tooltips on the trades and the equity. The page embeds Bokeh's
JavaScript (``bokeh.resources.INLINE``), so it opens offline and can be mailed as one file.

Bokeh is an optional dependency (``pip install 'tradenn[plot]'``), imported only when a chart
is drawn: ``import tradenn.backtest`` never loads it.

Large backtests stay small: each line keeps at most about :data:`MAX_POINTS` points (the first
and last bar and each bucket's minimum and maximum, so no spike disappears); prices are drawn as
candlesticks while at most :data:`MAX_POINTS` bars are in view and as the close line when more
are (a run longer than :data:`MAX_CANDLE_BARS` bars carries the close line only); every trade is
shown. A 200,000-bar run with 10,900 trades makes a page of about 2.4 MB.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradenn.backtest.plotting import MAX_POINTS, extremes
from tradenn.backtest.portfolio import PortfolioResult
from tradenn.backtest.stats import drawdown
from tradenn.data.calendar import bar_label, bar_seconds
from tradenn.data.timezones import wall_clock
from tradenn.errors import TradennError

__all__ = ["MAX_CANDLE_BARS", "MAX_POINTS", "interactive_chart", "require_bokeh"]

# MAX_POINTS (imported from plotting, the home of line thinning): most points kept per line,
# and most bars in view drawn as candlesticks.

MAX_CANDLE_BARS = 20_000
"""Longest run whose candlesticks the page carries (shown once zoomed in to MAX_POINTS bars)."""

OVERLAY_BAND = (0.6, 1.4)
"""An indicator is drawn over the price when most of its values lie in this band of the close."""

Lines = list[tuple[str, np.ndarray]]
"""Named lines: ``(label, values)`` pairs."""

_GREEN, _RED, _BLUE, _GREY, _DARK = "#1a9641", "#d7191c", "#2c7bb6", "#7f7f7f", "#333333"
_PALETTE = ("#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#1f77b4")

# Refit a panel's y axis to what is in view whenever the shared x range changes: every visible
# renderer's (x column, y column or constant) pairs, as _fitted_points lists them.
_FIT_Y = """
const start = x_range.start, end = x_range.end;
let low = Infinity, high = -Infinity;
const include = (v) => {
    if (Number.isFinite(v)) { low = Math.min(low, v); high = Math.max(high, v); }
};
renderers.forEach((renderer, k) => {
    if (!renderer.visible) return;
    const data = renderer.data_source.data;
    for (const [xs, ys] of points[k]) {
        if (typeof ys === "number") { include(ys); continue; }
        const x = data[xs], y = data[ys];
        for (let i = 0; i < x.length; i++) if (x[i] >= start && x[i] <= end) include(y[i]);
    }
});
if (low <= high) {
    const pad = 0.05 * (high - low) || 0.05 * Math.abs(high) || 1;
    y_range.setv({start: low - pad, end: high + pad});
}
"""

# Candlesticks while few enough bars are in view to tell them apart, the close line otherwise.
_CANDLES_OR_CLOSE = """
let bars = 0;
for (const t of candles[0].data_source.data.x) {
    if (t >= x_range.start && t <= x_range.end) bars++;
}
for (const renderer of candles) renderer.visible = bars <= most;
close.visible = bars > most;
"""


def interactive_chart(result, path: str | Path | None = None, *, title: str | None = None) -> str:
    """Draw a backtest result as a self-contained, interactive HTML page.

    A :class:`~tradenn.backtest.Result` gives stacked panels sharing one time axis:

    1. price: candlesticks (the close as a line while more than :data:`MAX_POINTS` bars are
       in view), entries (green ``▲`` long, red ``▼`` short), exits (``x``) and a segment from
       each entry to its exit, green for a profit and red for a loss, with the trade's times,
       prices, size, P&L and return on hover; the strategy's indicators over the price when
       their values are price-like, otherwise each in a small panel below,
    2. equity against buy & hold scaled to the same starting equity,
    3. drawdown in percent,
    4. position in units (long above zero, short below).

    A :class:`~tradenn.backtest.PortfolioResult` gives its equity against the equal-weight buy &
    hold of its assets, the drawdown and each asset's weight.

    Wheel zoom, pan and box zoom act on the time axis of every panel at once; each panel's
    value axis refits to the bars in view. The title shows ``title`` (default: the strategy
    with its parameters) and Return, Sharpe, Max. Drawdown and # Trades from the stats.

    Parameters
    ----------
    result : Result or PortfolioResult
        What :meth:`Backtest.run <tradenn.backtest.Backtest.run>` or
        :meth:`PortfolioBacktest.run <tradenn.backtest.PortfolioBacktest.run>` returned.
    path : str or Path, optional
        Where to write the page (replaced atomically: a failed write leaves no half file).
    title : str, optional
        The heading; default the strategy with its parameters.

    Returns
    -------
    str
        The HTML text of the page, Bokeh's JavaScript embedded (no network needed to view it).

    Raises
    ------
    TradennError
        Bokeh is not installed.
    """
    require_bokeh()
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    heading = _title(result, title)
    html = file_html(_layout(result, title=title), INLINE, title=heading)
    if path is not None:
        _write_atomically(Path(path), html)
    return html


def require_bokeh() -> None:
    """Raise a one-line :class:`TradennError` saying how to install Bokeh when it is missing
    (the command line checks this before a backtest runs)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        raise TradennError("interactive charts need bokeh: pip install 'tradenn[plot]'") from None


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f"{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------ the layouts


def _layout(result, *, title: str | None = None):
    """The Bokeh grid of panels the page shows (tests inspect its models)."""
    if isinstance(result, PortfolioResult):
        return _portfolio_layout(result, title)
    return _single_asset_layout(result, title)


def _single_asset_layout(result, title: str | None):
    data: pd.DataFrame = result.data
    time = _time_axis(data.index)
    close = data["Close"].to_numpy(dtype=np.float64)
    equity = result.equity.to_numpy(dtype=np.float64)

    price = _panel(time, "price", label="Price", height=340)
    _draw_prices(price, time, data)
    _draw_trades(price, time, result.trades)
    overlays, own = _split_indicators(getattr(result, "indicators", None) or {}, close)
    _draw_lines(price, time, overlays)
    indicator_panels = []
    for name, lines in own:
        panel = _panel(time, f"indicator: {name}", label=name, height=110)
        _draw_lines(panel, time, lines)
        indicator_panels.append(panel)

    panels = [
        price,
        *indicator_panels,
        _equity_panel(time, equity, close / close[0] * equity[0], "Buy & hold"),
        _drawdown_panel(time, result.equity),
        _position_panel(time, result.position.to_numpy(dtype=np.float64)),
    ]
    return _grid(panels, _headline(result, title))


def _portfolio_layout(result: PortfolioResult, title: str | None):
    time = _time_axis(result.equity.index)
    equity = result.equity.to_numpy(dtype=np.float64)
    # As PortfolioResult.plot: the assets trading on the first date, equal weights, no costs.
    marks = result.data["Close"].ffill()
    start = marks.iloc[0].notna()
    hold = (marks.loc[:, start] / marks.iloc[0][start]).mean(axis=1).to_numpy() * equity[0]

    weights = _panel(time, "weights", label="Weight", height=160)
    _draw_lines(
        weights,
        time,
        [(str(a), result.weights[a].to_numpy(dtype=np.float64)) for a in result.weights.columns],
    )
    panels = [
        _equity_panel(time, equity, hold, "Equal-weight buy & hold"),
        _drawdown_panel(time, result.equity),
        weights,
    ]
    return _grid(panels, _headline(result, title))


# ------------------------------------------------------------------------------ the panels


@dataclass(frozen=True)
class _TimeAxis:
    """What the panels of one chart share: the bars' times, one x range and one crosshair."""

    x: np.ndarray
    """The bars' wall-clock times in milliseconds since 1970 (:func:`_milliseconds`)."""
    x_range: Any
    """A ``Range1d`` over the bars plus 1% each side, not panned or zoomed out beyond it."""
    crosshair: Any
    """The vertical ``Span`` every panel's crosshair draws, so it runs through all of them."""
    stamp: str
    """How tooltips write a time: the date for daily or longer bars, else date and time."""


def _time_axis(index: pd.DatetimeIndex) -> _TimeAxis:
    from bokeh.models import Range1d, Span

    x = _milliseconds(index)
    pad = 0.01 * (x[-1] - x[0]) or 86_400_000.0  # one bar alone: a day either side
    lo, hi = x[0] - pad, x[-1] + pad
    return _TimeAxis(
        x=x,
        x_range=Range1d(lo, hi, bounds=(lo, hi)),
        crosshair=Span(dimension="height", line_color=_GREY, line_dash="dotted"),
        stamp="%F" if bar_seconds(index) >= 86_400 else "%F %H:%M",
    )


def _panel(time: _TimeAxis, name: str, *, label: str, height: int):
    """An empty figure on the shared time axis, with x-only zoom and pan."""
    from bokeh.models import BoxZoomTool, CrosshairTool, PanTool, ResetTool, WheelZoomTool
    from bokeh.plotting import figure

    wheel = WheelZoomTool(dimensions="width")
    fig = figure(
        name=name,
        x_range=time.x_range,
        x_axis_type="datetime",
        height=height,
        sizing_mode="stretch_width",
        tools=[
            PanTool(dimensions="width"),
            wheel,
            BoxZoomTool(dimensions="width"),
            ResetTool(),
            CrosshairTool(overlay=time.crosshair),
        ],
        active_scroll=wheel,
        min_border_left=70,
    )
    fig.add_layout(time.crosshair)
    fig.grid.grid_line_color = "#e5e5e5"
    fig.yaxis.axis_label = label
    return fig


def _draw_prices(fig, time: _TimeAxis, data: pd.DataFrame) -> None:
    """Candlesticks while at most MAX_POINTS bars are in view, the close as a line when more
    are; runs longer than MAX_CANDLE_BARS carry the close only (candles would weigh megabytes).
    """
    from bokeh.models import ColumnDataSource, CustomJS
    from bokeh.transform import linear_cmap

    n = len(data)
    close = None
    if n > MAX_POINTS:
        source = _source(time.x, data["Close"].to_numpy(dtype=np.float64))
        close = fig.line("x", "y", source=source, color=_DARK, name="close")
    if n > MAX_CANDLE_BARS:
        return
    columns = {c: data[c].to_numpy(dtype=np.float64) for c in ("Open", "High", "Low", "Close")}
    rising = (columns["Close"] >= columns["Open"]).astype(np.uint8)
    source = ColumnDataSource({"x": time.x, **columns, "rising": rising})
    color = linear_cmap("rising", (_RED, _GREEN), 0, 1)  # 0: a falling bar, 1: a rising one
    candles = [
        fig.segment("x", "High", "x", "Low", source=source, color=color, name="wicks"),
        fig.vbar(
            "x",
            0.7 * bar_seconds(data.index) * 1000.0,
            "Open",
            "Close",
            source=source,
            color=color,
            name="candles",
        ),
    ]
    if close is None:
        return
    for renderer in candles:
        renderer.visible = False  # all n > MAX_POINTS bars are in view at first
    toggle = CustomJS(
        args={"x_range": time.x_range, "candles": candles, "close": close, "most": MAX_POINTS},
        code=_CANDLES_OR_CLOSE,
    )
    time.x_range.js_on_change("start", toggle)
    time.x_range.js_on_change("end", toggle)


def _draw_trades(fig, time: _TimeAxis, trades: pd.DataFrame) -> None:
    """Every trade: a segment from entry to exit (green for a profit, red for a loss), entry
    and exit markers, and the trade's details on hover."""
    from bokeh.models import CDSView, ColumnDataSource, HoverTool, IndexFilter

    if not len(trades):
        return
    source = ColumnDataSource(
        {
            "EntryTime": _milliseconds(trades["EntryTime"]),
            "ExitTime": _milliseconds(trades["ExitTime"]),
            **{
                c: trades[c].to_numpy(dtype=np.float64)
                for c in ("EntryPrice", "ExitPrice", "Size", "PnL", "ReturnPct")
            },
        }
    )
    size, pnl = source.data["Size"], source.data["PnL"]
    marker_size = 11 if len(trades) <= 200 else 7

    def only(mask: np.ndarray):
        return CDSView(filter=IndexFilter(np.flatnonzero(mask)))

    renderers = []
    for won, label, color in ((pnl > 0, "Winning trade", _GREEN), (pnl <= 0, "Losing trade", _RED)):
        if won.any():
            renderers.append(
                fig.segment(
                    "EntryTime",
                    "EntryPrice",
                    "ExitTime",
                    "ExitPrice",
                    source=source,
                    view=only(won),
                    color=color,
                    line_width=1.5,
                    line_alpha=0.8,
                    legend_label=label,
                    name=label,
                )
            )
    for side, label, marker, color in (
        (size > 0, "Long entry", "triangle", _GREEN),
        (size < 0, "Short entry", "inverted_triangle", _RED),
    ):
        if side.any():
            renderers.append(
                fig.scatter(
                    "EntryTime",
                    "EntryPrice",
                    source=source,
                    view=only(side),
                    marker=marker,
                    size=marker_size,
                    color=color,
                    legend_label=label,
                    name=label,
                )
            )
    renderers.append(
        fig.scatter(
            "ExitTime",
            "ExitPrice",
            source=source,
            marker="x",
            size=marker_size,
            color=_DARK,
            line_width=1.5,
            legend_label="Exit",
            name="Exit",
        )
    )
    stamp = time.stamp
    fig.add_tools(
        HoverTool(
            renderers=renderers,
            tooltips=[
                ("Entry", f"@EntryTime{{{stamp}}} at @EntryPrice{{0,0.00[00]}}"),
                ("Exit", f"@ExitTime{{{stamp}}} at @ExitPrice{{0,0.00[00]}}"),
                ("Size", "@Size{0,0.[0000]}"),
                ("PnL", "@PnL{+0,0.00}"),
                ("Return", "@ReturnPct{+0.00%}"),  # a fraction: the % format multiplies by 100
            ],
            formatters={"@EntryTime": "datetime", "@ExitTime": "datetime"},
        )
    )


def _equity_panel(time: _TimeAxis, equity: np.ndarray, hold: np.ndarray, hold_label: str):
    """Equity against a buy & hold benchmark, both values and the time on hover."""
    from bokeh.models import HoverTool

    fig = _panel(time, "equity", label="Equity [$]", height=200)
    lines = _draw_lines(fig, time, [(hold_label, hold), ("Equity", equity)], (_GREY, _BLUE))
    lines[1].glyph.line_width = 1.5
    fig.add_tools(
        HoverTool(
            renderers=lines,
            tooltips=[("", "$name"), ("Time", f"@x{{{time.stamp}}}"), ("Value", "@y{0,0.00}")],
            formatters={"@x": "datetime"},
            mode="vline",
        )
    )
    return fig


def _drawdown_panel(time: _TimeAxis, equity: pd.Series):
    """Drawdown in percent below the running peak, as an area."""
    fig = _panel(time, "drawdown", label="Drawdown [%]", height=110)
    source = _source(time.x, -100.0 * drawdown(equity).to_numpy())
    fig.varea("x", "y", 0.0, source=source, color=_RED, alpha=0.35)
    fig.line("x", "y", source=source, color=_RED, line_width=0.8)
    return fig


def _position_panel(time: _TimeAxis, position: np.ndarray):
    """Units held: long as a green area above zero, short as a red one below."""
    from bokeh.models import ColumnDataSource

    fig = _panel(time, "position", label="Position", height=100)
    keep = extremes(position)
    units = position[keep]
    source = ColumnDataSource(
        {"x": time.x[keep], "y": units, "long": np.fmax(units, 0.0), "short": np.fmin(units, 0.0)}
    )
    fig.varea_step("x", "long", 0.0, step_mode="after", source=source, color=_GREEN, alpha=0.4)
    fig.varea_step("x", "short", 0.0, step_mode="after", source=source, color=_RED, alpha=0.4)
    fig.step("x", "y", mode="after", source=source, color=_DARK, line_width=0.6)
    return fig


def _grid(panels: list, headline: tuple[str, str]):
    """The panels stacked under one toolbar, titled; each refits its y axis to the bars in view
    and only the last shows the time axis."""
    from bokeh.layouts import gridplot
    from bokeh.models import Title

    name, summary = headline
    top = panels[0]
    top.add_layout(Title(text=summary, text_font_style="normal", text_font_size="11pt"), "above")
    top.add_layout(Title(text=name, text_font_size="13pt"), "above")
    for fig in panels:
        _fit_y_to_view(fig)
        if fig.legend:
            fig.legend.location = "top_left"
            fig.legend.orientation = "horizontal"
            fig.legend.click_policy = "hide"
            fig.legend.background_fill_alpha = 0.7
            fig.legend.label_text_font_size = "8pt"
    for fig in panels[:-1]:
        fig.xaxis.visible = False
    grid = gridplot(
        [[fig] for fig in panels],
        merge_tools=True,
        toolbar_location="right",
        sizing_mode="stretch_width",
    )
    grid.toolbar.logo = None
    return grid


def _fit_y_to_view(fig) -> None:
    """Give ``fig`` a y range fitting its renderers' points, refitted to the points in view
    whenever the shared x range changes. (Bokeh's automatic range fits all the data, so a
    zoomed-in candle would be a dash, and it recomputes itself when a renderer is hidden.)"""
    from bokeh.models import CustomJS, Range1d

    renderers = list(fig.renderers)
    points = [_fitted_points(r.glyph) for r in renderers]
    values = [
        np.ravel(renderer.data_source.data[ys] if isinstance(ys, str) else ys)
        for renderer, pairs in zip(renderers, points, strict=True)
        for _, ys in pairs
    ]
    fig.y_range = Range1d(*_padded(np.concatenate(values)))
    fit = CustomJS(
        args={
            "x_range": fig.x_range,
            "y_range": fig.y_range,
            "renderers": renderers,
            "points": points,
        },
        code=_FIT_Y,
    )
    fig.x_range.js_on_change("start", fit)
    fig.x_range.js_on_change("end", fit)


def _padded(values: np.ndarray) -> tuple[float, float]:
    """The span of the finite ``values`` widened by 5% each side, as ``_FIT_Y`` widens it."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = 0.05 * (high - low) or 0.05 * abs(high) or 1.0
    return low - pad, high + pad


_POINTS = {
    "Segment": (("x0", "y0"), ("x1", "y1")),
    "VBar": (("x", "top"), ("x", "bottom")),
    "VArea": (("x", "y1"), ("x", "y2")),
    "VAreaStep": (("x", "y1"), ("x", "y2")),
}


def _fitted_points(glyph) -> list[list]:
    """The glyph's ``[x column, y column or constant]`` pairs (a constant such as an area's
    zero baseline is always in view)."""
    pairs = _POINTS.get(type(glyph).__name__, (("x", "y"),))
    return [[getattr(glyph, xs), getattr(glyph, ys)] for xs, ys in pairs]


# ------------------------------------------------------------------------------ lines and data


def _draw_lines(fig, time: _TimeAxis, lines: Lines, colors: Sequence[str] = _PALETTE) -> list:
    """One line per ``(label, values)`` over the bars, thinned to its extremes, named and in
    the legend as its label; returns the renderers."""
    return [
        fig.line(
            "x",
            "y",
            source=_source(time.x, values),
            color=colors[k % len(colors)],
            legend_label=label,
            name=label,
        )
        for k, (label, values) in enumerate(lines)
    ]


def _source(x: np.ndarray, y: np.ndarray):
    """A ``ColumnDataSource`` of ``x`` and ``y`` at the positions
    :func:`~tradenn.backtest.plotting.extremes` keeps."""
    from bokeh.models import ColumnDataSource

    keep = extremes(y)
    return ColumnDataSource({"x": x[keep], "y": np.asarray(y, dtype=np.float64)[keep]})


def _split_indicators(indicators: dict[str, Any], close: np.ndarray) -> tuple[Lines, list]:
    """The indicators' lines drawn over the price, and ``(name, lines)`` of each indicator that
    gets a panel of its own (a 2-D indicator gives one line per column)."""
    overlays, own = [], []
    for name, values in indicators.items():
        lines = _indicator_lines(str(name), values, len(close))
        if _is_price_like(np.column_stack([v for _, v in lines]), close):
            overlays.extend(lines)
        else:
            own.append((str(name), lines))
    return overlays, own


def _indicator_lines(name: str, values: Any, n: int) -> Lines:
    """An indicator as ``(label, values)`` lines of ``n`` values: one for a 1-D indicator, one
    per column (or per row of a ``(k, n)`` array, as ``Strategy.I`` accepts) for a 2-D one."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2 and array.shape[0] != n and array.shape[1] == n:
        array = array.T
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != n:
        raise TradennError(
            f"indicator {name!r} has shape {np.shape(values)}; expected one value per bar ({n},)"
        )
    if array.shape[1] == 1:
        return [(name, array[:, 0])]
    return [(f"{name}[{k}]", array[:, k]) for k in range(array.shape[1])]


def _is_price_like(values: np.ndarray, close: np.ndarray) -> bool:
    """Most (60%) of the finite values within :data:`OVERLAY_BAND` of their bar's close: a
    moving average or a band rather than an oscillator (backtesting.py's rule)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = values / close[:, None]
    ratio = ratio[np.isfinite(ratio)]
    low, high = OVERLAY_BAND
    return bool(len(ratio)) and float(np.mean((ratio > low) & (ratio < high))) > 0.6


def _milliseconds(times) -> np.ndarray:
    """Wall-clock times in their own zone as milliseconds since 1970 (Bokeh's datetime unit),
    so a tz-aware index is drawn at the times its bars show, as in the PNG."""
    naive = wall_clock(pd.DatetimeIndex(times))
    return naive.to_numpy().astype("datetime64[ms]").astype(np.float64)


def _headline(result, title: str | None) -> tuple[str, str]:
    """The title (``title`` or the strategy with its parameters) and a line of statistics:
    Return, Sharpe, Max. Drawdown, # Trades and the span of the bars."""
    stats, index = result.stats, pd.DatetimeIndex(result.equity.index)
    trades = _stat(stats, "# Trades", ",.0f")
    summary = "   ·   ".join(
        [
            f"Return {_stat(stats, 'Return [%]', '+,.1f')}%",
            f"Sharpe {_stat(stats, 'Sharpe Ratio', '.2f')}",
            f"Max. Drawdown {_stat(stats, 'Max. Drawdown [%]', '.1f')}%",
            f"{trades} trade{'' if trades == '1' else 's'}",
            f"{index[0]:%Y-%m-%d} to {index[-1]:%Y-%m-%d}, {len(index):,} {bar_label(index)} bars",
        ]
    )
    return _title(result, title), summary


def _title(result, title: str | None) -> str:
    """``title``, else the strategy with its parameters (its name for a result without a
    label, as :func:`~tradenn.backtest.report.write_report` accepts)."""
    if title is not None:
        return title
    return getattr(result, "label", None) or str(getattr(result, "strategy_name", "Backtest"))


def _stat(stats: pd.Series, key: str, fmt: str) -> str:
    try:
        value = float(stats.get(key, math.nan))
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(value) else format(value, fmt)
