"""The market data a job runs on (shared by every job): MarketData (prices, benchmark, VIX,
caveats), load_data for the configured source (embedded, a CSV folder, the yfinance cache),
planted_data for the positive control, and fed_frames, the stocks a backtest of a period trades."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from feeds import CAVEATS, ConfigError, PricePanel, load_embedded
from jobs import ROOT

__all__ = [
    "MarketData",
    "fed_frames",
    "load_data",
    "planted_data",
]


@dataclass
class MarketData:
    prices: PricePanel
    benchmark: pd.Series
    vix: pd.Series | None = None
    caveats: list = field(default_factory=list)

    @property
    def benchmark_name(self) -> str:
        return str(self.benchmark.name or "benchmark")


def load_data(config: dict) -> MarketData:
    """The prices named by config['data']: embedded (default), a CSV folder, or the yfinance cache."""
    data = config["data"]
    source = data.get("source", "embedded")
    if source == "embedded":
        prices, bench = load_embedded()
        return MarketData(prices, bench, None, [CAVEATS])
    if source == "csv":
        from feeds import load_csv_folder

        if not data.get("dir"):
            raise ConfigError("data.source = 'csv' needs data.dir (or --data DIR): the folder of one CSV per ticker")
        if not data.get("benchmark"):
            raise ConfigError(
                "a CSV folder needs --benchmark TICKER (data.benchmark): "
                "the file in that folder to use as the benchmark"
            )
        prices, bench = load_csv_folder(data["dir"], benchmark=data["benchmark"])
        return MarketData(
            prices,
            bench.rename(data["benchmark"]),
            None,
            [f"CSV folder {data['dir']}: whatever survivorship its ticker list has, the results have too."],
        )
    if source == "yfinance":
        from feeds import load_cache

        cache = data.get("dir") or str(ROOT / "cache" / "yfinance")
        prices, bench, vix = load_cache(cache, benchmark=data.get("benchmark") or "SPY")
        return MarketData(
            prices,
            bench,
            vix,
            [
                f"yfinance cache {cache}: today's index members are survivors; use a point-in-time membership "
                "file (--universe) for a fair backtest."
            ],
        )
    raise ConfigError(f"data.source = {source!r}; use 'embedded', 'csv' or 'yfinance'")


def planted_data(
    n_tickers: int = 150, n_days: int = 1500, planted_ic: float = 0.10, seed: int = 0, start: str = "2010-01-04"
) -> MarketData:
    """The positive control: a synthetic close-only universe with a planted 20-day reversal whose rank
    IC against the 10-day forward excess return is about `planted_ic` (feeds/synthetic.py). Run it
    with model.split = "auto" (resolve_split gives 60/20/20 % of its dates)."""
    from feeds.synthetic import PLANTED_FEATURE, SYNTHETIC_LABEL, make_synthetic_universe

    prices, bench = make_synthetic_universe(
        n_tickers=n_tickers, n_days=n_days, start=start, seed=seed, ohlcv=False, planted_ic=planted_ic
    )
    return MarketData(
        prices,
        bench,
        None,
        [
            SYNTHETIC_LABEL,
            f"planted signal: minus {PLANTED_FEATURE}, "
            f"rank IC about {planted_ic:g} against 10-day forward excess returns",
        ],
    )


def fed_frames(data: MarketData, start, end, min_bars: int = 2) -> dict:
    """{ticker: bars in [start, end]} of the stocks a backtest trades: those with `min_bars` or more bars."""
    frames = {}
    for ticker, frame in data.prices.items():
        frame = frame.loc[start:end]
        if len(frame) >= min_bars:
            frames[ticker] = frame
    return frames
