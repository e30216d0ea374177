"""Windows and leak-free splits.

A sample is (ticker, date t): the window of the stock's own last `seq_len` trading days ending at
t, labelled with the label made at t (which needs prices up to t + horizon). Samples are kept as
positions into one flat [rows, features] array, so a batch is a cheap gather instead of a
materialised [samples, seq_len, features] tensor.

Purge: a training (validation) sample whose label horizon ends after the training (validation)
period is dropped, so no fitted thing ever sees a price of a later period through its label.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from feeds.errors import ConfigError


@dataclass(frozen=True)
class Split:
    """Date periods, inclusive. The defaults fit the embedded data: before 1996 its prices are
    rounded to 3 decimals, which distorts RSI and Bollinger, so training starts in 1996."""

    train_start: str = "1996-01-01"
    train_end: str = "2012-12-31"
    valid_start: str = "2013-01-01"
    valid_end: str = "2016-12-31"
    test_start: str = "2017-01-01"
    test_end: str = "2022-12-31"

    def __post_init__(self):
        names = list(self.__dataclass_fields__)
        dates = [pd.Timestamp(getattr(self, f)) for f in names]
        for i in range(len(names) - 1):
            if dates[i] > dates[i + 1]:
                raise ConfigError(f"split dates must be in order: {names[i]}={dates[i].date()} comes after "
                                  f"{names[i + 1]}={dates[i + 1].date()}")

    def period(self, name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        return pd.Timestamp(getattr(self, f"{name}_start")), pd.Timestamp(getattr(self, f"{name}_end"))


@dataclass
class WindowIndex:
    """Flat feature rows of all tickers, compacted to each ticker's own trading days, and the
    samples (windows) that can be drawn from them."""

    rows: np.ndarray          # [R, F] float32 features, ticker after ticker
    row_dates: np.ndarray     # [R] datetime64 date of each row
    row_ticker: np.ndarray    # [R] int ticker index of each row
    ends: np.ndarray          # [S] flat row index where each valid window ends
    seq_len: int
    tickers: list

    def sample_dates(self) -> np.ndarray:
        return self.row_dates[self.ends]

    def gather(self, ends: np.ndarray, scaled_rows: np.ndarray | None = None) -> np.ndarray:
        """[len(ends), seq_len, F] windows ending at the given flat rows."""
        source = self.rows if scaled_rows is None else scaled_rows
        offsets = np.arange(-self.seq_len + 1, 1)
        return source[ends[:, None] + offsets[None, :]]


def build_windows(features: np.ndarray, traded: np.ndarray, dates: pd.DatetimeIndex, tickers, seq_len: int) -> WindowIndex:
    """features [T, N, F] on the panel calendar; traded [T, N] bool (the stock has a bar that day).

    Each ticker's rows are compacted to its own trading days; a window is valid when all of its
    seq_len rows have finite features (warm-up over).
    """
    if seq_len < 1:
        raise ConfigError(f"seq_len must be >= 1, got {seq_len}")
    date_values = np.asarray(dates.values)
    rows, row_dates, row_ticker, ends = [], [], [], []
    offset = 0
    for n in range(features.shape[1]):
        idx = np.flatnonzero(traded[:, n])
        x = features[idx, n, :]
        finite = np.isfinite(x).all(axis=1)
        # window ending at j is valid when rows j-seq_len+1..j are all finite
        run = np.concatenate([[0], np.cumsum(finite)])
        j = np.arange(seq_len - 1, len(idx))
        valid = j[(run[j + 1] - run[j + 1 - seq_len]) == seq_len]
        rows.append(x.astype(np.float32))  # NaN rows stay NaN: no valid window contains them
        row_dates.append(date_values[idx])
        row_ticker.append(np.full(len(idx), n, dtype=np.int32))
        ends.append(valid + offset)
        offset += len(idx)
    f = features.shape[2]
    return WindowIndex(
        rows=np.concatenate(rows) if rows else np.zeros((0, f), np.float32),
        row_dates=np.concatenate(row_dates) if row_dates else np.zeros(0, "datetime64[ns]"),
        row_ticker=np.concatenate(row_ticker) if row_ticker else np.zeros(0, np.int32),
        ends=np.concatenate(ends).astype(np.int64) if ends else np.zeros(0, np.int64),
        seq_len=seq_len,
        tickers=list(tickers),
    )


def lookup(frame: pd.DataFrame, index: WindowIndex, ends: np.ndarray) -> np.ndarray:
    """Values of a date x ticker frame at the (date, ticker) of each window end."""
    rows = frame.index.get_indexer(pd.DatetimeIndex(index.row_dates[ends]))
    cols = index.row_ticker[ends]
    return frame.to_numpy()[rows, cols]


def split_samples(index: WindowIndex, labels: pd.DataFrame, label_ends: pd.DataFrame, split: Split, stride: int = 1) -> dict:
    """Sample positions (into index.ends) for train / valid / test.

    train and valid: label known, label horizon ends inside the period (purge); every `stride`-th
    window per ticker. test: every window dated in the test period, labelled or not.
    """
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    dates = index.sample_dates()
    y = lookup(labels, index, index.ends)
    y_end = lookup(label_ends, index, index.ends)
    out = {}
    for name in ("train", "valid", "test"):
        start, end = split.period(name)
        in_period = (dates >= np.datetime64(start)) & (dates <= np.datetime64(end))
        if name != "test":
            horizon_inside = ~pd.isna(y_end) & (y_end.astype("datetime64[ns]") <= np.datetime64(end))
            in_period &= np.isfinite(y) & horizon_inside
        picked = np.flatnonzero(in_period)
        if name != "test" and stride > 1:
            tick = index.row_ticker[index.ends[picked]]
            rank_in_ticker = np.arange(len(picked)) - np.searchsorted(tick, tick)  # picked is sorted by ticker
            picked = picked[rank_in_ticker % stride == 0]
        out[name] = picked
    return out, y


@dataclass
class Scaler:
    """Robust scaling (median / interquartile range), fitted on the training rows only."""

    center: np.ndarray
    scale: np.ndarray
    fitted_on: tuple  # (first date, last date) of the rows it saw

    @classmethod
    def fit(cls, rows: np.ndarray, row_dates: np.ndarray, start, end) -> "Scaler":
        mask = (row_dates >= np.datetime64(pd.Timestamp(start))) & (row_dates <= np.datetime64(pd.Timestamp(end)))
        x = rows[mask]
        finite_rows = x[np.isfinite(x).all(axis=1)]
        if len(finite_rows) == 0:
            raise ConfigError(f"no training rows between {start} and {end}: check the split dates against the data")
        center = np.median(finite_rows, axis=0)
        q75, q25 = np.percentile(finite_rows, [75, 25], axis=0)
        scale = np.where(q75 - q25 > 1e-12, q75 - q25, 1.0)
        seen = row_dates[mask]
        return cls(center.astype(np.float32), scale.astype(np.float32), (str(pd.Timestamp(seen.min()).date()), str(pd.Timestamp(seen.max()).date())))

    def transform(self, rows: np.ndarray) -> np.ndarray:
        # clip: a robust z of ±10 already means "extreme"; bigger values only destabilise the LSTM
        return np.clip((rows - self.center) / self.scale, -10, 10).astype(np.float32)

    def to_dict(self) -> dict:
        return {"center": self.center.tolist(), "scale": self.scale.tolist(), "fitted_on": list(self.fitted_on)}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        return cls(np.asarray(d["center"], np.float32), np.asarray(d["scale"], np.float32), tuple(d["fitted_on"]))
