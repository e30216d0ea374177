"""The embedded real dataset: daily adjusted closes of 20 large S&P 500 stocks and the S&P 500
price index, 1990-01-02 to 2022-12-28, copied from the skfolio 1.12.2 wheel (BSD-3-Clause, see
feeds/data/LICENSE-skfolio).

Caveats that every result on it must carry: close only (open = high = low = close, no volume),
20 survivor-picked names (chosen with hindsight, so any backtest on them is flattered), and the
index is price only (no dividends), so the benchmark is understated by ~2 %/year.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from feeds.panel import PricePanel

DATA_DIR = Path(__file__).resolve().parent / "data"
STOCKS_FILE = DATA_DIR / "sp500_dataset.csv.gz"
INDEX_FILE = DATA_DIR / "sp500_index.csv.gz"
BENCHMARK_NAME = "SP500"

CAVEATS = (
    "Embedded data: 20 large S&P 500 names picked with hindsight (survivors), close prices only "
    "(open = high = low = close, no volume), and a price-only S&P 500 index (no dividends)."
)


def load_embedded(start=None, end=None) -> tuple[PricePanel, pd.Series]:
    """Return (prices, benchmark): a close-only PricePanel and the S&P 500 index as a Series."""
    close = pd.read_csv(STOCKS_FILE, index_col="Date", parse_dates=True)
    index = pd.read_csv(INDEX_FILE, index_col="Date", parse_dates=True)[BENCHMARK_NAME]
    close.index.name = index.index.name = "date"
    prices = PricePanel({"close": close}, available={"close"}, name="embedded-sp500-20")
    bench = index.astype("float64").rename(BENCHMARK_NAME)
    if start is not None or end is not None:
        prices = prices.between(start, end)
        bench = bench.loc[pd.Timestamp(start) if start else None : pd.Timestamp(end) if end else None]
    return prices, bench
