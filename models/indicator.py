"""AlphaIndicator: any alpha model of the zoo (models.base interface) as an ordinary Backtrader
indicator; LSTMAlpha is the same indicator labelled for the default LSTM.

    alpha = LSTMAlpha.factory(model, benchmark=spx)        # one shared batch scorer
    alpha = AlphaIndicator.factory(lightgbm_model, benchmark=spx)   # any other zoo model
    cerebro.addstrategy(AlphaRankStrategy, alpha=alpha)     # the strategy calls alpha(data)

Line `score` in [-1, 1] (2p - 1; the seed preset's regression model gives its raw output). The
score on bar t uses the stock's bars up to t and the benchmark as of t's date, nothing later.

Two paths, same numbers (tested):
- runonce (Cerebro's default): `once()` scores the whole series in batched tensor calls. Indicators
  made by one factory share a scorer that scores every registered stock in a single
  `model.predict(panel)` call, then hands each its column: the vectorized path.
- `next()` (runonce=False, live feeds): scores only the newest window, from the last bars that
  the data has delivered so far (never from preloaded future bars).
"""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd

from core.dates import bt_dates  # noqa: F401 (re-exported: models.indicator.bt_dates)
from core.errors import ConfigError
from core.lean import LeanLinesMixin
from feeds.panel import FIELDS, PricePanel

# ewm-based features (EMA, RSI, MACD) have infinite memory; with this many extra bars the
# truncated history of the next() path differs from the full one by < 1e-9.
EWM_MARGIN_BARS = 600


def _line_values(data, name: str, size: int | None) -> np.ndarray:
    line = getattr(data.lines, name)
    if size is None:  # runonce: the whole preloaded series
        return np.asarray(line.array, dtype=np.float64)
    return np.asarray(line.get(size=size), dtype=np.float64)


def data_frame(data, size: int | None = None) -> pd.DataFrame:
    """OHLCV of a Backtrader data as a DataFrame on its own dates: the whole preloaded series
    (size=None) or only the last `size` bars delivered so far."""
    dates = bt_dates(_line_values(data, "datetime", size))
    frame = pd.DataFrame({f: _line_values(data, f, size) for f in FIELDS}, index=dates)
    return frame[~frame.index.duplicated(keep="last")]


def benchmark_series(bench, size: int | None = None) -> pd.Series:
    return data_frame(bench, size)["close"]


def with_history(frame: pd.DataFrame, history: pd.DataFrame | None) -> pd.DataFrame:
    """Bars from `history` dated before the frame's first bar, then the frame: warm-up data for
    a Cerebro that starts at the backtest's first day."""
    if history is None or history.empty or frame.empty:
        return frame
    return pd.concat([history.loc[history.index < frame.index[0]], frame])


class BatchScorer:
    """Scores every stock registered with it in one model.predict call, once.

    `history` (a PricePanel) and `history_benchmark` (a Series) hold the bars before the feeds
    start, so a Cerebro fed only the backtest period still gets warmed-up scores on its first day.
    """

    def __init__(self, model, benchmark=None, history=None, history_benchmark=None):
        self.model = model
        self.benchmark = benchmark
        self.history = history
        self.history_benchmark = history_benchmark
        self.members: list = []
        self._scores: pd.DataFrame | None = None

    def stock_history(self, ticker: str) -> pd.DataFrame | None:
        if self.history is None or ticker not in self.history:
            return None
        return self.history.frame(ticker)

    def bench_history(self) -> pd.Series | None:
        return None if self.history_benchmark is None else self.history_benchmark.rename("close").to_frame()

    def register(self, indicator) -> "BatchScorer":
        """Add the indicator to the next batch; returns the scorer that will score it (this one)."""
        self.members.append(indicator)
        self._scores = None
        return self

    def scores(self) -> pd.DataFrame:
        if self._scores is None:
            frames = {
                ind.ticker: with_history(data_frame(ind.data), self.stock_history(ind.ticker)) for ind in self.members
            }
            fields = {f: pd.DataFrame({t: fr[f] for t, fr in frames.items()}).sort_index() for f in FIELDS}
            panel = PricePanel(fields, available=set(FIELDS), name="cerebro")
            bench = None
            if self.benchmark is not None:
                bench = with_history(benchmark_series(self.benchmark).to_frame(), self.bench_history())["close"]
            # score only the feeds' own days; the history before them is warm-up
            first_fed = min(
                bt_dates(ind.data.lines.datetime.array[:1])[0]
                for ind in self.members
                if len(ind.data.lines.datetime.array)
            )
            self._scores = self.model.predict(panel, bench, start=first_fed)
        return self._scores


