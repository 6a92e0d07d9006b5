"""Model and agent strategies in the paper loop: the backtest's trades, saved models, restarts
that load instead of retraining, history before the first bar, models trained offline."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategies import load_strategy
from strategies.linreg_forecast import LinregForecast
from tradenn.account import Settings
from tradenn.backtest import Backtest
from tradenn.backtest.runner import Runner, parameter_values
from tradenn.data.synthetic import gbm
from tradenn.live import Ledger, PaperTrader, SimulatedBroker
from tradenn.live.artifacts import ArtifactError, load_artifact, read_artifact, save_artifact
from tradenn.live.loop import verify
from tradenn.models.linear import LinearRegression

from .support import FakeFeed, command

COSTS = {"commission": 0.001}
CASH = 10_000.0

# Small settings: every strategy retrains a few times on 320 bars in a few seconds.
SMALL = {
    "linreg_forecast": {"train_size": 120, "retrain": 50},
    "knn_pattern": {"train_size": 120, "retrain": 50, "k": 10},
    "lstm_forecast": {"train_size": 120, "retrain": 80, "epochs": 1, "units": 4, "lookback": 5},
    "gru_forecast": {"train_size": 120, "retrain": 80, "epochs": 1, "units": 4, "lookback": 5},
    "attention_forecast": {"train_size": 120, "retrain": 80, "epochs": 1, "lookback": 5},
    "tcn_forecast": {"train_size": 120, "retrain": 80, "epochs": 1, "filters": 4, "lookback": 8},
    "transformer_lm": {
        "train_size": 120,
        "retrain": 80,
        "epochs": 1,
        "d_model": 8,
        "num_layers": 1,
        "lookback": 8,
        "n_bins": 11,
    },
    "q_learning": {"train_size": 120, "retrain": 80, "episodes": 5, "episode_length": 40},
    "dqn": {"train_size": 120, "retrain": 80, "timesteps": 300, "episode_length": 40},
}


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return gbm(320, sigma=0.3, seed=5)[["Open", "High", "Low", "Close", "Volume"]]


def _paper(strategy, feed, path, params, **options):
    with Ledger(path) as ledger:
        trader = PaperTrader(
            strategy, lambda: SimulatedBroker(CASH, **COSTS), ledger, feed, params=params, **options
        )
        summary = trader.run()
        return summary, ledger.rows("fills"), ledger.equity(), ledger.models()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_replayed_paper_run_trades_exactly_as_the_backtest(name, prices, tmp_path):
    strategy, params = load_strategy(name), SMALL[name]
    result = Backtest(prices, strategy, cash=CASH, **COSTS).run(**params)
    summary, fills, equity, models = _paper(strategy, FakeFeed(prices), tmp_path / "p.db", params)
    filled = result.orders[result.orders["Status"] == "filled"]
    assert len(fills) == len(filled) > 2
    assert [f["price"] for f in fills] == filled["FillPrice"].tolist()
    assert [f["side"] for f in fills] == filled["Side"].tolist()
    assert [f["time"] for f in fills] == [t.isoformat() for t in filled["FillTime"]]
    assert summary.equity == result.stats["Equity Final [$]"]
    assert equity["equity"].tolist() == result.equity.tolist()
    # every retrain is a file beside the ledger, recorded with the bar that first used it
    assert len(models) >= 2
    folder = tmp_path / "p.db.models"
    for file in models["file"]:
        assert (folder / file).is_file()
        header, _ = read_artifact(folder / file)
        assert header["strategy"] == strategy.__name__
        assert header["params"] == json.loads(json.dumps(result.params, default=str))
    assert models["seq"].is_monotonic_increasing and models["file"].is_unique
    # and the targets before the first model are flat
    assert (equity["target"].iloc[: int(models["seq"].iloc[0])] == 0).all()


FITS: list[int] = []  # training-set sizes of CountingLinreg's fits


class CountingLinreg(LinregForecast):
    """Counts the fits of its models (in FITS)."""

    def make_model(self):
        model = super().make_model()
        fit = model.fit

        def counted(X, y):
            FITS.append(len(X))
            return fit(X, y)

        model.fit = counted
        return model


def _ledger_contents(path: Path) -> tuple:
    with Ledger(path, readonly=True) as ledger:
        models = ledger.models()[["seq", "file", "sha256"]].to_dict("records")
        equity = ledger.equity().to_dict("records")
        return ledger.rows("orders"), ledger.rows("fills"), equity, models


def test_a_restart_loads_the_last_model_instead_of_retraining(prices, tmp_path):
    params = {"train_size": 100, "retrain": 40}
    FITS.clear()
    _paper(CountingLinreg, FakeFeed(prices), tmp_path / "whole.db", params)
    folds = len(FITS)
    assert folds >= 4
    FITS.clear()
    path = tmp_path / "cut.db"
    _paper(CountingLinreg, FakeFeed(prices, stop_after=250), path, params)
    before = len(FITS)
    FITS.clear()
    summary, *_ = _paper(CountingLinreg, FakeFeed(prices), path, params)
    assert summary.replayed == 250 and summary.processed == len(prices) - 250
    # the restart fitted only the folds that began after it: none of the past ones again
    assert len(FITS) == folds - before
    assert _ledger_contents(path) == _ledger_contents(tmp_path / "whole.db")


def test_a_restart_refuses_a_model_file_changed_since_it_was_recorded(prices, tmp_path):
    params = {"train_size": 100, "retrain": 40}
    path = tmp_path / "p.db"
    _paper(LinregForecast, FakeFeed(prices, stop_after=200), path, params)
    with Ledger(path, readonly=True) as ledger:
        last = ledger.models()["file"].iloc[-1]
    model = path.with_name("p.db.models") / last
    model.write_bytes(model.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ArtifactError, match="changed after it was recorded"):
        _paper(LinregForecast, FakeFeed(prices), path, params)


def _cli(*argv: str, hook: str | None = None) -> subprocess.CompletedProcess:
    """`tradenn ...` in a fresh interpreter, with crash hook ``hook``."""
    args, env = command("tradenn.cli", list(argv), hook)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index_label="Date")
    return path


@pytest.mark.parametrize(
    ("name", "first_retrain_file"),
    [("linreg_forecast", "fold-0001.npz"), ("q_learning", "block-0001.npz")],
)
def test_a_sigkill_during_a_retrain_then_a_restart_gives_the_uninterrupted_result(
    name, first_retrain_file, prices, tmp_path
):
    csv = _csv(tmp_path, prices)
    params = [f"--param={k}={v}" for k, v in SMALL[name].items()]
    base = ["paper", "run", name, "--feed", f"replay:{csv}", "--quiet", *params]
    whole = _cli(*base, "--ledger", str(tmp_path / "whole.db"))
    assert whole.returncode == 0, whole.stderr
    with Ledger(tmp_path / "whole.db", readonly=True) as ledger:
        models = ledger.models()
    bar = int(models.loc[models["file"] == first_retrain_file, "seq"].iloc[0])
    killed = tmp_path / "killed.db"
    run = _cli(*base, "--ledger", str(killed), hook=f"kill-saved@{bar}")
    assert run.returncode == -signal.SIGKILL
    # the model file is there, but no committed bar names it
    assert (tmp_path / "killed.db.models" / first_retrain_file).is_file()
    with Ledger(killed, readonly=True) as ledger:
        assert ledger.counts()["bars"] == bar
        assert first_retrain_file not in set(ledger.models()["file"])
    again = _cli(*base, "--ledger", str(killed))
    assert again.returncode == 0, again.stderr
    assert _ledger_contents(killed) == _ledger_contents(tmp_path / "whole.db")
    checked = _cli("paper", "verify", "--ledger", str(killed))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_warmup_bars_are_read_not_traded_and_the_schedule_is_the_backtests(prices, tmp_path):
    params = {"train_size": 100, "retrain": 40}
    path = tmp_path / "p.db"
    summary, fills, equity, models = _paper(
        LinregForecast, FakeFeed(prices), path, params, warmup=180
    )
    assert summary.processed == len(prices) - 180
    with Ledger(path, readonly=True) as ledger:
        assert ledger.history() == 180
        assert ledger.counts()["bars"] == len(prices)
    assert equity["seq"].iloc[0] == 180  # history bars have no equity row
    assert min(pd.Timestamp(f["time"]) for f in fills) > prices.index[180]
    # the first model is trained at the first new bar, on the history
    assert models["seq"].iloc[0] == 180
    # every decision from there is the backtest's target at that bar
    backtest = Runner(
        LinregForecast, parameter_values(LinregForecast, params), Settings(cash=CASH), prices
    )
    expected = backtest.targets()[180:]
    assert equity["target"].to_numpy().tolist() == expected.tolist()


def test_warmup_history_survives_a_restart_and_verify(prices, tmp_path):
    params = {"train_size": 100, "retrain": 40}
    path = tmp_path / "p.db"
    _paper(LinregForecast, FakeFeed(prices, stop_after=30), path, params, warmup=150)
    summary, *_ = _paper(LinregForecast, FakeFeed(prices), path, params, warmup=150)
    assert summary.replayed == 180
    _paper(LinregForecast, FakeFeed(prices), tmp_path / "whole.db", params, warmup=150)
    assert _ledger_contents(path) == _ledger_contents(tmp_path / "whole.db")
    with Ledger(path, readonly=True) as ledger:
        broker = SimulatedBroker(CASH, **COSTS, symbol="TEST")
        assert verify(LinregForecast, broker, ledger) is None


def test_the_log_says_how_long_until_the_first_model_and_warns_once_about_slow_training(
    prices, tmp_path, caplog
):
    params = {"train_size": 100, "retrain": 40}
    with caplog.at_level(logging.INFO, logger="tradenn.live"):
        _paper(
            LinregForecast,
            FakeFeed(prices),
            tmp_path / "p.db",
            params,
            interval=pd.Timedelta(microseconds=1),
        )
    waiting = [r.getMessage() for r in caplog.records if "flat until its first model" in r.message]
    assert len(waiting) == 1 and "more bars before it trains" in waiting[0]
    trained = [r for r in caplog.records if r.getMessage().startswith("model fold-")]
    assert len(trained) >= 4 and all(" s" in r.getMessage() for r in trained)
    slow = [r for r in caplog.records if "between the feed's bars" in r.getMessage()]
    assert len(slow) == 1 and slow[0].levelno == logging.WARNING


def _paper_run_from(
    model: Path, name: str, later: Path, ledger: Path, params: list[str]
) -> tuple[subprocess.CompletedProcess, pd.DataFrame, pd.DataFrame]:
    """`tradenn paper run NAME --model MODEL` on the bars of the CSV ``later``, into ``ledger``:
    the finished run (checked to have succeeded) and the ledger's models and equity."""
    run = _cli(
        "paper", "run", name, "--feed", f"replay:{later}", "--ledger", str(ledger),
        "--model", str(model), *params,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with Ledger(ledger, readonly=True) as book:
        return run, book.models(), book.equity()


def test_train_saves_a_model_that_paper_run_starts_from(prices, tmp_path):
    params = ["--param=train_size=60", "--param=retrain=30"]
    history = _csv(tmp_path, prices.iloc[:200], "history.csv")
    later = _csv(tmp_path, prices.iloc[200:], "later.csv")
    out = tmp_path / "model.npz"
    trained = _cli("train", "linreg_forecast", "--data", str(history), "--out", str(out), *params)
    assert trained.returncode == 0, trained.stderr
    assert "trained LinregForecast" in trained.stdout
    header, arrays = read_artifact(out)
    assert header["strategy"] == "LinregForecast" and header["params"]["train_size"] == 60
    assert header["data"]["bars"] == 200 and header["data"]["last"].startswith(
        str(prices.index[199].date())
    )
    assert len(header["data"]["sha256"]) == 64 and set(arrays) == {"center", "scale"}
    model, _, _ = load_artifact(out, LinearRegression)  # the model's own loader reads it
    assert np.isfinite(model.coef_).all()
    again = tmp_path / "again.npz"
    assert _cli("train", "linreg_forecast", "--data", str(history), "--out", str(again),
                *params).returncode == 0  # fmt: skip
    assert again.read_bytes() == out.read_bytes()  # the same data and parameters: the same file

    ledger = tmp_path / "p.db"
    _, models, equity = _paper_run_from(out, "linreg_forecast", later, ledger, params)
    assert models["file"].iloc[0].startswith("imported-")
    # then the schedule goes on: its own first fold at 60 samples of its own
    assert models["file"].iloc[1] == "fold-0000.npz"
    own = int(models["seq"].iloc[1])
    # before that the offline model decides (as soon as the features are warm)
    assert (equity["target"].iloc[:own] != 0).sum() > own // 2
    status = _cli("paper", "status", "--ledger", str(ledger))
    assert "model fold-" in status.stdout
    checked = _cli("paper", "verify", "--ledger", str(ledger))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_paper_run_refuses_a_model_for_other_parameters_or_another_strategy(prices, tmp_path):
    history = _csv(tmp_path, prices.iloc[:200], "history.csv")
    out = tmp_path / "model.npz"
    assert (
        _cli("train", "linreg_forecast", "--data", str(history), "--out", str(out)).returncode == 0
    )
    feed = ["--feed", f"replay:{history}", "--quiet"]
    other = _cli(
        "paper", "run", "linreg_forecast", *feed, "--ledger", str(tmp_path / "a.db"),
        "--model", str(out), "--param=alpha=1.0",
    )  # fmt: skip
    assert other.returncode == 2
    assert other.stderr.strip().splitlines() == [
        f"tradenn: error: {out} was trained with alpha=10.0, this run has alpha=1.0"
    ]
    assert not (tmp_path / "a.db").exists()  # refused before a ledger is made
    wrong = _cli(
        "paper", "run", "knn_pattern", *feed, "--ledger", str(tmp_path / "b.db"),
        "--model", str(out),
    )  # fmt: skip
    assert wrong.returncode == 2
    assert "is a model of LinregForecast, not of KnnPattern" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    rule = _cli(
        "paper", "run", "sma_cross", *feed, "--ledger", str(tmp_path / "c.db"), "--model", str(out)
    )
    assert rule.returncode == 2 and "trains no model" in rule.stderr


def test_train_checks_its_arguments_before_training(tmp_path):
    missing = _cli("train", "lstm_forecast", "--data", "SPX", "--out", str(tmp_path / "no/m.npz"))
    assert missing.returncode == 2
    assert "folder" in missing.stderr and "does not exist" in missing.stderr
    rule = _cli("train", "sma_cross", "--data", "SPX", "--out", str(tmp_path / "m.npz"))
    assert rule.returncode == 2 and "trains no model" in rule.stderr


def test_artifacts_are_reproducible_and_refuse_foreign_or_wrong_files(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    model = LinearRegression(alpha=1.0).fit(X, y)
    a = save_artifact(tmp_path / "a.npz", model, {"strategy": "S"}, {"center": np.zeros(3)})
    b = save_artifact(tmp_path / "b.npz", model, {"strategy": "S"}, {"center": np.zeros(3)})
    assert a == b  # the same model: the same bytes
    loaded, header, _ = load_artifact(tmp_path / "a.npz", LinearRegression, a)
    assert np.array_equal(loaded.predict(X), model.predict(X)) and header["strategy"] == "S"
    with pytest.raises(
        ArtifactError, match=r"is a tradenn\.models\.LinearRegression file, not a KNNRegressor"
    ):
        from tradenn.models.knn import KNNRegressor

        load_artifact(tmp_path / "a.npz", KNNRegressor)
    with pytest.raises(ArtifactError, match="changed after it was recorded"):
        load_artifact(tmp_path / "a.npz", LinearRegression, "0" * 64)
    model.save(tmp_path / "plain.npz")
    with pytest.raises(ArtifactError, match="not a tradenn model artifact"):
        read_artifact(tmp_path / "plain.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ArtifactError, match="not a readable model artifact"):
        read_artifact(tmp_path / "junk.npz")


def test_a_version_2_ledger_is_upgraded_and_continues(prices, tmp_path):
    path = tmp_path / "p.db"
    _paper(load_strategy("sma_cross"), FakeFeed(prices, stop_after=50), path, {})
    db = sqlite3.connect(path)
    db.executescript(
        "DROP TABLE models; ALTER TABLE run DROP COLUMN history;"
        "UPDATE schema_version SET version = 2;"
    )
    db.close()
    summary, *_ = _paper(load_strategy("sma_cross"), FakeFeed(prices), path, {})
    assert summary.replayed == 50 and summary.processed == len(prices) - 50
    with Ledger(path, readonly=True) as ledger:
        assert ledger.history() == 0 and len(ledger.models()) == 0


def test_live_walk_forward_forecasts_what_walk_forward_forecasts(prices):
    from tradenn.models.walk_forward import LiveWalkForward, walk_forward

    options = {"lookback": 3, "horizon": 1, "train_size": 80, "test_size": 30}
    whole = walk_forward(lambda: LinearRegression(alpha=1.0), prices, **options)
    live = LiveWalkForward(lambda: LinearRegression(alpha=1.0), **options)
    got = {}
    for t in range(len(prices)):
        forecast = live.update(prices.iloc[: t + 1])
        if forecast is not None:
            got[prices.index[t]] = forecast.prediction
    assert list(got) == list(whole.predictions.index)
    assert list(got.values()) == whole.predictions.tolist()


def test_an_agent_trained_offline_starts_a_paper_run(prices, tmp_path):
    params = [
        f"--param={k}={v}"
        for k, v in {"train_size": 100, "retrain": 50, "episodes": 5, "episode_length": 40}.items()
    ]
    history = _csv(tmp_path, prices.iloc[:200], "history.csv")
    later = _csv(tmp_path, prices.iloc[200:], "later.csv")
    out = tmp_path / "agent.npz"
    made = _cli(
        "train", "q_learning", "--data", str(history), "--out", str(out), "--quiet", *params
    )
    assert made.returncode == 0, made.stderr
    ledger = tmp_path / "p.db"
    run, models, equity = _paper_run_from(out, "q_learning", later, ledger, params)
    assert "flat until its features have warmed up" in run.stderr
    assert list(models["file"]) == [f"imported-{models['sha256'].iloc[0][:12]}.npz"]
    assert (equity["target"] != 0).any()  # it acted before any agent of its own was trained
    checked = _cli("paper", "verify", "--ledger", str(ledger))
    assert checked.returncode == 0, checked.stdout + checked.stderr
