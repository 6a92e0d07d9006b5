"""Shared helpers of the notebook builders: make cells, execute, strip noise, save."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def md(text: str) -> nbformat.NotebookNode:
    """A markdown cell from dedented text."""
    return nbformat.v4.new_markdown_cell(_clean(text))


def code(text: str) -> nbformat.NotebookNode:
    """A code cell from dedented text."""
    return nbformat.v4.new_code_cell(_clean(text))


def _clean(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip("\n")


def build(cells: list, name: str) -> None:
    """Execute the cells in a fresh kernel from notebooks/ and write notebooks/<name>."""
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    start = time.perf_counter()
    import os

    os.chdir(ROOT)  # the kernel starts in notebooks/, as in the test harness
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}
    ).execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                output.get("metadata", {}).pop("execution", None)
    path = ROOT / "notebooks" / name
    nbformat.write(nb, path)
    size = path.stat().st_size / 1024
    print(f"{name}: executed in {elapsed:.1f} s, {size:.0f} KB", file=sys.stderr)
