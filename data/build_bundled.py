"""Rebuild the bundled CSVs in this folder from the raw package files in ``../shared/data``.

Each raw file is converted to the canonical schema: a ``Date`` index in ISO 8601, float columns
``Open, High, Low, Close, Volume`` (plus ``Adj Close`` where the source has it). Prices are copied
unchanged; only the date format, the column order and the dropped ``OpenInt`` column (all zero in
the source) differ. Run from the repository root: ``python data/build_bundled.py [RAW_DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent

# bundled name -> (raw file, date column, date format)
SOURCES = {
    "SPX": ("arch-sp500.csv", "Date", "%m/%d/%Y"),
    "NASDAQ": ("arch-nasdaq.csv", "Date", "%m/%d/%Y"),
    "MSFT": ("pmdarima-msft.csv", "Date", "%Y-%m-%d"),
    "GOOGL": ("gym-anytrading-STOCKS_GOOGL.csv", "Date", "%Y-%m-%d"),
    "EURUSD_1H": ("gym-anytrading-FOREX_EURUSD_1H_ASK.csv", "Time", "%d.%m.%Y %H:%M:%S.%f"),
}
COLUMNS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]


def convert(raw: Path, date_column: str, date_format: str) -> pd.DataFrame:
    frame = pd.read_csv(raw)
    index = pd.DatetimeIndex(
        pd.to_datetime(frame.pop(date_column), format=date_format), name="Date"
    )
    frame.index = index
    return frame[[c for c in COLUMNS if c in frame.columns]].astype("float64")


def main(raw_dir: str = str(HERE.parent.parent / "shared" / "data")) -> None:
    for name, (file, date_column, date_format) in SOURCES.items():
        frame = convert(Path(raw_dir) / file, date_column, date_format)
        daily = (frame.index == frame.index.normalize()).all()
        frame.to_csv(HERE / f"{name}.csv", date_format="%Y-%m-%d" if daily else "%Y-%m-%d %H:%M:%S")
        print(f"{name}: {len(frame)} rows, {frame.index[0]} .. {frame.index[-1]}")


if __name__ == "__main__":
    main(*sys.argv[1:])
