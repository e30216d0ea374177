"""Backtrader's day numbers: datetimes stored as float days since 0001-01-01 (= 1.0, matplotlib's
old epoch). The integer part is the calendar day; 1970-01-01 is day 719163."""

from __future__ import annotations

import numpy as np
import pandas as pd

EPOCH_DAYNUM = 719163  # Backtrader's day number of 1970-01-01, numpy's day 0


def day_numbers(index) -> np.ndarray:
    """Backtrader's integer day number of each date of a DatetimeIndex (time of day dropped)."""
    index = pd.DatetimeIndex(index)
    if index.tz is not None:
        index = index.tz_localize(None)
    return index.values.astype("datetime64[D]").astype(np.int64) + EPOCH_DAYNUM


def bt_dates(day_numbers_) -> pd.DatetimeIndex:
    """Backtrader's float day numbers -> naive dates (the time of day is dropped)."""
    days = np.floor(np.asarray(day_numbers_, dtype=np.float64)).astype(np.int64) - EPOCH_DAYNUM
    return pd.DatetimeIndex(days.astype("datetime64[D]").astype("datetime64[ns]"), name="date")
