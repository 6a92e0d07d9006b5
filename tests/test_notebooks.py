"""The research notebooks: each runs top to bottom in a fresh kernel, and is committed executed.

Every ``notebooks/*.ipynb`` is picked up automatically. Executing one takes up to a minute or so,
so the execution tests are marked ``slow`` (``pytest -m slow tests/test_notebooks.py``); the
checks on the committed files (executed, in order, without errors, small) run by default.

The kernel is a separate process, so the ``_no_network`` fixture of ``conftest.py`` cannot reach
it: the notebooks use only bundled datasets (``tradenn.data.load("SPX")``) and synthetic series,
and a guard cell run before the notebook's own cells (in the in-memory copy only) makes any
non-loopback connection from the kernel fail, so a notebook that reaches for the network fails
here. The same cell checks that the kernel imports the ``tradenn`` of this repository (its root
is put first on the kernel's ``PYTHONPATH``, and the kernel runs this interpreter).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell
MAX_BYTES = 1_000_000
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in kernel tracebacks

# Runs in the kernel before the notebook: no network, and the repository's tradenn.
GUARD = f"""
def _tradenn_test_guard():
    import pathlib
    import socket

    import tradenn

    connect = socket.socket.connect

    def guarded_connect(self, address, *args, **kwargs):
        host = address[0] if isinstance(address, tuple) else None
        if self.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost"):
            return connect(self, address, *args, **kwargs)
        raise OSError("network access is disabled in the notebook tests")

    socket.socket.connect = guarded_connect
    where = pathlib.Path(tradenn.__file__).resolve()
    assert where.is_relative_to({str(ROOT)!r}), f"the kernel imports tradenn from {{where}}"


_tradenn_test_guard()
del _tradenn_test_guard
"""


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def _kernel_env() -> dict[str, str]:
    """This process's environment, with the repository first on PYTHONPATH and this
    interpreter first on PATH (the ``python3`` kernel spec launches ``python``)."""
    env = dict(os.environ)
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_top_to_bottom(path: Path):
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(GUARD))
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    problem = None
    try:
        client.execute(env=_kernel_env())
    except nbclient.exceptions.CellExecutionError as error:
        failed = [
            number
            for number, cell in enumerate(notebook.cells)
            if cell.cell_type == "code"
            and any(output.get("output_type") == "error" for output in cell.get("outputs", []))
        ]
        where = (
            "the guard cell (run before the notebook)"
            if failed == [0]
            else f"cell {failed[0] - 1 if failed else '?'} (0-based, all cells)"
        )
        problem = f"{path.name}: {where} failed:\n{ANSI.sub('', str(error))}"
    except TimeoutError as error:  # nbclient's CellTimeoutError is a TimeoutError
        problem = f"{path.name}: a cell ran over {CELL_TIMEOUT} s: {error}"
    if problem is not None:  # outside the except block: no chained traceback in the report
        pytest.fail(problem, pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_is_executed_and_small(path: Path):
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name} is {size:,} bytes (limit {MAX_BYTES:,})"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    cells = _code_cells(notebook)
    assert cells, f"{path.name} has no code cells"
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: execution counts {counts} (run it top to bottom in a fresh kernel)"
    )
    assert any(cell.outputs for cell in cells), f"{path.name} has no outputs"
    errors = [
        number
        for number, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        and any(output.get("output_type") == "error" for output in cell.outputs)
    ]
    assert not errors, f"{path.name}: cells {errors} hold error outputs"
