"""The interactive chart in a real browser: headless Chromium draws it offline, without errors.

Chromium runs with every network request sent to a proxy that does not exist, so a page that
needed a CDN would fail here. Its console is read from its log: Bokeh's two start-up notes
(the log level, and "document idle" once every panel is drawn) are the only messages allowed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from strategies.sma_cross import SmaCross
from tradenn.backtest import Backtest
from tradenn.backtest.interactive import MAX_POINTS, interactive_chart
from tradenn.data import load

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "chromium is not installed (apt-get install chromium); .ci/run installs it",
        allow_module_level=True,
    )

BOKEH_NOTES = re.compile(r"^\[bokeh [\d.]+\] (setting log level to|document idle at)")
CONSOLE = re.compile(r':CONSOLE[^\]]*\] "(?P<message>.*)", source: ')
GREEN, RED, BLUE = (0x1A, 0x96, 0x41), (0xD7, 0x19, 0x1C), (0x2C, 0x7B, 0xB6)

# Zoom the shared time axis to six months of 2008-09 once the page is drawn, then report.
ZOOM = """<script>
(function zoom() {
    const doc = window.Bokeh && Bokeh.documents[0];
    const price = doc && doc.get_model_by_name("price");
    if (!price) { setTimeout(zoom, 50); return; }
    price.x_range.setv({start: Date.UTC(2008, 8, 1), end: Date.UTC(2009, 2, 1)});
    setTimeout(() => console.log("ZOOMED " + JSON.stringify({
        candles: doc.get_model_by_name("candles").visible,
        close: doc.get_model_by_name("close").visible,
        low: price.y_range.start,
        high: price.y_range.end,
    })), 500);
})();
</script></body>"""


def chromium(page: Path, *actions: str) -> list[str]:
    """Open ``page`` in headless Chromium with no network; the console messages it logged."""
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1400,1000",
            "--virtual-time-budget=10000",
            "--proxy-server=http://127.0.0.1:9",  # nothing listens: any download fails
            f"--user-data-dir={page.parent / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *actions,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [m["message"] for m in map(CONSOLE.search, run.stderr.splitlines()) if m]


def problems(messages: list[str]) -> list[str]:
    """Console messages other than Bokeh's start-up notes: errors, warnings, anything else."""
    return [m for m in messages if not BOKEH_NOTES.match(m) and not m.startswith("ZOOMED ")]


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory):
    """A 1,000-bar SMA cross (all candlesticks at first) drawn by Chromium: its console
    messages and the screenshot's pixels (rows x columns x RGBA in [0, 1])."""
    folder = tmp_path_factory.mktemp("browser")
    result = Backtest(load("SPX").iloc[-1_000:], SmaCross, commission=0.001).run()
    page, png = folder / "chart.html", folder / "chart.png"
    interactive_chart(result, page)
    messages = chromium(page, f"--screenshot={png}")
    return messages, imread(png)


def test_the_page_draws_every_panel_offline_without_console_errors(screenshot):
    messages, _ = screenshot
    assert problems(messages) == []
    assert any(m.startswith("[bokeh") and "document idle" in m for m in messages), messages


def test_the_screenshot_shows_the_chart_with_candles_and_equity(screenshot):
    _, pixels = screenshot
    rgb = np.round(pixels[..., :3] * 255)
    assert rgb.shape[:2] == (1000, 1400)
    assert np.mean(rgb.min(axis=2) < 235) > 0.05  # a blank page has none

    def count(colour) -> int:
        return int(np.sum(np.abs(rgb - colour).max(axis=2) <= 12))

    assert count(GREEN) > 500 and count(RED) > 500  # rising and falling candles
    assert count(BLUE) > 200  # the equity line


def test_zooming_in_shows_candlesticks_and_refits_the_price_axis(tmp_path):
    result = Backtest("SPX", SmaCross).run()
    assert len(result.data) > MAX_POINTS  # the close line at first
    page = tmp_path / "zoom.html"
    page.write_text(interactive_chart(result).replace("</body>", ZOOM), encoding="utf-8")

    messages = chromium(page, "--dump-dom")
    assert problems(messages) == []
    (report,) = [m.removeprefix("ZOOMED ") for m in messages if m.startswith("ZOOMED ")]
    zoomed = json.loads(report)
    assert zoomed["candles"] and not zoomed["close"]
    window = result.data.loc["2008-09-01":"2009-03-01"]
    low, high = window["Low"].min(), window["High"].max()
    assert zoomed["low"] <= low and zoomed["high"] >= high
    assert zoomed["high"] - zoomed["low"] < 1.5 * (high - low)  # not the whole run's range
