"""The one set of helpers every notebook builder uses: make cells, execute the notebook in a
fresh kernel with nbclient, save it with its outputs (no timing metadata).

Run a builder from the repository root, e.g. ``PYTHONPATH=. python notebooks/_build/build_03.py``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1]


def md(source: str) -> nbformat.NotebookNode:
    """A markdown cell (the source is dedented and stripped)."""
    return nbformat.v4.new_markdown_cell(textwrap.dedent(source).strip())


def code(source: str) -> nbformat.NotebookNode:
    """A code cell (dedented, then formatted by ``ruff format`` with the project's settings;
    a cell with IPython magics, which ruff cannot parse as Python, is kept as written)."""
    text = textwrap.dedent(source).strip() + "\n"
    if not any(line.lstrip().startswith(("%", "!")) for line in text.splitlines()):
        text = subprocess.run(
            ["ruff", "format", "--stdin-filename", "cell.py", "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=NOTEBOOKS.parent,
        ).stdout
    return nbformat.v4.new_code_cell(text.strip())


def build(name: str, cells: list) -> float:
    """Write ``notebooks/<name>``, execute it in a fresh kernel, save it with outputs.

    Returns the execution time in seconds.
    """
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    began = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - began
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    path = NOTEBOOKS / name
    nbformat.write(nb, path)
    size = path.stat().st_size
    print(f"{name}: executed in {seconds:.1f} s, {size / 1024:.0f} KB", file=sys.stderr)
    return seconds
