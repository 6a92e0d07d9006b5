"""Bad input through the real command line: one line on stderr naming what is wrong, exit 2
(1 for a strategy whose own code fails while running), no traceback, no work done first."""

from __future__ import annotations

import pytest

from tradenn.cli import main

HEADER = "Date,Open,High,Low,Close,Volume\n2020-01-01,10,11,9,10,100\n2020-01-02,10,11,9,10,100\n"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "row,named",
    [
        ("2020-01-03,10,inf,9,10,100", "infinite High at line 4 (2020-01-03)"),
        ("2020-01-03,10,11,9,1e400,100", "infinite Close at line 4 (2020-01-03)"),
        ("2020-01-03,10,11,9,10,inf", "infinite Volume at line 4 (2020-01-03)"),
        ("2020-01-03,1e308,1e308,9,10,100", "implausible Open 1e+308 at line 4"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ["data", "validate", "{path}"],
        ["backtest", "sma_cross", "--no-plot", "--data", "{path}"],
        ["paper", "run", "sma_cross", "--ledger", "{ledger}", "--feed", "replay:{path}"],
    ],
    ids=["validate", "backtest", "paper"],
)
def test_infinite_and_overflowing_values_are_refused(capsys, write_csv, row, named, command):
    path = write_csv(HEADER + row + "\n")
    ledger = path.parent / "paper.db"
    argv = [part.format(path=path, ledger=ledger) for part in command]
    code, out, err = run(capsys, *argv)
    assert not ledger.exists()
    assert code == 2
    line = one_line(err)
    assert str(path) in line and named in line
    assert "Equity Final" not in out


def test_a_strategy_spec_that_is_neither_a_name_nor_a_file_is_one_line(capsys, write_csv):
    code, _, err = run(capsys, "backtest", "strategies..sma_cross", "--no-plot")
    assert code == 2 and "'strategies..sma_cross' is neither a ready strategy" in one_line(err)
    csv = write_csv(HEADER)
    code, _, err = run(capsys, "backtest", str(csv), "--no-plot")
    assert code == 2 and f"a data file goes to --data {csv}" in one_line(err)


def test_a_strategy_file_that_fails_to_load_is_named_with_its_line(capsys, tmp_path):
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(3)\n")
    code, _, err = run(capsys, "backtest", str(exits), "--no-plot")
    assert code == 2 and f"{exits}: the file called sys.exit(3) while loading" in one_line(err)
    broken = tmp_path / "broken.py"
    broken.write_text("from tradenn.backtest import Strategy\n\nx = 1 / 0\n")
    code, _, err = run(capsys, "backtest", str(broken), "--no-plot")
    line = one_line(err)
    assert code == 2 and f"{broken} (line 3): loading it failed: ZeroDivisionError" in line


STRATEGIES = {
    "next": (
        "class Failing(Strategy):\n    def next(self):\n        if len(self.data) > 25:\n"
        "            1 / 0\n",
        "Failing.next ({path}, line 7) raised ZeroDivisionError: division by zero at bar 25",
    ),
    "order": (
        "class Failing(Strategy):\n    def next(self):\n        self.buy(size=-5)\n",
        "Failing.next ({path}, line 6) raised ValueError: size must be a positive number",
    ),
    "helper": (
        "class Failing(Strategy):\n    def next(self):\n        self.decide()\n\n"
        "    def decide(self):\n        raise RuntimeError('broken')\n",
        "Failing.next ({path}, line 9) raised RuntimeError: broken at bar 0",
    ),
    "positions": (
        "class Failing(Strategy):\n    def positions(self, data):\n        return {}['x']\n",
        "Failing.positions ({path}, line 6) raised KeyError: 'x'",
    ),
    "init": (
        "class Failing(Strategy):\n    def init(self):\n        self.window = {}['window']\n",
        "Failing.init ({path}, line 6) raised KeyError: 'window'",
    ),
    "size nan": (
        "class Failing(Strategy):\n    def next(self):\n        self.buy(size=float('nan'))\n",
        "Failing.next ({path}, line 6) raised ValueError: size must be a positive number of "
        "units or a fraction, got nan at bar 0",
    ),
    "limit": (
        "class Failing(Strategy):\n    def next(self):\n        self.buy(limit=-10)\n",
        "Failing.next ({path}, line 6) raised ValueError: limit must be a positive price, got -10",
    ),
}


