"""QuantStatsTearsheet: a QuantStats HTML tearsheet of the strategy against a benchmark Series.

Offline by construction: quantstats 0.0.86 turns a benchmark *string* into a yfinance download
(and, without network, silently into an all-zero benchmark), so only a pandas Series is accepted,
and the download function is blocked while the report is built.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.io import atomic_path


def strategy_returns(dates, values, initial_value: float | None = None) -> pd.Series:
    """Daily returns of the broker value, naive (tz removed) DatetimeIndex normalised to days.

    The first return is against `initial_value` (the starting cash) when given, as Backtrader's
    TimeReturn does; otherwise the first day is dropped.
    """
    index = _naive_days(pd.DatetimeIndex(pd.to_datetime(list(dates))))
    values = pd.Series(np.asarray(values, dtype="float64"), index=index)
    previous = values.shift(1)
    if initial_value is None:
        return (values / previous - 1.0).iloc[1:].rename("Strategy")
    previous.iloc[:1] = float(initial_value)
    return (values / previous - 1.0).rename("Strategy")


def benchmark_returns(benchmark: pd.Series, dates: pd.DatetimeIndex, kind: str = "auto") -> pd.Series:
    """The benchmark's returns on exactly `dates` (the strategy's return dates).

    `benchmark` holds prices or returns (`kind` "prices", "returns" or "auto": returns when any
    value is <= 0, prices otherwise; a price index is never <= 0). Prices are taken as of each date
    (last value on or before it); the first date's return is against the last price before it, so
    benchmark and strategy returns cover the same days; 0 where the benchmark has no history yet.
    """
    bench = pd.Series(benchmark, dtype="float64").dropna()
    bench.index = _naive_days(pd.DatetimeIndex(bench.index))
    bench = bench[~bench.index.duplicated(keep="last")].sort_index()
    kind = _benchmark_kind(bench, kind)
    levels = (1.0 + bench).cumprod() if kind == "returns" else bench
    if kind == "returns":  # a level of 1 on the day before the first return
        first = levels.index[0] - pd.Timedelta(days=1)
        levels = pd.concat([pd.Series([1.0], index=[first]), levels])
    dates = _naive_days(pd.DatetimeIndex(dates))
    values = levels.to_numpy()
    at = levels.index.searchsorted(dates, side="right") - 1  # as of each date
    before = levels.index.searchsorted(dates[:1], side="left") - 1  # strictly before the first
    prev_positions = np.concatenate([before, at[:-1]])
    now = np.where(at >= 0, values[np.clip(at, 0, None)], np.nan)
    prev = np.where(prev_positions >= 0, values[np.clip(prev_positions, 0, None)], np.nan)
    name = benchmark.name if isinstance(benchmark, pd.Series) and benchmark.name else "Benchmark"
    return pd.Series(now / prev - 1.0, index=dates, name=str(name)).fillna(0.0)


class QuantStatsTearsheet(bt.Analyzer):
    """Writes a QuantStats HTML tearsheet at stop.

    Params:
      - benchmark: a pd.Series of benchmark prices or returns indexed by date, or None; a ticker
        string is refused (QuantStats would download it, or offline silently use zeros).
      - benchmark_kind: "auto" (default), "prices" or "returns" (see `benchmark_returns`).
      - path: output file ("tearsheet.html"); written atomically.
      - title: report title; strategy_title: the strategy column's name.
      - periods_per_year (252), risk_free (annual, 0.0).
      - match_dates: False (default) keeps the strategy's idle warm-up days so the report covers
        the same days as metrics.json; True lets QuantStats cut them (its own default).

    get_analysis() -> {"path": str or None, "returns": number of daily returns, "skipped": why no
    report was written, or None}. A run whose returns are all the same (no position ever held)
    gets no report: QuantStats' regressions against the benchmark are undefined on it.
    """

    params = (
        ("benchmark", None),
        ("benchmark_kind", "auto"),
        ("path", "tearsheet.html"),
        ("title", "Strategy Tearsheet"),
        ("strategy_title", "Strategy"),
        ("periods_per_year", 252),
        ("risk_free", 0.0),
        ("match_dates", False),
    )

    def __init__(self):
        _check_benchmark(self.p.benchmark)
        _benchmark_kind_param(self.p.benchmark_kind)

    def start(self):
        self._initial_value = float(self.strategy.broker.getvalue())
        self._dates: list = []
        self._values: list[float] = []
        self._result: dict = {}

    def next(self):
        self._dates.append(self.strategy.datetime.datetime(0))
        self._values.append(float(self.strategy.broker.getvalue()))

    def stop(self):
        returns = self.returns()
        skipped = skip_reason(returns)
        if skipped is not None:
            self._result = {"path": None, "returns": int(len(returns)), "skipped": skipped}
            return
        bench = None
        if self.p.benchmark is not None:
            bench = benchmark_returns(self.p.benchmark, returns.index, self.p.benchmark_kind)
        path = write_tearsheet(
            returns,
            bench,
            self.p.path,
            title=self.p.title,
            strategy_title=self.p.strategy_title,
            periods_per_year=self.p.periods_per_year,
            risk_free=self.p.risk_free,
            match_dates=self.p.match_dates,
        )
        self._result = {"path": str(path), "returns": int(len(returns)), "skipped": None}

    def returns(self) -> pd.Series:
        """The strategy's daily returns as handed to QuantStats."""
        return strategy_returns(self._dates, self._values, self._initial_value)

    def get_analysis(self) -> dict:
        return dict(self._result)


