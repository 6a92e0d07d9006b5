"""plot_result and write_report on fake results: panels, markers, downsampling, files, HTML."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tradenn.backtest import Backtest, Strategy
from tradenn.backtest.plotting import MAX_MARKERS, MAX_POINTS, plot_result
from tradenn.backtest.report import MAX_TRADE_ROWS, write_report
from tradenn.backtest.stats import STAT_KEYS, compute_stats

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_result(
    n: int = 400,
    n_trades: int = 12,
    *,
    freq: str = "B",
    seed: int = 0,
    name: str = "Test strategy",
    tz: str | None = None,
    params: dict | None = None,
) -> SimpleNamespace:
    """A random-walk price with alternating long/short trades of 10 units, built vectorized."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2021-01-04", periods=n, freq=freq, name="Date", tz=tz)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    data = pd.DataFrame(
        {
            "Open": close * (1 + rng.normal(0, 0.002, n)),
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Volume": np.full(n, 1e6),
        },
        index=index,
    )
    segment = n // (n_trades + 1) if n_trades else n
    entry = np.arange(n_trades) * segment + 1
    exit_ = entry + max(1, 2 * segment // 3)
    size = np.where(np.arange(n_trades) % 2 == 0, 10.0, -10.0)
    entry_price, exit_price = close[entry], close[exit_]
    commission = np.full(n_trades, 0.5)
    trades = pd.DataFrame(
        {
            "Size": size,
            "EntryBar": entry,
            "ExitBar": exit_,
            "EntryPrice": entry_price,
            "ExitPrice": exit_price,
            "EntryTime": index[entry],
            "ExitTime": index[exit_],
            "PnL": size * (exit_price - entry_price) - commission,
            "ReturnPct": np.sign(size) * (exit_price / entry_price - 1) - 0.0001,
            "Commission": commission,
            "Duration": index[exit_] - index[entry],
        }
    )
    delta = np.zeros(n + 1)
    np.add.at(delta, entry, size)
    np.add.at(delta, exit_, -size)
    position = pd.Series(np.cumsum(delta[:n]), index=index)
    held = np.concatenate(([0.0], position.to_numpy()[:-1]))
    equity = pd.Series(10_000.0 + np.cumsum(held * np.diff(close, prepend=close[0])), index=index)
    stats = compute_stats(equity, trades, data["Close"], position, commissions=commission.sum())
    return SimpleNamespace(
        data=data,
        equity=equity,
        trades=trades,
        position=position,
        stats=stats,
        strategy_name=name,
        params={"fast": 10, "slow": 30} if params is None else params,
    )


def _points(fig: Figure) -> list[int]:
    return [len(line.get_xdata()) for ax in fig.axes for line in ax.get_lines()]


def _markers(ax) -> dict[str, int]:
    return {c.get_label(): len(c.get_offsets()) for c in ax.collections if c.get_label()}


# ---------------------------------------------------------------------------------------------
# plot_result


def test_plot_has_four_panels_sharing_time_and_a_title_with_key_stats(tmp_path):
    result = make_result()
    path = tmp_path / "plot.png"
    fig = plot_result(result, path)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    price, equity, dd, _ = fig.axes
    assert all(ax.get_shared_x_axes().joined(price, ax) for ax in fig.axes)
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "Price",
        "Equity [$]",
        "Drawdown [%]",
        "Position",
    ]
    title = fig.get_suptitle()
    stats = result.stats
    assert "Test strategy" in title
    assert f"Return {stats['Return [%]']:+.1f}%" in title
    assert f"Sharpe {stats['Sharpe Ratio']:.2f}" in title
    assert f"Max DD {stats['Max. Drawdown [%]']:.1f}%" in title
    assert "12 trades" in title
    assert [line.get_label() for line in equity.get_lines()] == ["Equity", "Buy & hold"]
    # Buy & hold starts at the starting equity.
    assert equity.get_lines()[1].get_ydata()[0] == pytest.approx(10_000.0)
    # The drawdown panel is in negative percent.
    assert np.nanmin(dd.collections[0].get_paths()[0].vertices[:, 1]) <= 0
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1320, 990)  # 12 x 9 inches at 110 dpi


def test_entry_and_exit_markers_by_direction():
    result = make_result(n_trades=7)  # sizes +, -, +, -, +, -, + -> 4 long, 3 short
    markers = _markers(plot_result(result).axes[0])
    assert markers["Long entry"] == 4
    assert markers["Short entry"] == 3
    assert markers["Exit"] == 7


@pytest.mark.parametrize(("side", "shown"), [(1, "Long entry"), (-1, "Short entry")])
def test_the_legend_names_only_the_sides_traded(side, shown):
    result = make_result(n_trades=7)
    result.trades = result.trades[np.sign(result.trades["Size"]) == side]
    markers = _markers(plot_result(result).axes[0])
    assert set(markers) == {shown, "Exit"}
    assert markers[shown] == len(result.trades)


