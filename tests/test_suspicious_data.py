"""Suspicious data is named, not passed silently (issue 20.6): extreme daily moves and files that end
years before the rest warn (SuspiciousDataWarning, naming file, ticker and date); dates written
DD/MM/YYYY are refused with the format named instead of "sort the rows"."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from feeds import SuspiciousDataWarning, load_csv_folder
from feeds.validate import (
    EARLY_END_DAYS,
    MAX_DAILY_MOVE,
    DataRepairWarning,
    early_ends,
    extreme_moves,
    slashed_date_order,
    validate_ohlcv,
)


def close_csv(dates, closes) -> str:
    return "Date,Close\n" + "".join(f"{d},{c}\n" for d, c in zip(dates, closes))


def iso(days) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in days]


def load(folder, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load_csv_folder(folder, min_rows=5, **kwargs)
    return result, caught


def suspicious(caught) -> list[str]:
    return [str(w.message) for w in caught if w.category is SuspiciousDataWarning]


def test_a_1000x_typo_warns_naming_file_and_dates(tmp_path):
    days = pd.bdate_range("2021-01-04", periods=40)
    closes = list(np.linspace(100, 110, 40))
    closes[20] = closes[20] * 1000  # a typo for one day: up 1000x, then down 1000x
    (tmp_path / "AAPL.csv").write_text(close_csv(iso(days), closes))
    (tmp_path / "MSFT.csv").write_text(close_csv(iso(days), np.linspace(200, 190, 40)))
    (prices, _), caught = load(tmp_path)
    assert prices.close["AAPL"].iloc[20] == pytest.approx(closes[20])  # kept as it is: a warning only
    [message] = suspicious(caught)
    assert str(tmp_path / "AAPL.csv") in message and "on 2 day(s)" in message
    assert f"{days[19].date()}" in message and f"{days[20].date()}" in message and f"{days[21].date()}" in message
    assert "MSFT" not in message
    assert not issubclass(SuspiciousDataWarning, DataRepairWarning)  # a named class of its own


def test_extreme_moves_bound_against_a_direct_computation():
    rng = np.random.default_rng(7)
    close = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.8, 300))), index=pd.bdate_range("2000-01-03", periods=300))
    ratio = close.to_numpy()[1:] / close.to_numpy()[:-1]
    expected = int(((ratio > MAX_DAILY_MOVE) | (ratio < 1 / MAX_DAILY_MOVE)).sum())
    assert expected > 0  # the series is wild enough to test something
    [note] = extreme_moves(close, "x.csv")
    assert f"on {expected} day(s)" in note
    assert extreme_moves(close.clip(upper=close.iloc[0]) * 0 + 50.0, "flat.csv") == []
    assert extreme_moves(pd.Series([10.0, 49.9, 10.0]), "x") == []  # below 5x both ways
    assert len(extreme_moves(pd.Series([10.0, 50.1]), "x")) == 1


def test_a_file_that_ends_years_early_warns_naming_it(tmp_path):
    long = pd.bdate_range("2015-01-02", "2021-12-31")
    (tmp_path / "AAPL.csv").write_text(close_csv(iso(long), np.linspace(100, 200, len(long))))
    (tmp_path / "OLD.csv").write_text(close_csv(iso(long[:300]), np.linspace(50, 60, 300)))
    (tmp_path / "MSFT.csv").write_text(close_csv(iso(long[:-100]), np.linspace(10, 20, len(long) - 100)))
    _, caught = load(tmp_path)
    [message] = suspicious(caught)
    assert f"OLD.csv (last {long[299].date()})" in message and "AAPL" not in message and "MSFT" not in message
    assert "2021-12-31" in message  # the newest end, for comparison


def test_early_ends_bound():
    newest = pd.Timestamp("2022-12-30")
    days = {"a.csv": newest, "b.csv": newest - pd.Timedelta(days=EARLY_END_DAYS), "c.csv": pd.Timestamp("2010-01-04")}
    [note] = early_ends(days, "folder")
    assert "c.csv" in note and "b.csv" not in note and "1 file(s)" in note
    assert early_ends({"a.csv": newest}, "folder") == []


@pytest.mark.parametrize("separator", ["/", "."])
def test_day_first_dates_are_refused_naming_the_file_and_format(tmp_path, separator):
    days = pd.bdate_range("2021-01-04", periods=40)
    text = close_csv([d.strftime(f"%d{separator}%m{separator}%Y") for d in days], np.linspace(100, 110, 40))
    (tmp_path / "AAPL.csv").write_text(text)
    with pytest.raises(DataError) as error:
        load_csv_folder(tmp_path, min_rows=5)
    message = str(error.value)
    assert str(tmp_path / "AAPL.csv") in message and "DD/MM/YYYY" in message and "sort the rows" not in message
    assert "13" + separator + "01" + separator + "2021" in message and "line 9" in message  # 13 Jan: 8th row


def test_day_first_dates_without_a_day_above_12_are_found_by_their_order():
    # every date ambiguous (no day above 12): month first they run April .. December, then January
    days = pd.bdate_range("2021-01-04", "2021-01-12").append(pd.bdate_range("2021-02-01", "2021-02-05"))
    raw = pd.DataFrame({"Date": [d.strftime("%d/%m/%Y") for d in days], "Close": np.arange(len(days)) + 1.0})
    assert slashed_date_order(raw["Date"]) == "DD/MM/YYYY"
    assert slashed_date_order(raw["Date"].iloc[:7]) is None  # in order either way: cannot tell
    with pytest.raises(DataError, match="DD/MM/YYYY"):
        validate_ohlcv(raw, "EU.csv", min_rows=1)


def test_month_first_dates_still_load():
    days = pd.bdate_range("2021-01-04", periods=30)
    raw = pd.DataFrame({"Date": [d.strftime("%m/%d/%Y") for d in days], "Close": np.arange(30) + 1.0})
    assert slashed_date_order(raw["Date"]) == "MM/DD/YYYY"
    clean, _ = validate_ohlcv(raw, "US.csv", min_rows=1)
    assert clean.index.equals(pd.DatetimeIndex(days, name="date"))
    assert slashed_date_order(pd.Series(["2021-01-04", "2021-01-05"])) is None
    assert slashed_date_order(pd.Series(["13/01/2021", "01/13/2021"])) == "mixed"
