"""AlphaQuality: a Backtrader analyzer that collects every stock's score and close during a run and,
at stop, computes the alpha report (analyzers/ic.py) and writes it (analyzers/alpha_report.py).
The definitions of every statistic are in analyzers/ic.py."""

from __future__ import annotations

import backtrader as bt
import pandas as pd

from analyzers.alpha_report import write_alpha_report
from analyzers.ic import DAILY_KEYS, alpha_report
from core.errors import ConfigError, DataError
from core.io import json_safe


class AlphaQuality(bt.Analyzer):
    """Collect each bar's score and close of every stock in `strategy.alphas` and, at stop, the
    alpha report (IC, rank IC, quintiles, hit rate, calibration) per horizon.

    The strategy exposes `self.alphas = {ticker: indicator}` where each indicator has a `score`
    line. Params:
      - benchmark: a pandas Series of benchmark prices, or the name of a data in the Cerebro
      - horizons: forward-return horizons in trading days
      - out_dir: when set, alpha.json / alpha.html / alpha.png are written there at stop
      - alphas_attr: the strategy attribute holding the dict (default 'alphas')
    get_analysis() is the JSON part of the report.
    """

    params = (("benchmark", None), ("horizons", (1, 5, 10, 20)), ("out_dir", None), ("alphas_attr", "alphas"))

    def start(self):
        if self.p.benchmark is None:
            raise ConfigError(
                "AlphaQuality(benchmark=None): pass the benchmark as a pandas "
                "Series of prices or as the name of a data added to Cerebro."
            )
        self._bench_data = None
        if isinstance(self.p.benchmark, str):
            self._bench_data = self.strategy.getdatabyname(self.p.benchmark)
        self._scores, self._closes, self._bench = {}, {}, {}

    def next(self):
        alphas = getattr(self.strategy, self.p.alphas_attr, None)
        if not alphas:
            return
        today = self.strategy.datetime.date()
        scores, closes = {}, {}
        for ticker, ind in alphas.items():
            data = ind.data
            # A data that has not started, or has no bar today, has nothing to say today (and with
            # preload its [0] would be a stale or future value).
            if not len(data) or data.datetime.date(0) != today or not len(ind):
                continue
            scores[ticker] = float(ind.score[0])
            closes[ticker] = float(data.close[0])
        self._scores[today], self._closes[today] = scores, closes
        b = self._bench_data
        if b is not None and len(b) and b.datetime.date(0) == today:
            self._bench[today] = float(b.close[0])

    def stop(self):
        report = self.compute()
        self.report = report
        if self.p.out_dir:
            self.paths = write_alpha_report(report, self.p.out_dir)
        self.rets.update(json_safe({k: v for k, v in report.items() if k not in DAILY_KEYS}))

    def frames(self):
        """(scores, close, benchmark) collected so far, as wide date × ticker frames."""
        scores = pd.DataFrame.from_dict(self._scores, orient="index").sort_index()
        close = pd.DataFrame.from_dict(self._closes, orient="index").sort_index()
        scores.index = close.index = pd.DatetimeIndex(scores.index, name="date")
        if self._bench_data is not None:
            bench = pd.Series(self._bench, dtype=float)
            bench.index = pd.DatetimeIndex(bench.index)
        else:
            bench = self.p.benchmark.copy()
            bench.index = pd.DatetimeIndex(bench.index)
            if bench.index.tz is not None:
                bench.index = bench.index.tz_localize(None)
            bench = bench.reindex(close.index.union(bench.index)).ffill().reindex(close.index)
        return scores, close, bench.sort_index()

    def compute(self) -> dict:
        scores, close, bench = self.frames()
        if scores.empty:
            raise DataError(
                f"AlphaQuality saw no scores: the strategy has no "
                f"'{self.p.alphas_attr}' dict of ticker -> indicator with a 'score' "
                "line, or it was empty on every bar."
            )
        return alpha_report(scores, close, bench, horizons=self.p.horizons)
