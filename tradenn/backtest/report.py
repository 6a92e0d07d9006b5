"""A backtest as a folder you can open, archive or send: one self-contained HTML page and the data.

:func:`write_report` writes into ``directory``:

``index.html``
    the strategy, its setup (data source and range, cash, costs, fill timing, units, margin,
    tradenn version) and parameters, the figure of :func:`~tradenn.backtest.plotting.
    plot_result` (a portfolio's own figure and per-asset table) embedded as a base64 PNG, the
    statistics and the trades. It loads nothing from
    anywhere: no external CSS, scripts, fonts or images, so it renders the same offline and years
    later. Backtests with more than 2,000 trades show the first and last 1,000 (all are in
    ``trades.csv``). The page shows ``ReturnPct``, ``MAE`` and ``MFE`` as percentages
    (``5.00%``) and durations as the command line does (``27 days 21:36:00``, see
    :func:`~tradenn.backtest.stats.format_duration`).
``trades.csv``
    every closed trade, one row each, the columns of ``result.trades`` as they are there
    (``ReturnPct``, ``MAE`` and ``MFE`` as fractions: 0.05 is 5%).
``equity.csv``
    ``Date, Equity``: the equity at every bar.
``stats.json``
    the statistics as a JSON object in their order; timestamps and durations as strings, undefined
    values (NaN, NaT, infinities) as ``null``.
``setup.json``
    the setup shown in the header, and the parameters.
``chart.html``
    the interactive chart (:func:`~tradenn.backtest.interactive.interactive_chart`), also shown
    in the page, when Bokeh is installed (``tradenn[plot]``).
``weights.csv``, ``asset_stats.csv``
    a portfolio's realized weights per bar and its per-asset statistics.

:func:`html_summary` is the same page's head, figure and statistics as a fragment: what a
result shows in a notebook.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from tradenn import __version__
from tradenn.backtest.plotting import DPI, plot_result
from tradenn.backtest.stats import format_duration
from tradenn.data.calendar import bar_label

__all__ = [
    "MAX_TRADE_ROWS",
    "html_summary",
    "leaderboard_html",
    "optimize_html",
    "stats_to_json",
    "write_report",
]

MAX_TRADE_ROWS = 2_000
"""Most trades listed in the HTML page; beyond it the first and last half are shown."""

_MISSING = "n/a"

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 1400px; color: #222;
       background: #fff; line-height: 1.4; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; border-bottom: 1px solid #ddd;
     padding-bottom: .2rem; }
.meta { color: #555; margin: .2rem 0; }
.params { display: flex; flex-wrap: wrap; gap: .4rem; margin: .6rem 0 0; padding: 0;
          list-style: none; }
.params li { background: #f1f3f5; border-radius: 4px; padding: .15rem .55rem;
             font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
             font-size: .85rem; }
figure { margin: 1rem 0; }
figure img { width: 100%; height: auto; border: 1px solid #e5e5e5; }
table { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #eee; white-space: nowrap; }
th { background: #f7f7f7; text-align: left; font-weight: 600; }
td.num { text-align: right; }
td.neg { color: #b2182b; }
tr:nth-child(even) td { background: #fbfbfb; }
table.stats th { background: none; font-weight: normal; color: #444; }
table.stats td { text-align: right; min-width: 10rem; }
.scroll { max-height: 36rem; overflow: auto; border: 1px solid #e5e5e5; display: inline-block;
          max-width: 100%; }
.scroll thead th { position: sticky; top: 0; z-index: 1; }
tr.gap td { text-align: center; color: #666; font-style: italic; background: #fffbe6; }
.note { color: #555; font-size: .9rem; }
footer { margin-top: 2.5rem; color: #888; font-size: .8rem; }
dl.setup { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem;
           margin: .5rem 0; color: #444; font-size: .9rem; }
dl.setup dt { font-weight: 600; }
dl.setup dd { margin: 0; }
iframe.chart { width: 100%; height: 980px; border: 1px solid #e5e5e5; }
"""

# a notebook cell's styles: scoped to the fragment
_FRAGMENT_CSS = (
    ".tradenn-result dl.setup { display: grid; grid-template-columns: max-content auto; "
    "gap: .1rem 1rem; font-size: .85rem; } .tradenn-result dl.setup dd { margin: 0; } "
    ".tradenn-result img { max-width: 100%; } .tradenn-result td { text-align: right; }"
)