def test_the_note_on_thinned_markers_goes_on_the_first_entry_shown():
    result = make_result(n=20_000, n_trades=3_000, freq="min")
    result.trades = result.trades[result.trades["Size"] < 0]  # 1,500 shorts: thinned to 1,000
    labels = list(_markers(plot_result(result).axes[0]))
    assert labels == ["Short entry (1,000 of 1,500 trades shown)", "Exit"]


def test_custom_title_and_dollar_signs_do_not_break_rendering(tmp_path):
    result = make_result(name="Buy $SPY at 5$ or $")
    fig = plot_result(result, tmp_path / "a.png", title="My $ title")
    assert fig.get_suptitle().startswith("My \\$ title")
    assert (tmp_path / "a.png").stat().st_size > 10_000


def test_no_trades_and_flat_equity_plot():
    result = make_result(n_trades=0)
    assert len(result.trades) == 0 and (result.equity == 10_000).all()
    fig = plot_result(result)
    assert "0 trades" in fig.get_suptitle() and "Sharpe n/a" in fig.get_suptitle()
    assert _markers(fig.axes[0]) == {}
    assert fig.axes[3].get_ylim() == (-1, 1)  # a readable axis, not a degenerate one


def test_timezone_aware_and_hourly_index():
    result = make_result(n=300, freq="h", tz="America/New_York")
    fig = plot_result(result)
    assert "300 hourly bars" in fig.get_suptitle()
    first = fig.axes[0].get_lines()[0].get_xdata()[0]
    assert pd.Timestamp(first) == pd.Timestamp("2021-01-04 00:00")  # exchange wall-clock time


def test_large_results_are_downsampled_but_keep_extremes():
    n, k = 200_000, 5_000
    result = make_result(n=n, n_trades=k, freq="min")
    spike = 123_457
    result.data.loc[result.data.index[spike], "Close"] = 1_000.0  # one extreme bar
    fig = plot_result(result)
    assert max(_points(fig)) <= MAX_POINTS + 2
    price_line = fig.axes[0].get_lines()[0]
    assert np.max(price_line.get_ydata()) == 1_000.0  # min/max buckets keep the spike
    assert price_line.get_ydata()[-1] == result.data["Close"].iloc[-1]
    markers = _markers(fig.axes[0])
    assert sum(markers.values()) <= MAX_MARKERS
    assert any(f"of {k:,} trades shown" in label for label in markers)
    equity_line = fig.axes[1].get_lines()[0]
    assert equity_line.get_ydata()[0] == result.equity.iloc[0]
    assert equity_line.get_ydata()[-1] == result.equity.iloc[-1]


