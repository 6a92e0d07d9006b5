"""Make docs/interactive_chart.png: the interactive chart of SmaCross on two years of SPX,
rendered by headless Chromium (``apt-get install chromium``; needs ``tradenn[plot]``).

    python docs/scripts/chart_screenshot.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from strategies.sma_cross import SmaCross
from tradenn import data
from tradenn.backtest import Backtest

DOCS = Path(__file__).resolve().parents[1]


def main() -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    frame = data.load("SPX", start="2007-06-01", end="2009-06-30")
    result = Backtest(frame, SmaCross, commission=0.001).run()
    with tempfile.TemporaryDirectory() as scratch:
        page = Path(scratch) / "chart.html"
        result.plot(page, interactive=True)
        target = DOCS / "interactive_chart.png"
        subprocess.run(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1400,700",
                "--virtual-time-budget=10000",
                f"--screenshot={target}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    print(f"wrote {target} ({len(result.trades)} trades, {len(frame)} bars)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
