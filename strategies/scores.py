"""ScoreAlpha: precomputed scores (a wide date x ticker frame) as a Backtrader indicator.

This is the simplest alpha that fits the strategy's seam: any research pipeline that can write a
score per stock and day (in [-1, 1], NaN = no opinion) can be backtested with AlphaRankStrategy
without touching models/. The score on bar t is the frame's value on bar t's own date; a date the
frame does not have gives NaN (no score, so the strategy does not act on the stock that day), not
a stale older value, unless ``asof=True`` is asked for.
"""

from __future__ import annotations

import array
import math
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd

from core.dates import day_numbers  # noqa: F401 (re-exported: strategies.scores.day_numbers)
from core.errors import ConfigError, DataError
from core.lean import LeanLinesMixin


class PreparedScores:
    """A score frame converted once to (sorted day numbers, float columns) for fast look-ups (ScoreAlpha
    and the vector engine)."""

    def __init__(self, scores: pd.DataFrame):
        if not isinstance(scores, pd.DataFrame):
            raise ConfigError(
                f"ScoreAlpha param 'scores' must be a pandas DataFrame (index dates, one column per "
                f"ticker), got {type(scores).__name__}; load a file with load_scores_csv(path)"
            )
        try:
            days = day_numbers(scores.index)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"ScoreAlpha scores: the index must be dates ({exc}); "
                f"set a DatetimeIndex, e.g. frame.set_index(pd.to_datetime(frame['Date']))"
            ) from exc
        if len(days) > 1 and not np.all(np.diff(days) > 0):
            raise DataError(
                "ScoreAlpha scores: dates must be sorted and unique (one row per day); "
                "sort the frame and drop duplicate dates"
            )
        self.frame = scores
        self.days = days
        self._columns: dict[str, np.ndarray] = {}

    def column(self, ticker: str) -> np.ndarray:
        if ticker not in self._columns:
            if ticker not in self.frame.columns:
                shown = ", ".join(map(str, list(self.frame.columns)[:10]))
                raise DataError(
                    f"ScoreAlpha: no score column for ticker {ticker!r} (columns: {shown}"
                    f"{', ...' if len(self.frame.columns) > 10 else ''}); add the column or pass "
                    f"ticker=<column name>"
                )
            values = pd.to_numeric(self.frame[ticker], errors="coerce").to_numpy(dtype="float64")
            self._columns[ticker] = values
        return self._columns[ticker]

    def lookup(self, ticker: str, days: np.ndarray, asof: bool) -> np.ndarray:
        """Score of `ticker` on each day number in `days` (NaN where there is none)."""
        values = self.column(ticker)
        out = np.full(len(days), np.nan)
        if len(self.days) == 0:
            return out
        pos = np.searchsorted(self.days, days, side="right") - 1  # last row on or before the day
        found = pos >= 0
        if not asof:
            found &= self.days[np.clip(pos, 0, None)] == days
        out[found] = values[pos[found]]
        return out


class ScoreAlpha(LeanLinesMixin, bt.Indicator):
    """Reads a stock's score from a precomputed frame: line ``score`` in [-1, 1], NaN = no score.

    Params:
      - ``scores``: wide DataFrame, index dates, one column per ticker (see ``load_scores_csv``)
      - ``ticker``: the column to read (default: the data's name, as given to ``cerebro.adddata``)
      - ``asof``: False (default) = only a score dated exactly on the bar's day counts; True = the
        last score on or before the bar's day (for scores that are not published every day)

    Works in runonce mode (``once`` looks the whole series up at once) and in ``next`` mode.
    """

    lines = ("score",)
    params = (("scores", None), ("ticker", None), ("asof", False), ("prepared", None))
    plotinfo = dict(subplot=True, plotymargin=0.05, plotyhlines=[0.0])

    def _plotlabel(self):
        return []  # the scores frame would print its repr into the plot label

    def __init__(self):
        prepared = self.p.prepared
        if prepared is None:
            if self.p.scores is None:
                raise ConfigError(
                    "ScoreAlpha needs param 'scores': a DataFrame of dates x tickers "
                    "(use ScoreAlpha.factory(scores) with AlphaRankStrategy)"
                )
            prepared = PreparedScores(self.p.scores)
        ticker = self.p.ticker if self.p.ticker is not None else getattr(self.data, "_name", "")
        if not ticker:
            raise ConfigError(
                "ScoreAlpha: the data has no name; add it with cerebro.adddata(feed, "
                "name='TICKER') or pass ticker='TICKER'"
            )
        self.ticker = str(ticker)
        self._prepared = prepared
        prepared.column(self.ticker)  # fail now, with the ticker's name, if the column is missing

    def _scores_on(self, dtnums) -> np.ndarray:
        days = np.floor(np.asarray(dtnums, dtype="float64")).astype(np.int64)
        return self._prepared.lookup(self.ticker, days, self.p.asof)

    def next(self):
        self.lines.score[0] = float(self._scores_on([self.data.datetime[0]])[0])

    def once(self, start, end):
        if end <= start:
            return
        values = self._scores_on(self.data.datetime.array[start:end])
        self.lines.score.array[start:end] = array.array("d", values)

    @classmethod
    def factory(cls, scores: pd.DataFrame, asof: bool = False) -> "ScoreFactory":
        """A callable ``make(data) -> ScoreAlpha`` for ``AlphaRankStrategy(alpha=...)``.

        The frame's dates are converted once here and shared by every ticker's indicator. It
        pickles (Backtrader's optstrategy on several cores)."""
        return ScoreFactory(cls, scores, asof)