@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_a_strategy_that_raises_is_named_with_its_file_line_and_bar(capsys, tmp_path, kind):
    source, expected = STRATEGIES[kind]
    path = tmp_path / "failing.py"
    path.write_text("from tradenn.backtest import Strategy\n\n\n" + source)
    code, out, err = run(capsys, "backtest", f"{path}:Failing", "--no-plot")
    assert code == 1
    assert expected.format(path=path) in one_line(err)
    assert "Equity Final" not in out


@pytest.mark.parametrize("kind", ["single", "portfolio"])
def test_a_strategy_rejecting_its_setup_is_bad_input_named_with_file_and_line(
    capsys, tmp_path, kind
):
    base, data = ("Strategy", "SPX") if kind == "single" else ("PortfolioStrategy", "SPX,NASDAQ")
    path = tmp_path / "rejecting.py"
    path.write_text(
        f"from tradenn.backtest import {base}\n\n\nclass Rejecting({base}):\n"
        "    def init(self):\n        raise ValueError('window must be odd')\n"
    )
    code, out, err = run(capsys, "backtest", f"{path}:Rejecting", "--data", data, "--no-plot")
    assert code == 2 and "Equity Final" not in out
    assert one_line(err) == f"tradenn: error: Rejecting ({path}, line 6): window must be odd"


@pytest.mark.parametrize("hook", ["init", "next", "weights"])
def test_a_portfolio_strategy_that_raises_is_named_with_its_file_line_and_hook(
    capsys, tmp_path, hook
):
    body = {
        "init": "    def init(self):\n        self.x = {}['x']\n",
        "next": "    def next(self):\n        if len(self.data) > 30:\n            1 / 0\n",
        "weights": "    def weights(self, data):\n        return data.missing_attribute\n",
    }[hook]
    path = tmp_path / "failing.py"
    path.write_text(
        "from tradenn.backtest import PortfolioStrategy\n\n\n"
        f"class Failing(PortfolioStrategy):\n{body}"
    )
    code, out, err = run(capsys, "backtest", f"{path}:Failing", "--data", "SPX,NASDAQ", "--no-plot")
    line = one_line(err)
    assert code == 1 and "Equity Final" not in out
    assert line.startswith(f"tradenn: failed: Failing.{hook} ({path}, line ")
    assert ("at bar 30" in line) == (hook == "next")


def test_compare_keeps_the_others_when_one_strategy_fails(capsys, tmp_path):
    path = tmp_path / "failing.py"
    path.write_text("from tradenn.backtest import Strategy\n\n\n" + STRATEGIES["next"][0])
    code, out, err = run(capsys, "compare", "sma_cross", f"{path}:Failing", "--quiet", "--no-plot")
    assert code == 1
    assert "sma_cross" in out and "buy_and_hold" in out  # the leaderboard of the others
    assert f"{path}:Failing failed: Failing.next" in out  # and a row for the failed one
    assert "Failing.next" in err and "ZeroDivisionError" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv,named",
    [
        (["--cash", "1e308"], "cash must be in (0, 1e+15), got 1e+308"),
        (["--param", "slow=99999999999999999999"], "slow is too large"),
        (["--param", "fast=nan"], None),  # an int parameter: not an int
        (
            ["--plot", "/nonexistent/folder/x.png"],
            "--plot /nonexistent/folder/x.png: there is no folder",
        ),
    ],
)
def test_bad_numbers_and_paths_are_refused_before_the_run(capsys, argv, named):
    code, out, err = run(capsys, "backtest", "sma_cross", *argv)
    assert code == 2
    line = one_line(err)
    assert named is None or named in line
    assert "Equity Final" not in out  # nothing ran