class AlphaFactory:
    """What AlphaIndicator.factory returns: ``make(data)`` -> an indicator of `indicator_cls` on the
    data (and the benchmark), all of one strategy's indicators sharing one BatchScorer.

    A class with explicit state rather than a closure, so that it pickles: Backtrader's optstrategy
    sends it to its worker processes. The scorer is not part of that state: each strategy (each
    optstrategy run, in whichever process) gets a fresh one, so no scorer's members or scores leak
    from one run or process into another. The model travels as its state, weights and metadata
    (models.base.BaseAlphaModel.__getstate__), never as a pickled Python object."""

    def __init__(self, indicator_cls, model, benchmark=None, history=None, history_benchmark=None):
        self.indicator_cls = indicator_cls
        self.model = model
        self.benchmark = benchmark
        self.history = history
        self.history_benchmark = history_benchmark
        self._benchmark_id = None  # the benchmark's Cerebro data id, once pickled
        self._new_run()

    def _new_run(self) -> None:
        self._batch: BatchScorer | None = None
        self._batch_owner = None

    @property
    def scorer(self) -> BatchScorer | None:
        """The batch scorer of the last strategy that made indicators with this factory."""
        return self._batch

    def __call__(self, data):
        if self.benchmark is None and self._benchmark_id is not None:
            self.benchmark = _cerebro_data(data, self._benchmark_id)
        datas = (data,) if self.benchmark is None else (data, self.benchmark)
        return self.indicator_cls(*datas, model=self.model, scorer=self)

    def register(self, indicator) -> BatchScorer:
        """The batch scorer of the indicator's owner (the strategy making it); a new owner, as in
        each run of an optimization, starts a new batch."""
        owner = getattr(indicator, "_owner", None)  # set by Backtrader before __init__
        if self._batch is None or self._batch_owner is not owner:
            self._batch = BatchScorer(self.model, self.benchmark, self.history, self.history_benchmark)
            self._batch_owner = owner
        return self._batch.register(indicator)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_batch", None)
        state.pop("_batch_owner", None)
        data_id = getattr(self.benchmark, "_id", None)
        if self.benchmark is not None and data_id is not None:
            # The benchmark travels in its Cerebro; here only its id. A data refers to its Cerebro,
            # and that to its strategies: an OptReturn sent back to the parent would carry the
            # whole run, and Backtrader's observers, whose classes exist only in the worker.
            state["benchmark"], state["_benchmark_id"] = None, (data_id, getattr(self.benchmark, "_name", ""))
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._new_run()

    def __repr__(self):
        return f"{self.indicator_cls.__name__}.factory({self.model!r})"


def _cerebro_data(data, reference: tuple):
    """The data of `data`'s Cerebro with the Backtrader data id `reference[0]` (the benchmark)."""
    data_id, name = reference
    cerebro = getattr(data, "_env", None)
    for candidate in getattr(cerebro, "datas", ()):
        if getattr(candidate, "_id", None) == data_id:
            return candidate
    raise ConfigError(
        f"AlphaFactory: the benchmark {name!r} (data id {data_id}) is not a data of the Cerebro that "
        f"holds {getattr(data, '_name', data)!r}; add the benchmark and the stocks to the same Cerebro"
    )


class AlphaIndicator(LeanLinesMixin, bt.Indicator):
    """Any fitted zoo model (models.base.AlphaModelLike) as line `score`. Pass the stock first
    and the benchmark second: an indicator's clock is its first data."""

    lines = ("score",)
    params = (("model", None), ("scorer", None), ("ticker", None))
    plotinfo = dict(subplot=True, plotname="alpha", plotymargin=0.1, plothlines=[0.0])
    plotlines = dict(score=dict(color="tab:blue"))

    def __init__(self):
        name = type(self).__name__
        if self.p.model is None:
            raise ConfigError(f"{name} needs model=<a fitted model>; load one with models.load_any(path)")
        self.ticker = self.p.ticker or getattr(self.data, "_name", None) or f"data{id(self.data)}"
        self.bench = self.datas[1] if len(self.datas) > 1 else None
        needs_bench = any("benchmark" in _needs(n) for n in self.p.model.features_)
        if needs_bench and self.bench is None:
            raise ConfigError(
                f"{name}({self.ticker}): the model's features use the benchmark; "
                f"pass it as the second data: {name}(stock, benchmark, model=model)"
            )
        self.scorer = (self.p.scorer or BatchScorer(self.p.model, self.bench)).register(self)
        self._history = self.p.model.warmup + EWM_MARGIN_BARS
        self._last_len = 0

    def _plotlabel(self):
        return []  # the params (a model, a scorer) would print their repr into the plot label

    @classmethod
    def factory(cls, model, benchmark=None, history=None, history_benchmark=None) -> "AlphaFactory":
        """A callable data -> indicator of this class; the indicators one strategy makes with it
        share one batch scorer. It pickles (Backtrader's optstrategy on several cores).

        history / history_benchmark: prices before the feeds start (warm-up), see BatchScorer."""
        return AlphaFactory(cls, model, benchmark, history, history_benchmark)

    # ---------------------------------------------------------------- vectorized path
    def once(self, start, end):
        # once() runs twice in runonce mode (oncestart for the first bar, then the rest): the
        # scorer caches its result, so the model runs once for all stocks.
        column = self.scorer.scores()[self.ticker]
        own_dates = bt_dates(self.data.lines.datetime.array)
        values = column.reindex(own_dates).to_numpy()
        out = self.lines.score.array
        for i in range(start, end):
            out[i] = values[i]

    # ---------------------------------------------------------------- event-driven path
    def next(self):
        n = len(self.data)
        if n == self._last_len:  # only the benchmark ticked: the stock has no new bar
            self.lines.score[0] = self.lines.score[-1] if len(self) > 1 else float("nan")
            return
        self._last_len = n
        size = min(n, self._history)
        frame = with_history(data_frame(self.data, size), self.scorer.stock_history(self.ticker)).iloc[-self._history :]
        bench = None
        if self.bench is not None:
            # as of the stock's date: the benchmark may already hold the next day's bar
            recent = benchmark_series(self.bench, size=min(len(self.bench), size + 50)).to_frame()
            bench = with_history(recent, self.scorer.bench_history())["close"].loc[: frame.index[-1]]
        panel = PricePanel(
            {f: frame[[f]].set_axis([self.ticker], axis=1) for f in FIELDS}, available=set(FIELDS), name=self.ticker
        )
        self.lines.score[0] = float(self.p.model.predict(panel, bench, last_only=True).iloc[-1, 0])


class LSTMAlpha(AlphaIndicator):
    """The default LSTM's indicator: AlphaIndicator with its own name and plot label."""

    plotinfo = dict(plotname="LSTM alpha")


def _needs(feature_name: str) -> frozenset:
    from models.features import FEATURES

    return FEATURES[feature_name].needs
