"""ArrayData: a Backtrader feed backed by numpy arrays.

``bt.feeds.PandasData`` loads one bar at a time with a per-cell ``iloc`` (about 60 % of a run on
hundreds of tickers). ArrayData converts the frame to float64 arrays once, in ``__init__``, and
hands whole arrays to the line buffers in ``preload()``. The bars are the same as PandasData's on
the same frame, datetime floats included; with ``preload=False`` (or with filters, ``tzinput`` or a
``lookahead`` extension) it falls back to Backtrader's own per-bar ``load()`` path, fed from the
arrays.

``lean=True`` (or ``FastArrayData``) also turns off per-bar bookkeeping that a preloaded daily
feed does not need: the ``tick_*`` attributes (the broker then reads ``open/high/low/close[0]``,
the same values), and ``advance``/``advance_peek`` go straight to the buffers. These overrides
lean on Backtrader 1.9.78.123 internals (``LineBuffer._idx``, ``lencount``, ``array``,
``extension``); they switch themselves off for resampled/replayed/filtered feeds and for
memory-saving (``exactbars``) runs, and tests/test_arraydata.py checks them against the stock feed.
"""

from __future__ import annotations

import array

import backtrader as bt
import numpy as np
import pandas as pd
from backtrader.linebuffer import LineBuffer
from backtrader.utils import date2num

from core.dates import day_numbers
from core.errors import DataError
from core.lean import follow, follows, plain

_PRICE_LINES = ("open", "high", "low", "close")
_FIELDS = _PRICE_LINES + ("volume", "openinterest")
_INF = float("inf")


def feed_frame(dataname, name: str = "") -> pd.DataFrame:
    """The exact bars ArrayData serves, as a DataFrame with columns
    open, high, low, close, volume, openinterest (float64) on the input's DatetimeIndex.

    A DataFrame needs a ``close`` column (case-insensitive); missing open/high/low become close,
    missing or NaN volume becomes 0, missing openinterest 0. A Series is taken as closes:
    open = high = low = close, volume = openinterest = 0 (e.g. a benchmark index)."""
    index, cols = feed_columns(dataname, name)
    return pd.DataFrame(cols, index=index)


def _numbers(values) -> np.ndarray:
    """A column as a new float64 array, non-numbers NaN (a float64 column is copied as it is)."""
    if values.dtype == np.float64:
        return np.array(values.to_numpy(), dtype="float64")
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def feed_columns(dataname, name: str = "") -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    """feed_frame's index and columns as float64 arrays, without building the frame (ArrayData)."""
    label = name or getattr(dataname, "name", "") or "data"
    # Built from numpy arrays on the input's own index: no alignment, duplicates stay as given.
    if isinstance(dataname, pd.Series):
        close = _numbers(dataname)
        zeros = np.zeros(len(close))
        cols = {"open": close, "high": close, "low": close, "close": close, "volume": zeros, "openinterest": zeros}
    elif isinstance(dataname, pd.DataFrame):
        lower = {str(c).lower(): c for c in dataname.columns}
        if "close" not in lower:
            raise DataError(
                f"ArrayData {label!r}: no 'close' column (columns are {list(dataname.columns)}); "
                "give a frame with lowercase open/high/low/close/volume columns, as PricePanel.frame(ticker) does"
            )
        given = {f: _numbers(dataname[lower[f]]) for f in _FIELDS if f in lower}
        zeros = np.zeros(len(dataname))
        cols = {f: given.get(f, given["close"]) for f in _PRICE_LINES}
        for field in ("volume", "openinterest"):
            cols[field] = np.where(np.isnan(given[field]), 0.0, given[field]) if field in given else zeros
    else:
        raise DataError(
            f"ArrayData {label!r}: dataname is a {type(dataname).__name__}; give a per-ticker OHLCV "
            "DataFrame (PricePanel.frame(ticker)) or a pandas Series of closes"
        )
    if not isinstance(dataname.index, pd.DatetimeIndex):
        raise DataError(
            f"ArrayData {label!r}: the index is a {type(dataname.index).__name__}, not dates; "
            "set a DatetimeIndex (e.g. frame.index = pd.to_datetime(frame.index))"
        )
    return dataname.index, cols


def datetime_numbers(index: pd.DatetimeIndex) -> np.ndarray:
    """Backtrader's float day numbers for a DatetimeIndex, bit-identical to
    ``backtrader.date2num(ts.to_pydatetime())`` as PandasData computes them."""
    if len(index) == 0:
        return np.empty(0, dtype="float64")
    stamps = index.values  # datetime64 in the index's own unit; NaT - NaT is not 0
    if index.tz is None and not (stamps - stamps.astype("datetime64[D]")).astype(np.int64).any():
        # Midnight stamps: date2num is exactly the proleptic ordinal as a float.
        return day_numbers(index).astype("float64")
    # Intraday or tz-aware: date2num uses math.fsum and UTC offsets; call it per stamp (once).
    return np.array([date2num(ts.to_pydatetime()) for ts in index], dtype="float64")


