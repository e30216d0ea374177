"""Backtrader's day numbers: datetimes stored as float days since 0001-01-01 (= 1.0, matplotlib's
old epoch). The integer part is the calendar day; 1970-01-01 is day 719163. And `parse_day`, the
one reading of a day the user typed (an option or a config value)."""

from __future__ import annotations

import calendar
import datetime as _dt
import re

import numpy as np
import pandas as pd

from core.errors import ConfigError

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


def parse_day(value, what: str) -> pd.Timestamp:
    """A calendar day from a date object or a "YYYY-MM-DD" string; ConfigError naming `what` (the
    option or key, e.g. "--start") otherwise. Stricter than pandas on purpose: "yesterday" or
    "03/04/2021" would be read some way; here they are refused instead of guessed."""
    if isinstance(value, (_dt.date, pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).normalize()
    text = str(value).strip()
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if match is None:
        raise ConfigError(f"{what} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2021-01-04")
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        raise ConfigError(f"{what} {text!r}: there is no month {month}; write YYYY-MM-DD, e.g. 2021-01-04")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise ConfigError(
            f"{what} {text!r}: {calendar.month_name[month]} {year} has days 1 to {last}; give a day of the calendar"
        )
    return pd.Timestamp(year, month, day)


def day_argument(option: str):
    """An argparse `type=` for a day option: the day as "YYYY-MM-DD", or argparse's usage error
    with parse_day's message ("--start '2021-02-30': February 2021 has days 1 to 28 ...")."""
    import argparse

    def parse(text: str) -> str:
        try:
            return str(parse_day(text, option).date())
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "date"  # argparse names the type in some messages
    return parse
