"""Where independent runs execute: in this process, in local processes, or on a Dask cluster.

Parameter sweeps, walk-forward optimization and ``tradenn compare`` are many independent
backtests. They go through one small interface::

    with executor_for(None, jobs=4) as executor:     # local processes (the default)
        results = executor.map(run_one, items, shared=backtest)   # run_one(backtest, item) each

(:func:`make_executor` gives the executor without the ``with``; then ``close()`` it.)

``shared`` is sent to each worker once (the price data and the backtest settings), the items
one by one; results come back in the order of ``items``. The function must be defined at module
level (it is sent by reference). ``map(..., progress="label")`` shows a tqdm bar with an ETA on
a terminal (``progress=None``: none). Ctrl-C (or SIGTERM, which the command line turns into the
same) stops the workers at once and raises :class:`Interrupted` carrying the results finished
so far (a prefix of ``items``), so a sweep can keep its finished rows.

* :class:`SerialExecutor`: a plain loop (``jobs=1``; also what tests use).
* :class:`ProcessExecutor`: a :class:`multiprocessing.pool.Pool` with ``fork`` where
  the platform has it, so strategies loaded from files are available in the workers. At most
  one worker per core (more are capped, with a warning), and each worker's BLAS library gets
  its share of the cores (``threadpoolctl``): two workers with two OpenBLAS threads each on two
  cores made numpy work up to 7x slower.
* :class:`DaskExecutor`: a ``dask.distributed.Client`` at ``dask://HOST:PORT`` (or
  ``tcp://...``), or an existing client; ``shared`` is scattered to the workers once. Needs the
  optional extra ``tradenn[distributed]``; strategies must be importable on the workers (the
  bundled ones are).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tradenn import checks
from tradenn.errors import TradennError

__all__ = [
    "DaskExecutor",
    "Executor",
    "Interrupted",
    "ProcessExecutor",
    "SerialExecutor",
    "executor_for",
    "make_executor",
]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :meth:`Executor.map`; ``done`` holds the results of the first items (in
    order) that had finished."""

    def __init__(self, done: list) -> None:
        super().__init__(f"interrupted after {len(done)} items")
        self.done = done


