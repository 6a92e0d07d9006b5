"""Executors: serial, local processes and a real Dask LocalCluster give the same results."""

from __future__ import annotations

from operator import add, mul

import pytest

from strategies import load_strategy
from tradenn import data
from tradenn.backtest import Backtest
from tradenn.backtest.compare import compare
from tradenn.backtest.executors import (
    DaskExecutor,
    ProcessExecutor,
    SerialExecutor,
    make_executor,
)
from tradenn.errors import TradennError


def test_serial_and_process_executors_agree_in_order():
    # functions the workers can import (a test module's own would not be importable on Dask)
    items = list(range(37))
    assert SerialExecutor().map(mul, items, shared=3) == [3 * i for i in items]
    with ProcessExecutor(jobs=2) as executor:
        assert executor.map(add, items, shared=100) == [100 + i for i in items]
        assert executor.map(add, [], shared=100) == []


def test_make_executor_specs():
    assert isinstance(make_executor(None, jobs=1), SerialExecutor)
    assert isinstance(make_executor("local", jobs=2), ProcessExecutor)
    assert make_executor("local", jobs=2).workers == 2
    assert isinstance(make_executor("serial"), SerialExecutor)
    executor = SerialExecutor()
    assert make_executor(executor) is executor
    with pytest.raises(TradennError, match="expected 'local', 'serial' or dask://HOST:PORT"):
        make_executor("mpi://x")
    with pytest.raises(TradennError, match="jobs must be a positive integer"):
        ProcessExecutor(jobs=0)


def runs():
    return [
        ("sma_cross", load_strategy("sma_cross"), {}),
        ("sma_fast", load_strategy("sma_cross"), {"fast": 5, "slow": 40}),
        ("ema_momentum", load_strategy("ema_momentum"), {}),
        ("bad", load_strategy("sma_cross"), {"fast": 50, "slow": 10}),
    ]


@pytest.fixture(scope="module")
def spx():
    return data.load("SPX", end="2006-12-31")


def same_board(a, b):
    columns = [c for c in a.table.columns if c != "Time [s]"]
    assert a.table[columns].equals(b.table[columns])
    assert a.errors == b.errors
    for name in a.results:
        assert a.results[name].equity.equals(b.results[name].equity)


def test_compare_in_processes_equals_serial(spx):
    serial = compare(spx, runs(), commission=0.001)
    local = compare(spx, runs(), executor="local", jobs=2, commission=0.001)
    same_board(serial, local)
    assert "bad" in local.errors


def test_compare_on_a_dask_local_cluster_equals_the_local_run(spx):
    distributed = pytest.importorskip("distributed")  # part of the dev extras, so CI has it
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        with make_executor(address) as executor:
            assert isinstance(executor, DaskExecutor) and executor.workers == 2
            assert executor.map(add, range(10), shared=5) == [i + 5 for i in range(10)]
            on_dask = compare(spx, runs(), executor=executor, commission=0.001)
            backtest = Backtest(spx, load_strategy("sma_cross"), commission=0.001)
            grid = {"fast": [5, 10, 15], "slow": [20, 40]}
            swept = backtest.optimize(executor=executor, **grid)
    same_board(compare(spx, runs(), commission=0.001), on_dask)
    local = backtest.optimize(jobs=1, **grid)
    assert swept.table.equals(local.table) and swept.best_params == local.best_params
    assert swept.pbo == local.pbo and swept.deflated_sharpe == local.deflated_sharpe


def test_an_unreachable_scheduler_is_a_clear_error():
    pytest.importorskip("distributed")
    with pytest.raises(TradennError, match="cannot reach the Dask scheduler"):
        make_executor("dask://127.0.0.1:9")


def _blas_threads(shared, item):
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_workers_share_the_cores_among_their_blas_threads(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    with ProcessExecutor(jobs=2) as executor:
        found = executor.map(_blas_threads, range(4))
    assert found and all(threads and set(threads) == {2} for threads in found)
    with ProcessExecutor(jobs=4) as executor:
        found = executor.map(_blas_threads, range(4))
    assert all(set(threads) == {1} for threads in found)


def test_more_jobs_than_cores_are_capped_with_a_warning(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    with pytest.warns(UserWarning, match="jobs=50 is more than this machine's 2 cores; using 2"):
        executor = ProcessExecutor(jobs=50)
    assert executor.workers == 2