# ----------------------------------------------------------------------------------------------
# Values as text


def _is_missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays, lists
        return False


def _timestamp_text(value: pd.Timestamp) -> str:
    if value == value.normalize():
        return value.strftime("%Y-%m-%d")
    return str(value)


def _number_text(value: float, key: str = "") -> str:
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else _MISSING
    if "[%]" in key or "[$]" in key:
        return f"{value:,.2f}"
    if key:  # a ratio among the statistics
        return f"{value:,.3f}"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.6g}"


def _text(value, key: str = "") -> str:
    if _is_missing(value):
        return _MISSING
    if isinstance(value, pd.Timestamp):
        return _timestamp_text(value)
    if isinstance(value, pd.Timedelta):
        return format_duration(value)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return _number_text(float(value), key)
    return str(value)


def _is_negative(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and value < 0


def _cell(text: str, *, numeric: bool = False, negative: bool = False) -> str:
    classes = " ".join(c for c, on in (("num", numeric), ("neg", negative)) if on)
    attribute = f' class="{classes}"' if classes else ""
    return f"<td{attribute}>{html.escape(text)}</td>"


# ----------------------------------------------------------------------------------------------
# JSON


def _json_value(value):
    if _is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, np.timedelta64)):
        return str(pd.Timedelta(value))
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    return str(value)


def stats_to_json(stats: pd.Series) -> dict[str, object]:
    """The statistics as a JSON-safe dict in their order (strings for times, ``None`` for NaN)."""
    return {str(key): _json_value(value) for key, value in stats.items()}


# ----------------------------------------------------------------------------------------------
# HTML parts


def _setup_list(result) -> str:
    """The run's setup (data, cash, costs, fills, units, margin, version) as a list."""
    setup = getattr(result, "setup", None) or {}
    items = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in setup.items()
    )
    return f'<dl class="setup">{items}</dl>' if items else ""


def _header(result, index: pd.DatetimeIndex, params: Mapping) -> str:
    name = str(getattr(result, "strategy_name", "") or "Backtest")
    parts = [f"<h1>{html.escape(name)}</h1>"]
    if getattr(result, "setup", None):
        parts.append(_setup_list(result))
    elif len(index):
        span = (
            f"{_timestamp_text(index[0])} to {_timestamp_text(index[-1])} "
            f"· {len(index):,} {bar_label(index)} bars"
        )
        parts.append(f'<p class="meta">Data: {html.escape(span)}</p>')
    if params:
        items = "".join(
            f"<li>{html.escape(str(k))} = {html.escape(_text(v))}</li>" for k, v in params.items()
        )
        parts.append(f'<p class="meta">Parameters:</p><ul class="params">{items}</ul>')
    else:
        parts.append('<p class="meta">Parameters: none</p>')
    return "\n".join(parts)


def _stats_table(stats: pd.Series) -> str:
    rows = []
    for key, value in stats.items():
        text = _text(value, str(key))
        rows.append(
            f"<tr><th>{html.escape(str(key))}</th>{_cell(text, negative=_is_negative(value))}</tr>"
        )
    return f'<table class="stats"><tbody>{"".join(rows)}</tbody></table>'


def _trade_column_text(column: str, values: pd.Series) -> list[str]:
    if column in ("ReturnPct", "MAE", "MFE"):  # fractions in the table, percentages here
        return [_MISSING if _is_missing(v) else f"{100 * float(v):,.2f}%" for v in values]
    if column in ("PnL", "Commission"):
        return [_MISSING if _is_missing(v) else f"{float(v):,.2f}" for v in values]
    if not pd.api.types.is_numeric_dtype(values) and values.dtype == object:
        return ["" if _is_missing(v) else _text(v) for v in values]  # e.g. an unset Tag
    return [_text(v) for v in values]