def test_a_report_folder_that_cannot_be_made_is_refused_before_the_run(capsys, write_csv):
    blocker = write_csv(HEADER)  # a file where the report's parent folder would be
    code, out, err = run(capsys, "backtest", "sma_cross", "--report", f"{blocker}/report")
    assert code == 2 and out == ""
    assert one_line(err) == (
        f"tradenn: error: --report {blocker}/report: there is no folder {blocker}"
    )


def test_a_grid_value_of_the_wrong_form_names_grid_and_the_forms(capsys):
    code, _, err = run(capsys, "optimize", "sma_cross", "--grid", "fast=5-20")
    line = one_line(err)
    assert code == 2
    assert line.startswith("tradenn: error: --grid fast=5-20: fast takes an int")
    assert "name=start:stop:step or name=a,b,c" in line


def test_data_shorter_than_the_warm_up_gets_a_warning_naming_file_bars_and_strategy(
    capsys, write_csv
):
    rows = "".join(f"2020-01-{d:02d},10,11,9,10,100\n" for d in range(3, 16))
    path = write_csv(HEADER + rows)  # 15 bars; sma_cross needs 20
    code, out, err = run(capsys, "backtest", "sma_cross", "--data", str(path), "--no-plot")
    assert code == 0 and "# Trades" in out
    line = one_line(err)
    assert line.startswith("tradenn: warning:")
    assert f"{path} has 15 bars; SmaCross's indicators have no value" in line


def test_a_file_named_like_a_bundled_data_set_wins(capsys, write_csv, monkeypatch, tmp_path):
    write_csv(HEADER, name="spx")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "data", "validate", "spx")
    assert code == 0 and "2 bars" in out  # the local file, not the bundled S&P 500


def test_an_unreadable_file_is_one_line(capsys, write_csv, monkeypatch):
    import pandas as pd

    path = write_csv(HEADER)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pd, "read_csv", denied)
    code, _, err = run(capsys, "data", "validate", str(path))
    assert code == 2 and f"{path}: permission denied" in one_line(err)


@pytest.mark.parametrize(
    "strategy,param,named",
    [
        ("bollinger_breakout", "k=-2", "BollingerBreakout: k must be > 0, got -2.0"),
        ("bollinger_breakout", "k=inf", "k takes a finite float, got 'inf'"),
        ("rsi_mean_reversion", "stop_pct=-1", "stop_pct must be in (0, 1), got -1.0"),
        ("donchian_trend", "exit=50", "need 0 < exit <= entry, got exit=50, entry=20"),
        ("buy_and_hold", "exposure=2", "exposure must be in (0, 1], got 2.0"),
    ],
)
def test_each_strategy_refuses_values_it_cannot_run_with(capsys, strategy, param, named):
    code, out, err = run(capsys, "backtest", strategy, "--param", param, "--no-plot")
    assert code == 2 and named in one_line(err) and not out


def test_a_finite_check_applies_to_every_numeric_parameter():
    from strategies import load_strategy
    from tradenn.backtest import Backtest, BacktestError

    with pytest.raises(BacktestError, match="k must be a finite number, got nan"):
        Backtest("SPX", load_strategy("bollinger_breakout")).run(k=float("nan"))


def test_paper_run_refuses_its_parameters_before_creating_a_ledger(capsys, tmp_path):
    ledger = tmp_path / "p.db"
    argv = ["paper", "run", "sma_cross", "--feed", "replay:SPX", "--ledger", str(ledger)]
    code, _, err = run(capsys, *argv, "--param", "fast=30")
    assert code == 2 and "SmaCross: need 0 < fast < slow, got fast=30, slow=20" in one_line(err)
    assert not ledger.exists()


def test_a_date_in_the_future_is_refused_naming_its_line(capsys, write_csv):
    path = write_csv(HEADER + "3000-01-03,10,11,9,10,100\n")
    code, _, err = run(capsys, "data", "validate", str(path))
    assert code == 2 and f"{path}: line 4 (3000-01-03) is in the future" in one_line(err)


