"""core.dates against Backtrader's own date2num / num2date."""

import datetime as dt

import backtrader as bt
import numpy as np
import pandas as pd

from core.dates import EPOCH_DAYNUM, bt_dates, day_numbers


def test_day_numbers_equal_backtraders_date2num():
    dates = pd.DatetimeIndex(["1990-01-02", "2000-02-29", "2021-12-31", "2022-12-28"])
    expected = [bt.date2num(dt.datetime(d.year, d.month, d.day)) for d in dates]
    assert day_numbers(dates).tolist() == expected
    assert bt.date2num(dt.datetime(1970, 1, 1)) == EPOCH_DAYNUM


def test_bt_dates_invert_num2date_and_drop_the_time_of_day():
    numbers = np.array([bt.date2num(dt.datetime(2021, 3, 4, 16, 30)), bt.date2num(dt.datetime(1999, 12, 31))])
    assert list(bt_dates(numbers)) == [pd.Timestamp("2021-03-04"), pd.Timestamp("1999-12-31")]
    tz_index = pd.DatetimeIndex(["2021-03-04 15:00"], tz="US/Eastern")
    assert day_numbers(tz_index).tolist() == [bt.date2num(dt.datetime(2021, 3, 4))]