def _trades_table(trades: pd.DataFrame) -> str:
    total = len(trades)
    if total == 0:
        return '<p class="note">No closed trades.</p>'
    half = MAX_TRADE_ROWS // 2
    truncated = total > MAX_TRADE_ROWS
    shown = pd.concat([trades.iloc[:half], trades.iloc[-half:]]) if truncated else trades
    numbers = (
        np.r_[1 : half + 1, total - half + 1 : total + 1] if truncated else np.arange(1, total + 1)
    )
    columns = [str(c) for c in shown.columns]
    texts = [_trade_column_text(c, shown[c]) for c in shown.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c])
        for c in shown.columns
    ]
    signed = [c in ("PnL", "ReturnPct", "Size") for c in columns]
    raw = [shown[c].to_numpy() for c in shown.columns]

    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["#", *columns])
    rows = []
    for i, number in enumerate(numbers):
        if truncated and i == half:
            skipped = total - MAX_TRADE_ROWS
            rows.append(
                f'<tr class="gap"><td colspan="{len(columns) + 1}">… {skipped:,} trades not shown '
                "(all are in trades.csv) …</td></tr>"
            )
        cells = [_cell(f"{number:,}", numeric=True)]
        for j in range(len(columns)):
            negative = signed[j] and _is_negative(raw[j][i])
            cells.append(_cell(texts[j][i], numeric=numeric[j], negative=negative))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    note = (
        f'<p class="note">{total:,} trades: the first and last {half:,} are listed; all are in '
        '<a href="trades.csv">trades.csv</a>.</p>'
        if truncated
        else f'<p class="note">{total:,} closed trade{"s" if total != 1 else ""} '
        '(also in <a href="trades.csv">trades.csv</a>).</p>'
    )
    table = f'<div class="scroll"><table class="trades"><thead><tr>{head}</tr></thead>'
    return f"{note}\n{table}<tbody>{''.join(rows)}</tbody></table></div>"


def _is_portfolio(result) -> bool:
    return hasattr(result, "asset_stats")


def _figure_png(result) -> str:
    return _png(result.plot() if _is_portfolio(result) else plot_result(result))


def _table(frame: pd.DataFrame) -> str:
    """A small numeric table (a portfolio's per-asset statistics)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [frame.index.name or "", *frame])
    rows = []
    for label, row in frame.iterrows():
        cells = [f"<th>{html.escape(str(label))}</th>"]
        for column, value in row.items():
            text = _text(value, str(column) if "[" in str(column) else "")
            cells.append(_cell(text, numeric=True, negative=_is_negative(value)))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figure(result, image: str) -> str:
    name = str(getattr(result, "strategy_name", "") or "Backtest")
    what = (
        "Equity against the equal-weight buy and hold, and the weights"
        if _is_portfolio(result)
        else "Price, equity, drawdown and position"
    )
    return (
        f'<figure><img alt="{html.escape(f"{what} of {name}")}" '
        f'src="data:image/png;base64,{image}"></figure>'
    )


def html_summary(result) -> str:
    """An HTML fragment for a notebook (Jupyter's ``_repr_html_``): the strategy and its
    parameters, the setup, the figure (PNG) and the statistics. Self-contained."""
    label = getattr(result, "label", "") or str(getattr(result, "strategy_name", "Backtest"))
    return (
        f'<div class="tradenn-result"><style>{_FRAGMENT_CSS}</style>'
        f"<h3>{html.escape(label)}</h3>{_setup_list(result)}"
        f"{_figure(result, _figure_png(result))}"
        f"<details open><summary>Statistics</summary>{_stats_table(result.stats)}</details>"
        "</div>"
    )


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _rows_table(frame: pd.DataFrame) -> str:
    """A table of rows (a sweep's combinations, a leaderboard) with statistics formatted as
    the statistics table formats them."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = "".join(
            _cell(_text(v, str(c) if "[" in str(c) else ""), numeric=not isinstance(v, str))
            for c, v in row.items()
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def optimize_html(optimized, top: int = 10) -> str:
    """A notebook's view of an :class:`~tradenn.backtest.optimize.OptimizeResult`: the sweep,
    the best combination and the overfitting guards, the ``top`` rows, and the best run."""
    head, best, metric, dsr, pbo = optimized.summary(top).splitlines()[:5]
    ok = optimized.table[optimized.table["Error"].isna()]
    ranked = ok.sort_values(optimized.metric, ascending=not optimized.maximize, kind="stable")
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in (head, best, metric, dsr, pbo))
    return (
        f'<div class="tradenn-result"><style>{_FRAGMENT_CSS}</style>{lines}'
        f"<details open><summary>Top {top}</summary>"
        f"{_rows_table(ranked.drop(columns=['Error']).head(top))}</details>"
        f"<details><summary>The best run</summary>{html_summary(optimized.best)}</details></div>"
    )


def leaderboard_html(board) -> str:
    """A notebook's view of a :class:`~tradenn.backtest.compare.Leaderboard`: the table, the
    strategies that failed and why, and the equity curves."""
    table = board.table.reset_index(names="Strategy")
    failed = "".join(
        f"<p>{html.escape(str(name))} failed: {html.escape(str(why))}</p>"
        for name, why in board.errors.items()
    )
    image = _png(board.plot()) if board.results else ""
    figure = f'<figure><img alt="Equity curves" src="data:image/png;base64,{image}"></figure>'
    return (
        f'<div class="tradenn-result"><style>{_FRAGMENT_CSS}</style>{_rows_table(table)}'
        f"{failed}{figure if image else ''}</div>"
    )


def _page(result, chart: bool = False) -> str:
    name = str(getattr(result, "strategy_name", "") or "Backtest")
    params = getattr(result, "params", None) or {}
    index = pd.DatetimeIndex(result.data.index)
    stats = result.stats
    trades = result.trades if result.trades is not None else pd.DataFrame()
    image = _figure_png(result)
    assets = f"<h2>Assets</h2>\n{_table(result.asset_stats)}" if _is_portfolio(result) else ""
    files = ["trades.csv", "equity.csv", "stats.json", "setup.json"]
    interactive = ""
    if chart:
        files.insert(0, "chart.html")
        interactive = (
            '<h2>Interactive chart</h2>\n<p class="note">Zoom and pan (linked across panels); '
            'hover a trade for its details. Also on its own: <a href="chart.html">chart.html</a>.'
            '</p>\n<iframe class="chart" src="chart.html" title="Interactive chart"></iframe>'
        )
    if _is_portfolio(result):
        files += ["weights.csv", "asset_stats.csv"]
    links = ", ".join(f'<a href="{f}">{f}</a>' for f in files)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(name)} · tradenn backtest</title>