def test_a_gap_of_years_in_daily_data_is_a_warning_naming_both_lines(capsys, write_csv):
    rows = "2020-01-03,10,11,9,10,100\n2020-01-06,10,11,9,10,100\n2025-01-07,10,11,9,10,100\n"
    path = write_csv(HEADER + rows)
    code, out, err = run(capsys, "data", "validate", str(path))
    assert code == 0 and "OK" in out
    line = one_line(err)
    assert "between line 5 (2020-01-06) and line 6 (2025-01-07): a mistyped date?" in line


def test_sparse_data_annualizes_without_dividing_by_zero():
    import pandas as pd

    from tradenn.data.calendar import bars_per_year

    assert bars_per_year(pd.DatetimeIndex(["1900-01-01", "1950-01-01", "2000-01-01"])) == 1.0


@pytest.mark.parametrize("delay", [0.3, 0.8])
def test_ctrl_c_while_starting_up_is_one_line_and_exit_130(delay):
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "tradenn", "backtest", "lstm_forecast", "--no-plot"],  # long
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)  # importing numpy and pandas, or just begun
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    # 130, or killed by the SIGINT after handling it: a shell reports both as 130
    assert process.returncode in (130, -signal.SIGINT), err
    assert "Traceback" not in err and err.strip() == "tradenn: interrupted"


# --------------------------------------------------------------------- ledgers edited by SQL


@pytest.fixture(scope="module")
def paper_ledger(tmp_path_factory):
    """A paper ledger of sma_cross(5, 15) over 150 bars of SPX, with fills."""
    from tradenn import data

    folder = tmp_path_factory.mktemp("ledger")
    prices = folder / "prices.csv"
    data.load("SPX").iloc[:150].to_csv(prices, index_label="Date")
    ledger = folder / "paper.db"
    argv = ["paper", "run", "sma_cross", "--feed", f"replay:{prices}", "--ledger", str(ledger)]
    assert main([*argv, "--quiet", "--param=fast=5", "--param=slow=15"]) == 0
    return ledger


EDITS = {
    "equity value": (
        "UPDATE equity SET equity = equity + 100 WHERE seq = 50",
        "equity row seq 50 (1999-03-17T00:00:00): equity 8,562.78, but cash + units x close "
        "is 8,462.78",
    ),
    "equity cash": ("UPDATE equity SET cash = cash - 1 WHERE seq = 99", "equity row seq 99 ("),
    "fill price": (
        "UPDATE fills SET price = price * 2 WHERE id = 3",
        "fills row id 3 (1999-02-10T00:00:00): cash 18,042.50, but the cash before it and this "
        "fill give 26,555.48",
    ),
    "fill units": ("UPDATE fills SET units = -8 WHERE id = 2", "fills row id 2 ("),
    "bar high": ("UPDATE bars SET high = 1 WHERE seq = 10", "bars row seq 10 ("),
    "bar text": ("UPDATE bars SET close = 'abc' WHERE seq = 5", "close 'abc' is not a number"),
    "position": (
        "UPDATE positions SET units = 7",
        "prices.csv: units 7, but the last fill leaves -5",
    ),
    "missing row": ("DELETE FROM equity WHERE seq = 30", "equity: 149 rows for 150 traded bars"),
    "order status": ("UPDATE orders SET status = 'lost' WHERE id = 1", "orders row id 1: status"),
    "snapshot": ("UPDATE state SET seq = 3", "state: the restart snapshot is of bar 3"),
}