def test_plotting_never_touches_pyplot_or_the_backend():
    code = textwrap.dedent(
        """
        import sys, matplotlib
        before = dict.__getitem__(matplotlib.rcParams, "backend")
        import numpy as np, pandas as pd
        from types import SimpleNamespace
        from tradenn.backtest.plotting import plot_result
        idx = pd.date_range("2020-01-01", periods=50, freq="D")
        close = pd.Series(np.linspace(100, 110, 50), index=idx)
        data = pd.DataFrame({c: close for c in ["Open", "High", "Low", "Close", "Volume"]})
        flat = pd.Series(0.0, index=idx)
        result = SimpleNamespace(data=data, equity=close * 100, trades=pd.DataFrame(),
                                 position=flat, stats=pd.Series(dtype=object), strategy_name="x")
        plot_result(result, sys.argv[1])
        assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
        assert dict.__getitem__(matplotlib.rcParams, "backend") == before, "backend changed"
        print("ok")
        """
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", code, f"{tmp}/x.png"], capture_output=True, text=True
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ---------------------------------------------------------------------------------------------
# write_report


def _html_without_image(text: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,", text)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One report, written once for the tests that only read it (rendering takes ~0.4 s)."""
    result = make_result(params={"fast": 10, "threshold": 0.25})
    directory = tmp_path_factory.mktemp("report") / "nested" / "report"
    page = write_report(result, directory)
    return result, directory, page


def test_report_writes_all_files_into_a_new_directory(report):
    _, directory, page = report
    assert page == directory / "index.html"
    for name in ("index.html", "trades.csv", "equity.csv", "stats.json"):
        assert (directory / name).is_file(), name


def test_report_html_is_self_contained_with_stats_image_and_trades(report):
    result, _, page = report
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # The figure is embedded and is a PNG.
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert match is not None
    assert base64.b64decode(match.group(1)).startswith(PNG_MAGIC)
    # Nothing is loaded from anywhere.
    stripped = _html_without_image(text)
    assert "http" not in stripped.lower()
    assert "//" not in stripped.replace("<!DOCTYPE", "")
    assert "<script" not in stripped and "<link" not in stripped and "@import" not in stripped
    assert "url(" not in stripped
    # Header, every statistic and the trades.
    assert "<h1>Test strategy</h1>" in text
    assert "fast = 10" in text and "threshold = 0.25" in text
    assert "2021-01-04 to " in text and "400 daily bars" in text
    for key in STAT_KEYS:
        assert f"<th>{key.replace('&', '&amp;')}</th>" in text, key
    sharpe = result.stats["Sharpe Ratio"]
    assert f"<th>Sharpe Ratio</th><td>{sharpe:.3f}</td>" in text.replace(' class="neg"', "")
    assert f"{result.stats['Return [%]']:,.2f}" in text
    table = text[text.index('<table class="trades">') :]
    assert table.count("<tr><td") == 12
    assert "12 closed trades" in text


def test_report_escapes_every_inserted_text(tmp_path):
    evil = '<script>alert("x")</script> & co'
    result = make_result(name=evil, params={"<b>": "<i>&"})
    text = write_report(result, tmp_path).read_text(encoding="utf-8")
    assert "<script>" not in text and "<b>" not in text and "<i>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in text
    assert "<li>&lt;b&gt; = &lt;i&gt;&amp;</li>" in text


def test_report_lists_first_and_last_thousand_of_many_trades(tmp_path):
    k = 2_500
    result = make_result(n=10_000, n_trades=k, freq="min")
    text = write_report(result, tmp_path).read_text(encoding="utf-8")
    table = text[text.index('<table class="trades">') :]
    numbers = [int(m.replace(",", "")) for m in re.findall(r'<tr><td class="num">([\d,]+)<', table)]
    half = MAX_TRADE_ROWS // 2
    assert numbers == [*range(1, half + 1), *range(k - half + 1, k + 1)]
    assert f"{k - MAX_TRADE_ROWS:,} trades not shown" in table
    assert f"{k:,} trades: the first and last {half:,} are listed" in text
    assert len(pd.read_csv(tmp_path / "trades.csv")) == k  # the CSV has all of them


def test_report_csv_files_round_trip(report):
    result, tmp_path, _ = report
    equity = pd.read_csv(tmp_path / "equity.csv", index_col="Date", parse_dates=["Date"])
    assert list(equity.columns) == ["Equity"]
    np.testing.assert_array_equal(equity["Equity"].to_numpy(), result.equity.to_numpy())
    assert (equity.index == result.equity.index).all()

    trades = pd.read_csv(tmp_path / "trades.csv", parse_dates=["EntryTime", "ExitTime"])
    trades["Duration"] = pd.to_timedelta(trades["Duration"])
    expected = result.trades
    assert list(trades.columns) == list(expected.columns)
    for column in ("Size", "EntryBar", "ExitBar", "EntryPrice", "ExitPrice", "PnL", "ReturnPct"):
        np.testing.assert_array_equal(trades[column].to_numpy(), expected[column].to_numpy())
    for column in ("EntryTime", "ExitTime", "Duration"):
        assert (trades[column].to_numpy() == expected[column].to_numpy()).all(), column


def test_report_shows_trade_returns_and_excursions_as_percentages(bars, tmp_path):
    class Swing(Strategy):
        def next(self):
            if len(self.data) == 1:
                self.buy(size=1, sl=90.0)
            elif len(self.data) == 4:
                self.position.close()

    result = Backtest(bars, Swing).run()  # long 102 -> 99 over bars 1..4 (low 95, high 106)
    page = write_report(result, tmp_path).read_text(encoding="utf-8")
    row = page[page.index('<table class="trades">') :].split("<tr><td")[1]
    cells = re.findall(r">([^<]*)</td>", row)
    header = re.findall(r"<th>([^<]*)</th>", page[page.index('<table class="trades">') :])[1:]
    shown = dict(zip(header, cells[1:], strict=True))
    assert shown["ReturnPct"] == f"{100 * (99 / 102 - 1):.2f}%"  # -2.94%
    assert shown["MAE"] == f"{100 * (95 / 102 - 1):.2f}%" == "-6.86%"
    assert shown["MFE"] == f"{100 * (106 / 102 - 1):.2f}%" == "3.92%"
    assert shown["SL"] == "90" and shown["TP"] == "n/a"
    saved = pd.read_csv(tmp_path / "trades.csv")  # the CSV keeps the table's fractions
    assert saved["MAE"].iloc[0] == pytest.approx(95 / 102 - 1)
    assert saved["ReturnPct"].iloc[0] == pytest.approx(99 / 102 - 1)


def test_report_stats_json_is_valid_json_with_strings_and_nulls(tmp_path):
    result = make_result(n_trades=0)  # no trades: NaN and NaT statistics
    write_report(result, tmp_path)
    raw = (tmp_path / "stats.json").read_text(encoding="utf-8")
    assert "NaN" not in raw and "Infinity" not in raw
    stats = json.loads(raw)
    assert list(stats) == list(STAT_KEYS)
    assert stats["Start"] == "2021-01-04T00:00:00"
    assert pd.Timedelta(stats["Duration"]) == result.stats["Duration"]
    assert stats["# Trades"] == 0
    assert stats["Win Rate [%]"] is None and stats["Sharpe Ratio"] is None
    assert stats["Max. Trade Duration"] is None
    assert stats["Equity Final [$]"] == pytest.approx(10_000.0)
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "No closed trades." in text and "n/a" in text