<style>{_CSS}</style>
</head>
<body>
<header>
{_header(result, index, params)}
</header>
{_figure(result, image)}
{interactive}
<h2>Statistics</h2>
{_stats_table(stats)}
{assets}
<h2>Trades</h2>
{_trades_table(trades)}
<footer>Written by tradenn {html.escape(__version__)}. Data files next to this page:
{links}.</footer>
</body>
</html>
"""


# ----------------------------------------------------------------------------------------------


def write_report(result, directory: str | Path) -> Path:
    """Write the report of a backtest into ``directory`` (created if needed).

    ``result`` is a :class:`~tradenn.backtest.Result` or a
    :class:`~tradenn.backtest.PortfolioResult` (anything with ``data``, ``equity``, ``trades``,
    ``stats`` and ``strategy_name``, and optionally ``params`` and ``setup``). Writes the files
    of the module docstring and returns the path of ``index.html``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    trades = result.trades if result.trades is not None else pd.DataFrame()
    trades.to_csv(directory / "trades.csv", index=False)
    equity = pd.Series(result.equity)
    frame = pd.DataFrame(
        {"Equity": equity.to_numpy(dtype=np.float64)},
        index=pd.DatetimeIndex(equity.index, name="Date"),
    )
    frame.to_csv(directory / "equity.csv")
    stats_json = json.dumps(stats_to_json(result.stats), indent=2, allow_nan=False)
    (directory / "stats.json").write_text(stats_json + "\n", encoding="utf-8")
    setup = {**(getattr(result, "setup", None) or {}), "parameters": getattr(result, "params", {})}
    setup_json = json.dumps(setup, indent=2, default=str)
    (directory / "setup.json").write_text(setup_json + "\n", encoding="utf-8")
    if _is_portfolio(result):
        result.weights.to_csv(directory / "weights.csv", index_label="Date")
        result.asset_stats.to_csv(directory / "asset_stats.csv")

    chart = _interactive_chart(result, directory / "chart.html")
    page = directory / "index.html"
    page.write_text(_page(result, chart), encoding="utf-8")
    return page


def _interactive_chart(result, path: Path) -> bool:
    """Write the interactive chart beside the page when Bokeh is installed; whether it did."""
    from tradenn.backtest.interactive import interactive_chart, require_bokeh
    from tradenn.errors import TradennError

    try:
        require_bokeh()  # an optional extra: tradenn[plot]
    except TradennError:
        return False

    interactive_chart(result, path)
    return True