class ScoreFactory:
    """What ScoreAlpha.factory returns: ``make(data)`` -> a ScoreAlpha on the data.

    A class with explicit state rather than a closure, so that Backtrader's optstrategy can send it
    to its worker processes: the frame and `asof` travel, the look-up tables built from the frame
    do not (each process builds its own on first use)."""

    def __init__(self, indicator_cls, scores: pd.DataFrame, asof: bool = False):
        self.indicator_cls = indicator_cls
        self.scores = scores
        self.asof = asof
        self._prepared: PreparedScores | None = PreparedScores(scores)  # checks the frame now

    def __call__(self, data):
        if self._prepared is None:
            self._prepared = PreparedScores(self.scores)
        return self.indicator_cls(data, scores=self.scores, asof=self.asof, prepared=self._prepared)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_prepared"] = None
        return state

    def __repr__(self):
        name = f"{self.indicator_cls.__name__}.factory"
        return f"{name}({self.scores.shape[0]} days x {self.scores.shape[1]} tickers, asof={self.asof})"


def load_scores_csv(path) -> pd.DataFrame:
    """Read a scores file: a ``Date`` column plus one column per ticker, values in [-1, 1].

    Empty cells are NaN (no score that day). Returns a float DataFrame indexed by a DatetimeIndex
    named ``date``. Raises DataError naming the file, the column and the first bad row for
    unparseable dates, unsorted or duplicate dates, non-numeric values and values outside [-1, 1].
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise DataError(f"scores file {path}: not found; check the path") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"scores file {path}: not a readable CSV ({exc})") from exc
    if "Date" not in raw.columns:
        raise DataError(
            f"scores file {path}: no 'Date' column (columns: {', '.join(raw.columns)}); "
            f"the first column must be named Date"
        )
    tickers = [c for c in raw.columns if c != "Date"]
    if not tickers:
        raise DataError(f"scores file {path}: no ticker columns beside 'Date'; add one column per ticker")

    text_dates = raw["Date"].str.strip()
    dates = pd.to_datetime(text_dates, errors="coerce", format="ISO8601")  # no guessing of 01/02
    bad = dates.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"scores file {path}, column 'Date', data row {row + 1}: cannot parse "
            f"{text_dates.iloc[row]!r} as a date; write dates as YYYY-MM-DD"
        )
    index = pd.DatetimeIndex(dates, name="date")
    if index.tz is not None:
        index = index.tz_localize(None)
    steps = np.diff(index.values.astype("datetime64[ns]").astype(np.int64))
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        what = "duplicate" if steps[row - 1] == 0 else "unsorted"
        raise DataError(
            f"scores file {path}, column 'Date', data row {row + 1}: {what} date "
            f"{text_dates.iloc[row]!r} after {text_dates.iloc[row - 1]!r}; dates must be "
            f"sorted ascending and unique"
        )

    columns = {}
    for ticker in tickers:
        text = raw[ticker].str.strip()
        values = pd.to_numeric(
            text.replace({"": None, "nan": None, "NaN": None, "NA": None}), errors="coerce"
        ).to_numpy(dtype="float64")
        non_numeric = np.isnan(values) & ~text.isin(["", "nan", "NaN", "NA"]).to_numpy()
        if non_numeric.any():
            row = int(np.flatnonzero(non_numeric)[0])
            raise DataError(
                f"scores file {path}, column {ticker!r}, data row {row + 1}: "
                f"{text.iloc[row]!r} is not a number; leave the cell empty for no score"
            )
        outside = ~np.isnan(values) & ((values < -1.0) | (values > 1.0) | ~np.isfinite(values))
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise DataError(
                f"scores file {path}, column {ticker!r}, data row {row + 1}: score "
                f"{values[row]} is outside [-1, 1]; scores must lie in [-1, 1]"
            )
        columns[ticker] = values
    return pd.DataFrame(columns, index=index)


def scores_csv(scores: pd.DataFrame) -> str:
    """A score frame as load_scores_csv reads it: a ``Date`` column (YYYY-MM-DD), one column per
    ticker, every float written in full (its repr), an empty cell for NaN. Read back, the frame is
    bit for bit the same, so ``--scores`` trades exactly what the frame's run traded."""
    if not isinstance(scores, pd.DataFrame):
        raise ConfigError(f"scores_csv: give a DataFrame of dates x tickers, got {type(scores).__name__}")
    frame = scores.copy()
    frame.index = pd.DatetimeIndex(frame.index).strftime("%Y-%m-%d")
    frame.columns = [str(c) for c in frame.columns]
    return frame.rename_axis("Date").to_csv()


def is_finite(value) -> bool:
    """True for a real, finite number (False for NaN, inf, None)."""
    try:
        return math.isfinite(value)
    except TypeError:
        return False
