"""The built wheel carries the bundled data: `load("SPX")` works after a plain `pip install .`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_bundled_datasets_and_no_build_scripts(tmp_path):
    # Build from a clean copy, so no stale build/ or egg-info folder of the checkout can leak in.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("tradenn", "strategies", "data"):
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, source / part, symlinks=True, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    built = subprocess.run(
        [*command, "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("tradenn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for dataset in ("SPX", "NASDAQ", "MSFT", "GOOGL", "EURUSD_1H"):
        assert f"tradenn/data/bundled/{dataset}.csv" in names
    assert "tradenn/data/bundled/README.md" in names
    assert not any(name.endswith("build_bundled.py") for name in names)
    assert "tradenn/cli.py" in names
    # the ready strategies, their registry and the adapters ship with the engine
    for module in ("__init__.py", "_registry.py", "sma_cross.py", "adapters/forecast.py"):
        assert f"strategies/{module}" in names, module