def skip_reason(returns: pd.Series) -> str | None:
    """Why QuantStats cannot report on `returns`, or None when it can.

    Fewer than two returns, or returns that are all equal (a run that never held a position has
    only zeros): QuantStats regresses them on the benchmark, which needs varying values.
    """
    values = pd.Series(returns, dtype="float64").dropna()
    if len(values) < 2:
        return f"tearsheet.html not written: {len(values)} daily return(s), QuantStats needs at least 2"
    if values.nunique() < 2:
        return (
            f"tearsheet.html not written: all {len(values)} daily returns are {values.iloc[0]:g} "
            f"(no position was held), so QuantStats' regressions on the benchmark are undefined"
        )
    return None


def write_tearsheet(
    returns: pd.Series,
    benchmark: pd.Series | None,
    path,
    title="Strategy Tearsheet",
    strategy_title="Strategy",
    periods_per_year=252,
    risk_free=0.0,
    match_dates=False,
) -> Path | None:
    """Render QuantStats' HTML report of `returns` (and `benchmark` returns) to `path`, atomically;
    None (nothing written) when QuantStats cannot report on them (`skip_reason`)."""
    import quantstats as qs

    _check_benchmark(benchmark)
    if skip_reason(returns) is not None:
        return None  # the caller notes skip_reason(returns) where it reports the run
    kwargs = {"strategy_title": strategy_title}
    if benchmark is not None:
        kwargs["benchmark_title"] = str(benchmark.name or "Benchmark")
    with _headless_matplotlib(), no_downloads(qs), warnings.catch_warnings(), atomic_path(path, suffix=".html") as tmp:
        # cosmetic warnings from inside quantstats' and seaborn's plotting, not about our data
        warnings.filterwarnings("ignore", category=UserWarning, module=r"quantstats\.")
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module=r"seaborn\.")
        qs.reports.html(
            returns,
            benchmark=benchmark,
            rf=risk_free,
            title=title,
            output=str(tmp),
            periods_per_year=periods_per_year,
            match_dates=match_dates,
            **kwargs,
        )
    return Path(path)


def _check_benchmark(benchmark) -> None:
    if benchmark is None or isinstance(benchmark, pd.Series):
        return
    if isinstance(benchmark, str):
        raise ConfigError(
            f"QuantStatsTearsheet: param benchmark={benchmark!r} is a ticker string; quantstats would "
            f"download it (offline it silently becomes an all-zero benchmark). Pass a pandas Series of "
            f"prices or returns instead, e.g. benchmark=feeds.load_embedded()[1]."
        )
    raise ConfigError(
        f"QuantStatsTearsheet: param benchmark must be a pandas Series of prices or returns indexed by "
        f"date, or None; got {type(benchmark).__name__}."
    )


def _benchmark_kind_param(kind: str) -> str:
    if kind not in ("auto", "prices", "returns"):
        raise ConfigError(f"QuantStatsTearsheet: param benchmark_kind={kind!r}; use 'auto', 'prices' or 'returns'.")
    return kind


def _benchmark_kind(bench: pd.Series, kind: str) -> str:
    kind = _benchmark_kind_param(kind)
    if kind != "auto":
        return kind
    return "returns" if (bench <= 0).any() else "prices"


def _naive_days(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    # Backtrader's datetimes may be tz-aware; QuantStats compares against naive dates. Drop the
    # zone keeping the local date (a UTC conversion could move a daily bar to the next day).
    if index.tz is not None:
        index = index.tz_localize(None)
    return index.normalize()


@contextlib.contextmanager
def no_downloads(qs):
    """Make any attempt of quantstats to fetch data fail loudly instead of reaching the network."""

    def refuse(ticker, *args, **kwargs):
        raise ConfigError(f"QuantStatsTearsheet: quantstats tried to download {ticker!r}; pass a Series instead.")

    original = qs.utils.download_returns
    qs.utils.download_returns = refuse
    try:
        yield
    finally:
        qs.utils.download_returns = original


@contextlib.contextmanager
def _headless_matplotlib():
    # backtrader.plot forces TkAgg; without a display QuantStats' figures would then fail.
    import matplotlib

    backend = matplotlib.get_backend()
    if backend.lower().startswith("tk") and not os.environ.get("DISPLAY"):
        import matplotlib.pyplot as plt

        plt.switch_backend("Agg")
    # QuantStats asks for Arial; where it is missing matplotlib logs one warning per figure.
    font_log = logging.getLogger("matplotlib.font_manager")
    level = font_log.level
    font_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        font_log.setLevel(level)