def _bar_arrays(index: pd.DatetimeIndex, cols: dict, aliases) -> dict[str, np.ndarray]:
    arrays = {"datetime": datetime_numbers(index)}
    for alias in aliases:
        if alias == "datetime":
            continue
        if alias in cols:
            arrays[alias] = np.ascontiguousarray(cols[alias], dtype="float64")
        else:  # an extra line a subclass declared and the frame lacks: NaN, as PandasData leaves it
            arrays[alias] = np.full(len(index), np.nan)
    return arrays


class ArrayData(bt.feeds.DataBase):
    """Backtrader data feed over a per-ticker OHLCV DataFrame or a Series of closes.

    Usage: ``cerebro.adddata(ArrayData(dataname=panel.frame("AAPL")), name="AAPL")``.
    Params are those of ``bt.feeds.DataBase`` (fromdate, todate, tz, ...) plus ``lean``.
    """

    params = (
        ("lean", False),  # skip tick_* bookkeeping and use direct buffer advance (see module doc)
    )

    def __init__(self):
        super().__init__()
        index, cols = feed_columns(self.p.dataname, name=self.p.name)
        # Subclasses may declare extra lines; a frame column of the same name feeds them.
        extra = [c for c in getattr(self.p.dataname, "columns", []) if c in self.getlinealiases()]
        for column in extra:
            if column not in cols:
                cols[column] = _numbers(self.p.dataname[column])
        self._arrays = _bar_arrays(index, cols, self.getlinealiases())
        self._nbars = len(index)
        self._lean_active = False
        self._lean_fast = False
        self._lenbuf = self.lines.lines[0]  # the line len() reads (the leader once lean)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self):
        super().start()
        self._idx = -1
        self._line_values = None
        # Lean switches off where tick_* may differ from the bar (resample/replay/filters).
        self._lean_active = bool(self.p.lean) and not (
            self._filters or self._ffilters or self.resampling or self.replaying
        )
        self._lean_fast = False
        self.close_always_finite = False  # known only for a lean preloaded feed (see preload)

    def preload(self):
        lines = list(self.lines)
        simple = (
            not self._filters
            and not self._ffilters
            and not self._tzinput
            and all(
                isinstance(line, LineBuffer)
                and line.mode == LineBuffer.UnBounded
                and len(line.array) == 0
                and line.extension == 0
                for line in lines
            )
        )
        if not simple:
            super().preload()
        else:
            keep = self._kept_rows()
            for alias in self.getlinealiases():
                line = getattr(self.lines, alias)
                line.array = array.array("d", self._arrays[alias][keep].tobytes())
                line.lencount = len(line.array)  # as if forwarded bar by bar; home() resets it
            self._idx = self._nbars  # the source is consumed: a later load() (runonce=False) ends
            self.home()
        leader = self.lines.datetime
        self._lean_fast = self._lean_active and all(plain(line) or follows(line, leader) for line in lines)
        if self._lean_fast:
            # the price lines follow the datetime line: advance() moves one buffer, not seven
            self._dtbuffer = self._lenbuf = leader
            self._lean_fast = all(line is leader or follows(line, leader) or follow(line, leader) for line in lines)
            self._peeks = self.lines.datetime.array.tolist() + [_INF]
        # read by LeanBroker: a flat position on this data never needs valuing (0 * close is 0)
        self.close_always_finite = self._lean_fast and bool(np.isfinite(np.array(self.lines.close.array)).all())

    def _kept_rows(self) -> np.ndarray:
        """Rows the stock load() loop keeps: drop bars before fromdate, stop at the first after todate."""
        dt = self._arrays["datetime"]
        past = np.flatnonzero(dt > self.todate)
        stop = past[0] if len(past) else len(dt)
        idx = np.arange(stop)
        return idx[dt[:stop] >= self.fromdate]

    def _load(self):
        # Per-bar path (preload=False, filters, tzinput): Backtrader's load() does the rest.
        self._idx += 1
        if self._idx >= self._nbars:
            return False
        if self._line_values is None:
            self._line_values = [
                (getattr(self.lines, alias), self._arrays[alias].tolist()) for alias in self.getlinealiases()
            ]
        i = self._idx
        for line, values in self._line_values:
            line[0] = values[i]
        return True

    # --- lean overrides (only when lean and preloaded in unbounded mode) -----------------------
    def _tick_nullify(self):
        if not self._lean_active:
            super()._tick_nullify()

    def _tick_fill(self, force=False):
        if not self._lean_active:
            super()._tick_fill(force)

    def advance_peek(self):
        # Cerebro asks every data for its next datetime every bar: the lean feed's buffers do not
        # change after preload, so the answers are a list (inf past the last bar)
        if self._lean_fast:
            try:
                return self._peeks[self._dtbuffer._idx + 1]
            except IndexError:
                return _INF
        return super().advance_peek()

    def __len__(self):
        # len() of a data is asked several times a bar per data; skip the two proxy layers
        return self._lenbuf.lencount

    def advance(self, size=1, datamaster=None, ticks=True):
        if datamaster is None and self._lean_fast:
            buf = self._dtbuffer
            buf._idx += size
            buf.lencount += size
            return
        super().advance(size, datamaster, ticks)


class FastArrayData(ArrayData):
    """ArrayData with ``lean=True`` by default."""

    params = (("lean", True),)
