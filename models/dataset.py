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

from core.errors import ConfigError, DataError

# What every split error tells the user to change.
SPLIT_FIX = (
    "set the split with --split TRAIN_END,VALID_END (run_backtest.py) or [model.split] in a config file; "
    'split = "auto" takes 60/20/20 % of the data\'s dates'
)
AUTO_SHARES = (0.6, 0.2, 0.2)


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
                raise ConfigError(
                    f"split dates must be in order: {names[i]}={dates[i].date()} comes after "
                    f"{names[i + 1]}={dates[i + 1].date()}; {SPLIT_FIX}"
                )

    def period(self, name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        return pd.Timestamp(getattr(self, f"{name}_start")), pd.Timestamp(getattr(self, f"{name}_end"))

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def describe(self) -> str:
        return ", ".join(
            f"{name} {self.period(name)[0].date()} .. {self.period(name)[1].date()}"
            for name in ("train", "valid", "test")
        )


def _day(ts) -> str:
    return str(pd.Timestamp(ts).date())


def auto_split(dates, horizon: int, shares=AUTO_SHARES) -> Split:
    """The first 60 % of the data's dates train, the next 20 % validate, the last 20 % test.

    Each period is a range of whole dates of `dates` (sorted, unique: the data's calendar). The purge
    is split_samples' own: a train (valid) sample whose label horizon ends after its period's last
    date is dropped, so `horizon` days before each boundary train on nothing. A period too short to
    keep a label after that purge is an error that names the option to change."""
    dates = pd.DatetimeIndex(dates).unique().sort_values()
    n, h = len(dates), int(horizon)
    n_train = int(np.floor(shares[0] * n))
    n_valid = int(np.floor((shares[0] + shares[1]) * n)) - n_train
    n_test = n - n_train - n_valid
    short = {
        name: k
        for name, k in (("train", n_train), ("valid", n_valid), ("test", n_test))
        if k <= (h if name != "test" else 0)
    }
    if short:
        raise DataError(
            f"the data has {n} dates; the auto split ({'/'.join(f'{100 * x:.0f}' for x in shares)} %) "
            f"gives {', '.join(f'{k} {name}' for name, k in short.items())} dates, which a "
            f"{h}-day label purge leaves empty: give more history, or {SPLIT_FIX}"
        )
    cut_train, cut_valid = n_train, n_train + n_valid
    return Split(
        train_start=_day(dates[0]),
        train_end=_day(dates[cut_train - 1]),
        valid_start=_day(dates[cut_train]),
        valid_end=_day(dates[cut_valid - 1]),
        test_start=_day(dates[cut_valid]),
        test_end=_day(dates[-1]),
    )


def split_from_ends(train_end, valid_end, train_start="", test_end="") -> dict:
    """The split of `--split TRAIN_END,VALID_END`: validation from the day after TRAIN_END, test from
    the day after VALID_END. An empty train_start / test_end means the data's first / last date
    (filled by fill_split once the data is known)."""
    try:
        a, b = pd.Timestamp(train_end), pd.Timestamp(valid_end)
    except (ValueError, TypeError):
        raise ConfigError(f"--split {train_end},{valid_end}: give two dates YYYY-MM-DD, TRAIN_END,VALID_END") from None
    if pd.isna(a) or pd.isna(b) or not a < b:
        raise ConfigError(
            f"--split {train_end},{valid_end}: TRAIN_END must come before VALID_END "
            "(validation runs from the day after TRAIN_END to VALID_END, test after it)"
        )
    one = pd.Timedelta(days=1)
    return {
        "train_start": train_start,
        "train_end": _day(a),
        "valid_start": _day(a + one),
        "valid_end": _day(b),
        "test_start": _day(b + one),
        "test_end": test_end,
    }


def fill_split(split: dict, dates) -> Split:
    """A Split from a [model.split] table whose train_start / test_end may be empty (= the data's
    first / last date)."""
    dates = pd.DatetimeIndex(dates)
    filled = dict(split)
    if not filled.get("train_start"):
        filled["train_start"] = _day(dates[0])
    if not filled.get("test_end"):
        filled["test_end"] = _day(dates[-1])
    missing = [k for k, v in filled.items() if not v]
    if missing:
        raise ConfigError(
            f"split keys {missing} are empty; only train_start and test_end may be left empty; {SPLIT_FIX}"
        )
    return Split(**filled)


def check_split_covers(split: Split, dates) -> None:
    """Every period of the split must hold some of the data's dates (before a model is fitted on it)."""
    dates = pd.DatetimeIndex(dates)
    for name in ("train", "valid", "test"):
        start, end = split.period(name)
        if not ((dates >= start) & (dates <= end)).any():
            raise DataError(
                f"the {name} period {start.date()} .. {end.date()} holds none of the data's dates "
                f"({dates[0].date()} .. {dates[-1].date()}): {SPLIT_FIX}"
            )


@dataclass
class WindowIndex:
    """Flat feature rows of all tickers, compacted to each ticker's own trading days, and the
    samples (windows) that can be drawn from them."""

    rows: np.ndarray  # [R, F] float32 features, ticker after ticker
    row_dates: np.ndarray  # [R] datetime64 date of each row
    row_ticker: np.ndarray  # [R] int ticker index of each row
    ends: np.ndarray  # [S] flat row index where each valid window ends
    seq_len: int
    tickers: list

    def sample_dates(self) -> np.ndarray:
        return self.row_dates[self.ends]

    def gather(self, ends: np.ndarray, scaled_rows: np.ndarray | None = None) -> np.ndarray:
        """[len(ends), seq_len, F] windows ending at the given flat rows."""
        source = self.rows if scaled_rows is None else scaled_rows
        offsets = np.arange(-self.seq_len + 1, 1)
        return source[ends[:, None] + offsets[None, :]]


def build_windows(
    features: np.ndarray, traded: np.ndarray, dates: pd.DatetimeIndex, tickers, seq_len: int
) -> WindowIndex:
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


def split_samples(
    index: WindowIndex,
    labels: pd.DataFrame,
    label_ends: pd.DataFrame,
    split: Split,
    stride: int = 1,
    valid_stride: int | None = None,
) -> dict:
    """Sample positions (into index.ends) for train / valid / test.

    train and valid: label known, label horizon ends inside the period (purge); every `stride`-th
    (validation: `valid_stride`-th, None = `stride`) window per ticker. test: every window dated in
    the test period, labelled or not.
    """
    strides = {"train": stride, "valid": stride if valid_stride is None else valid_stride, "test": 1}
    for name, value in (("stride", stride), ("valid_stride", strides["valid"])):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
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
        if strides[name] > 1:
            tick = index.row_ticker[index.ends[picked]]
            rank_in_ticker = np.arange(len(picked)) - np.searchsorted(tick, tick)  # picked is sorted by ticker
            picked = picked[rank_in_ticker % strides[name] == 0]
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
            raise ConfigError(
                f"no training rows between {start} and {end}: check the split dates against the data; {SPLIT_FIX}"
            )
        center = np.median(finite_rows, axis=0)
        q75, q25 = np.percentile(finite_rows, [75, 25], axis=0)
        scale = np.where(q75 - q25 > 1e-12, q75 - q25, 1.0)
        seen = row_dates[mask]
        return cls(
            center.astype(np.float32),
            scale.astype(np.float32),
            (str(pd.Timestamp(seen.min()).date()), str(pd.Timestamp(seen.max()).date())),
        )

    def transform(self, rows: np.ndarray) -> np.ndarray:
        # clip: a robust z of ±10 already means "extreme"; bigger values only destabilise the LSTM
        return np.clip((rows - self.center) / self.scale, -10, 10).astype(np.float32)

    def to_dict(self) -> dict:
        return {"center": self.center.tolist(), "scale": self.scale.tolist(), "fitted_on": list(self.fitted_on)}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        return cls(np.asarray(d["center"], np.float32), np.asarray(d["scale"], np.float32), tuple(d["fitted_on"]))
