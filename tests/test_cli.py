"""The `tradenn` command: output, exit codes, one-line errors (run in-process and as a program)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tradenn.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help_at_every_level(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and "tradenn 0." in capsys.readouterr().out
    for argv in (["--help"], ["data", "--help"], ["data", "show", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0 and "usage: tradenn" in capsys.readouterr().out


def test_data_list_shows_every_bundled_dataset(capsys):
    code, out, _ = run(capsys, "data", "list")
    assert code == 0
    for name in ("SPX", "NASDAQ", "MSFT", "GOOGL", "EURUSD_1H"):
        assert name in out
    assert "5031" in out and "2017-12-29 21:00:00" in out


def test_data_show_prints_a_summary_and_the_last_rows(capsys):
    code, out, _ = run(capsys, "data", "show", "spx", "--tail", "2")
    assert code == 0
    assert out.splitlines()[0].startswith("SPX: 5031 daily bars, 1999-01-04 .. 2018-12-31")
    assert "2018-12-31" in out and "2018-12-27" not in out


def test_data_validate_accepts_a_good_file(capsys, write_csv):
    path = write_csv("Date,Open,High,Low,Close,Volume\n2020-01-02,10,11,9,10.5,100\n")
    code, out, _ = run(capsys, "data", "validate", str(path))
    assert code == 0 and out.strip() == f"{path}: OK, 1 bars, 2020-01-02 .. 2020-01-02"


def test_data_validate_rejects_a_bad_file_with_one_line_and_exit_2(capsys, write_csv):
    path = write_csv("Date,Open,High,Low,Close,Volume\n2020-01-02,10,9,9,10.5,100\n")
    code, out, err = run(capsys, "data", "validate", str(path))
    assert code == 2 and out == ""
    expected = f"{path}: High 9 is below max(Open, Close) = 10.5 at line 2 (2020-01-02)"
    assert err == f"tradenn: error: {expected}\n"


def test_usage_errors_are_one_line_with_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "show"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "required: SOURCE" in err


def test_a_negative_tail_is_a_usage_error(capsys):
    code, _, err = run(capsys, "data", "show", "SPX", "--tail", "-1")
    assert code == 2 and err == "tradenn: error: --tail must be >= 0, got -1\n"


def test_the_installed_command_runs_without_a_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "tradenn", "data", "show", "NOPE"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("tradenn: error: NOPE: unknown data source")
    assert "Traceback" not in done.stderr