def _bar(progress: str | None, total: int):
    """A tqdm bar on stderr when ``progress`` names one and stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=progress, disable=True if progress is None else None)


class Executor:
    """Runs ``fn(shared, item)`` for each item; see the module docstring."""

    workers: int = 1

    def map(
        self,
        fn: Callable[[Any, Any], Any],
        items: Iterable[Any],
        shared: Any = None,
        progress: str | None = None,
    ) -> list:
        """``[fn(shared, item) for item in items]``, possibly in parallel, in order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers (a no-op for executors that hold none)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Everything in this process, one item after another."""

    def map(self, fn, items, shared=None, progress=None) -> list:
        items = list(items)
        done: list = []
        with _bar(progress, len(items)) as bar:
            try:
                for item in items:
                    done.append(fn(shared, item))
                    bar.update()
            except KeyboardInterrupt:
                raise Interrupted(done) from None
        return done

    def __repr__(self) -> str:
        return "SerialExecutor()"


_SHARED: Any = None  # the shared object, in each worker process
_LIMITS: Any = None  # the worker's BLAS thread limit, kept for the worker's life


def _install(shared: Any, blas_threads: int | None = None) -> None:
    global _SHARED, _LIMITS
    _SHARED = shared
    # Ctrl-C reaches the whole process group: the parent stops the workers, they do not die
    # one by one with a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler: terminate() ends us
    if blas_threads is not None:
        from threadpoolctl import threadpool_limits

        _LIMITS = threadpool_limits(limits=blas_threads, user_api="blas")


def _call(job: tuple[Callable, Any]) -> Any:
    fn, item = job
    return fn(_SHARED, item)


class ProcessExecutor(Executor):
    """Local worker processes (``jobs`` of them; default: the machine's cores)."""

    def __init__(self, jobs: int | None = None) -> None:
        checks.positive_int(jobs, "jobs", allow_none=True, error=TradennError)
        cores = os.cpu_count() or 1
        if jobs is not None and jobs > cores:
            warnings.warn(
                f"jobs={jobs} is more than this machine's {cores} cores; using {cores}",
                stacklevel=2,
            )
        self.workers = min(jobs or cores, cores)

    def map(self, fn, items, shared=None, progress=None) -> list:
        items = list(items)
        if not items:
            return []
        workers = min(self.workers, len(items))
        if workers == 1:
            return SerialExecutor().map(fn, items, shared, progress)
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        # Results come back a chunk at a time: small enough chunks that an interrupted sweep
        # keeps nearly everything that finished, large enough that IPC stays cheap.
        chunk = max(1, math.ceil(len(items) / (64 * workers)))
        blas_threads = max(1, (os.cpu_count() or 1) // workers)  # the cores, shared out
        pool = multiprocessing.get_context(method).Pool(
            workers, initializer=_install, initargs=(shared, blas_threads)
        )
        done: list = []
        try:
            with _bar(progress, len(items)) as bar:
                for value in pool.imap(_call, [(fn, item) for item in items], chunksize=chunk):
                    done.append(value)
                    bar.update()
            pool.close()
        except KeyboardInterrupt:
            pool.terminate()  # at once: no worker goes on with its chunk
            raise Interrupted(done) from None
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
        return done

    def __repr__(self) -> str:
        return f"ProcessExecutor(jobs={self.workers})"


class DaskExecutor(Executor):
    """Runs on a Dask distributed cluster (an address or an existing ``Client``)."""

    def __init__(self, address: Any) -> None:
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - depends on the optional extra
            raise TradennError(
                "a Dask executor needs the optional extra: pip install 'tradenn[distributed]'"
            ) from None
        self._own = not isinstance(address, Client)
        if self._own:
            target = str(address)
            if target.startswith("dask://"):
                target = "tcp://" + target.removeprefix("dask://")
            try:
                self.client = Client(target, timeout="10s")
            except OSError as error:
                message = f"cannot reach the Dask scheduler at {address}: {error}"
                raise TradennError(message) from None
        else:
            self.client = address
        self.workers = max(1, sum(self.client.nthreads().values()))

    def map(self, fn, items, shared=None, progress=None) -> list:
        items = list(items)
        if not items:
            return []
        handle = self.client.scatter(shared, broadcast=True) if shared is not None else None
        futures = self.client.map(fn, [handle] * len(items), items, pure=False)
        done: list = []
        try:
            with _bar(progress, len(items)) as bar:
                for future in futures:  # in order: what finished first may wait
                    done.append(future.result())
                    bar.update()
        except KeyboardInterrupt:
            self.client.cancel(futures)
            raise Interrupted(done) from None
        return done

    def close(self) -> None:
        if self._own:
            self.client.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address}, workers={self.workers})"


def make_executor(spec: Any = None, jobs: int | None = None) -> Executor:
    """An executor from a command-line style ``spec``.

    ``None`` or ``"local"``: local processes (``jobs`` of them; ``jobs=1`` runs serially);
    ``"serial"``; ``"dask://HOST:PORT"`` or ``"tcp://HOST:PORT"``: a Dask cluster; an
    :class:`Executor` is returned as is, a ``dask.distributed.Client`` is wrapped.
    """
    if isinstance(spec, Executor):
        return spec
    if spec is None or spec == "local":
        return SerialExecutor() if jobs == 1 else ProcessExecutor(jobs)
    if spec == "serial":
        return SerialExecutor()
    if isinstance(spec, str):
        if spec.startswith(("dask://", "tcp://")):
            return DaskExecutor(spec)
        raise TradennError(f"executor {spec!r}: expected 'local', 'serial' or dask://HOST:PORT")
    if type(spec).__name__ == "Client":
        return DaskExecutor(spec)
    raise TradennError(f"executor must be a string, an Executor or a Dask Client, got {spec!r}")


@contextlib.contextmanager
def executor_for(spec: Any = None, jobs: int | None = None) -> Iterator[Executor]:
    """:func:`make_executor` for the length of a ``with`` block: an executor made here is
    closed at the block's end; an :class:`Executor` passed in is its owner's to close."""
    executor = make_executor(spec, jobs)
    try:
        yield executor
    finally:
        if executor is not spec:
            executor.close()
