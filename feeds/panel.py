"""PricePanel: the one in-memory shape of prices that every part of the project shares.

Wide frames (date x ticker), one per field, on one tz-naive DatetimeIndex named ``date``. A stock
that has not started yet, or has no bar that day, is NaN in every field. ``available`` says which
fields are real data: for close-only data it is {"close"}, open = high = low = close and volume is
NaN, so that features needing OHLC or volume can be left out honestly.
"""

from __future__ import annotations

import hashlib
from typing import Iterator, Mapping

import numpy as np
import pandas as pd

from core.errors import DataError

FIELDS = ("open", "high", "low", "close", "volume")


class PricePanel:
    def __init__(self, fields: Mapping[str, pd.DataFrame], available=None, name: str = ""):
        if "close" not in fields:
            raise DataError(f"price panel {name!r}: no 'close' field; give at least a close price per ticker")
        close = fields["close"]
        index = pd.DatetimeIndex(close.index, name="date")
        if index.tz is not None:
            raise DataError(
                f"price panel {name!r}: dates are timezone-aware; convert them to naive dates (tz_localize(None))"
            )
        if not index.is_monotonic_increasing or index.has_duplicates:
            raise DataError(f"price panel {name!r}: dates must be sorted and unique")
        columns = pd.Index([str(c) for c in close.columns], name="ticker")
        if columns.has_duplicates:
            twice = sorted(set(columns[columns.duplicated()]))
            raise DataError(
                f"price panel {name!r}: ticker(s) {twice} appear more than once; give each ticker one column"
            )
        frames = {}
        for field in FIELDS:
            frame = fields.get(field)
            if frame is None:
                frame = close if field != "volume" else pd.DataFrame(np.nan, index=close.index, columns=close.columns)
            frame = frame.reindex(index=close.index, columns=close.columns).astype("float64")
            frame.index, frame.columns = index, columns
            frames[field] = frame
        self._frames = frames
        self.available = frozenset(available if available is not None else fields.keys()) & set(FIELDS)
        self.name = name

    # --- wide access -------------------------------------------------------------------------
    def __getitem__(self, field: str) -> pd.DataFrame:
        if field not in self._frames:
            raise KeyError(f"unknown field {field!r}; fields are {FIELDS}")
        return self._frames[field]

    @property
    def close(self) -> pd.DataFrame:
        return self._frames["close"]

    @property
    def tickers(self) -> list[str]:
        return list(self.close.columns)

    @property
    def dates(self) -> pd.DatetimeIndex:
        return self.close.index

    def __len__(self) -> int:
        return len(self.tickers)

    def __contains__(self, ticker) -> bool:
        return ticker in self.close.columns

    # --- per-ticker access (what a Backtrader feed wants) --------------------------------------
    def frame(self, ticker: str) -> pd.DataFrame:
        """OHLCV of one ticker on the days it traded (rows with a close), columns lowercase."""
        if ticker not in self:
            raise DataError(
                f"ticker {ticker!r} is not in the price panel {self.name!r}; tickers are {self.tickers[:10]}..."
            )
        # numpy columns, not five wide-frame look-ups and a frame filter (500 tickers a backtest)
        j = self.close.columns.get_loc(ticker)  # one column: the tickers are unique (__init__)
        columns = {f: self._frames[f].to_numpy()[:, j] for f in FIELDS}
        traded = ~np.isnan(columns["close"])
        return pd.DataFrame({f: values[traded] for f, values in columns.items()}, index=self.dates[traded])

    def items(self) -> Iterator[tuple[str, pd.DataFrame]]:
        for ticker in self.tickers:
            yield ticker, self.frame(ticker)

    def keys(self):
        return self.tickers

    # --- derived panels -----------------------------------------------------------------------
    def _derive(self, rows=slice(None), columns=None) -> "PricePanel":
        cols = self.tickers if columns is None else list(columns)
        return PricePanel({f: fr.loc[rows, cols] for f, fr in self._frames.items()}, self.available, self.name)

    def between(self, start=None, end=None) -> "PricePanel":
        return self._derive(rows=slice(pd.Timestamp(start) if start else None, pd.Timestamp(end) if end else None))

    def select(self, tickers) -> "PricePanel":
        missing = [t for t in tickers if t not in self]
        if missing:
            raise DataError(f"tickers {missing} are not in the price panel {self.name!r}")
        return self._derive(columns=tickers)

    def fingerprint(self) -> str:
        """sha256 of dates, tickers, available fields and every value: equal data, equal print."""
        h = hashlib.sha256()
        h.update(",".join(self.tickers).encode())
        h.update(",".join(sorted(self.available)).encode())
        h.update(self.dates.asi8.tobytes())
        for field in FIELDS:
            h.update(np.ascontiguousarray(self._frames[field].to_numpy()).tobytes())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        d = self.dates
        span = f"{d[0].date()}..{d[-1].date()}" if len(d) else "empty"
        fields = sorted(self.available)
        return f"PricePanel({self.name!r}, {len(self.tickers)} tickers, {len(d)} days {span}, fields={fields})"


def series_fingerprint(series: pd.Series) -> str:
    h = hashlib.sha256()
    h.update(pd.DatetimeIndex(series.index).asi8.tobytes())
    h.update(np.ascontiguousarray(series.to_numpy(dtype="float64")).tobytes())
    return h.hexdigest()[:16]