@pytest.mark.parametrize("command", ["status", "trades"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_a_ledger_edited_by_sql_is_refused_naming_the_row(
    capsys, tmp_path, paper_ledger, edit, command
):
    import shutil
    import sqlite3

    ledger = tmp_path / "edited.db"
    shutil.copyfile(paper_ledger, ledger)
    assert run(capsys, "paper", command, "--ledger", str(ledger))[0] == 0  # intact: read
    statement, named = EDITS[edit]
    with sqlite3.connect(ledger) as db:
        assert db.execute(statement).rowcount == 1
    code, out, err = run(capsys, "paper", command, "--ledger", str(ledger))
    line = one_line(err)
    assert code == 2 and out == ""
    assert line.startswith(f"tradenn: error: ledger {ledger} is inconsistent: ")
    assert named in line and line.endswith("`tradenn paper verify` replays it whole)")


# ------------------------------------------------------------------------- ambiguous dates

MONTHLY_DAY_FIRST = "Date,Open,High,Low,Close,Volume\n" + "".join(
    f"01/{month:02d}/2020,10,11,9,10,100\n" for month in range(1, 13)
)


def test_dates_that_read_both_ways_warn_and_the_other_reading_can_be_forced(capsys, write_csv):
    path = write_csv(MONTHLY_DAY_FIRST)
    code, out, err = run(capsys, "data", "validate", str(path))
    assert code == 0 and "12 bars, 2020-01-01 .. 2020-01-12" in out
    line = one_line(err)
    assert line.startswith(f"tradenn: warning: {path}: dates like '01/02/2020' read month-first")
    assert "(2020-01-01 .. 2020-01-12, 1 day apart)" in line
    assert "day-first they read 2020-01-01 .. 2020-12-01, 31 days apart" in line
    assert "tradenn --date-format '%d/%m/%Y'" in line
    code, out, err = run(capsys, "--date-format", "%d/%m/%Y", "data", "validate", str(path))
    assert (code, err) == (0, "") and "12 bars, 2020-01-01 .. 2020-12-01" in out


def test_a_forced_date_format_that_does_not_match_names_the_line(capsys, write_csv):
    path = write_csv(MONTHLY_DAY_FIRST)
    code, _, err = run(
        capsys,
        "--date-format",
        "%Y-%m-%d",
        "backtest",
        "sma_cross",
        "--data",
        str(path),
        "--no-plot",
    )
    assert code == 2
    assert one_line(err) == (
        f"tradenn: error: {path}: date '01/01/2020' in column 'Date' at line 2 does not match "
        "the date format '%Y-%m-%d'"
    )


def test_a_forced_date_format_leaves_the_bundled_data_alone(capsys):
    code, out, _ = run(capsys, "--date-format", "%d/%m/%Y", "data", "show", "SPX")
    assert code == 0 and "SPX: 5031 daily bars, 1999-01-04 .. 2018-12-31" in out


def test_utc_offsets_from_different_places_are_a_warning(capsys, write_csv):
    path = write_csv(
        "Date,Open,High,Low,Close,Volume\n2020-01-01T00:00:00+05:00,10,11,9,10,100\n"
        "2020-01-02T00:00:00-08:00,10,11,9,10,100\n2020-01-03,10,11,9,10,100\n"
    )
    code, _, err = run(capsys, "data", "validate", str(path))
    assert code == 0
    assert one_line(err) == (
        f"tradenn: warning: {path}: dates carry UTC offsets -08:00 (line 3) and +05:00 (line 2) "
        "and some none (line 4); read as wall-clock times with the offsets dropped (write the "
        "file in UTC or one offset if they are instants)"
    )


def test_a_corrupt_ledger_is_one_line_through_the_command_line(capsys, tmp_path, paper_ledger):
    import shutil

    ledger = tmp_path / "corrupt.db"
    shutil.copyfile(paper_ledger, ledger)
    data = bytearray(ledger.read_bytes())
    assert len(data) > 6 * 4096
    data[5 * 4096 : 6 * 4096] = b"\x0d" + b"\xff" * 4095  # a table page SQLite's check rejects
    ledger.write_bytes(bytes(data))
    for command in ("status", "trades", "verify"):
        code, out, err = run(capsys, "paper", command, "--ledger", str(ledger))
        line = one_line(err)
        assert code == 2 and out == ""
        assert line.startswith(f"tradenn: error: ledger {ledger} is corrupt: ")
