"""feeds.csv_folder and feeds.validate: good folders load exactly, every bad input gets a message
that names the file, the line and the column. BAD_INPUTS doubles as the README's table."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from feeds.csv_folder import load_csv_folder, read_price_csv
from feeds.validate import DataRepairWarning, validate_ohlcv

FIXTURE = Path(__file__).parent / "fixtures" / "feeds_yf_AAPL_MSFT.csv"
DAYS = pd.bdate_range("2021-01-04", periods=30)


def ohlcv_rows(n=30, scale=1.0, start=0):
    """Deterministic OHLCV rows: (date, open, high, low, close, volume)."""
    rows = []
    for i in range(start, start + n):
        close = scale * (100 + i)
        rows.append((DAYS[i].strftime("%Y-%m-%d"), close - 0.5, close + 1, close - 1, close, 1000 + i))
    return rows


def csv_text(rows, header="Date,Open,High,Low,Close,Volume"):
    return header + "\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def load(folder, **kwargs):
    kwargs.setdefault("min_rows", 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load_csv_folder(folder, **kwargs)
    return result, [str(w.message) for w in caught if issubclass(w.category, DataRepairWarning)]


# --- good inputs -------------------------------------------------------------------------------
def test_ohlcv_folder_loads_exactly_with_benchmark_taken_out(tmp_path):
    write(tmp_path, "AAA.csv", csv_text(ohlcv_rows()))
    write(tmp_path, "BBB.csv", csv_text(ohlcv_rows(scale=2.0)))
    write(tmp_path, "SPY.csv", csv_text(ohlcv_rows(scale=3.0)))
    (prices, bench), notes = load(tmp_path, benchmark="SPY")
    assert prices.tickers == ["AAA", "BBB"] and prices.available == {"open", "high", "low", "close", "volume"}
    assert notes == []
    want = pd.DataFrame(ohlcv_rows(scale=2.0), columns=["date", "open", "high", "low", "close", "volume"])
    np.testing.assert_allclose(prices.frame("BBB").to_numpy(), want.iloc[:, 1:].to_numpy(float))
    assert list(prices.dates) == list(DAYS)
    np.testing.assert_allclose(bench.to_numpy(), [3.0 * (100 + i) for i in range(30)])
    assert bench.name == "SPY"


def test_adj_close_scales_ohlc_by_adj_over_close(tmp_path):
    rows = [r + (r[4] * 0.5 if i < 10 else r[4],) for i, r in enumerate(ohlcv_rows())]  # a 2:1 split on day 10
    write(tmp_path, "AAA.csv", csv_text(rows, "date,open,high,low,close,volume,Adj Close"))
    (prices, _), _ = load(tmp_path)
    frame = prices.frame("AAA")
    for i, r in enumerate(rows):
        factor = r[6] / r[4]
        np.testing.assert_allclose(
            frame.iloc[i][["open", "high", "low", "close"]].to_numpy(float), np.array(r[1:5], float) * factor
        )
        assert frame.iloc[i]["volume"] == r[5]


def test_close_only_folder_has_close_only_panel(tmp_path):
    write(tmp_path, "AAA.csv", csv_text([(r[0], r[4]) for r in ohlcv_rows()], "Date,Close"))
    (prices, bench), _ = load(tmp_path)
    assert prices.available == {"close"} and bench is None
    np.testing.assert_array_equal(prices["open"].to_numpy(), prices.close.to_numpy())  # panel convention
    assert prices["volume"].isna().all().all()


def test_mixed_fields_use_the_intersection_and_say_so(tmp_path):
    write(tmp_path, "AAA.csv", csv_text(ohlcv_rows()))
    write(tmp_path, "BBB.csv", csv_text([(r[0], r[4]) for r in ohlcv_rows()], "Date,Close"))
    (prices, _), notes = load(tmp_path)
    assert prices.available == {"close"}
    assert any("disagree on their fields; kept only ['close']" in n and "['BBB']" in n for n in notes)


def test_tickers_start_on_different_dates_are_nan_before_they_start(tmp_path):
    write(tmp_path, "AAA.csv", csv_text(ohlcv_rows()))
    write(tmp_path, "NEW.csv", csv_text(ohlcv_rows(n=20, start=10)))
    (prices, _), _ = load(tmp_path)
    assert prices.close["NEW"].iloc[:10].isna().all() and prices.close["NEW"].iloc[10:].notna().all()
    assert len(prices.frame("NEW")) == 20


def test_yfinance_to_csv_layout_is_read(tmp_path):
    yf = pd.read_csv(FIXTURE, header=[0, 1], index_col=0, parse_dates=True)
    yf.loc[:, yf.columns.get_level_values(1) == "AAPL"].to_csv(tmp_path / "AAPL.csv")  # what users save
    (prices, _), _ = load(tmp_path)
    np.testing.assert_array_equal(prices.close["AAPL"].to_numpy(), yf[("Close", "AAPL")].to_numpy())
    np.testing.assert_array_equal(prices["volume"]["AAPL"].to_numpy(), yf[("Volume", "AAPL")].to_numpy())


def test_select_tickers(tmp_path):
    for t in ("AAA", "BBB", "CCC"):
        write(tmp_path, f"{t}.csv", csv_text(ohlcv_rows()))
    (prices, bench), _ = load(tmp_path, tickers=["CCC", "AAA"], benchmark="BBB")
    assert prices.tickers == ["CCC", "AAA"] and bench.name == "BBB"


# --- repairs (warning, not error) --------------------------------------------------------------
def test_exact_duplicate_rows_are_dropped_with_a_warning(tmp_path):
    rows = ohlcv_rows()
    write(tmp_path, "AAA.csv", csv_text(rows[:5] + [rows[4]] + rows[5:]))
    (prices, _), notes = load(tmp_path)
    assert len(prices.frame("AAA")) == 30
    assert any("AAA.csv: dropped 1 exact duplicate row(s) (line 7)" in n for n in notes)


def test_newest_first_file_is_reversed_with_a_warning(tmp_path):
    write(tmp_path, "AAA.csv", csv_text(ohlcv_rows()[::-1]))
    (prices, _), notes = load(tmp_path)
    np.testing.assert_array_equal(prices.close["AAA"].to_numpy(), [100.0 + i for i in range(30)])
    assert any("newest-first; reversed" in n for n in notes)


def test_rows_without_any_price_are_dropped_with_a_warning(tmp_path):
    rows = ohlcv_rows()
    rows[3] = (rows[3][0], "null", "null", "null", "null", "null")
    write(tmp_path, "AAA.csv", csv_text(rows))
    (prices, _), notes = load(tmp_path)
    assert len(prices.frame("AAA")) == 29 and any("dropped 1 row(s) with no prices (line 5)" in n for n in notes)


def test_non_csv_clutter_is_ignored_with_a_warning(tmp_path):
    write(tmp_path, "AAA.csv", csv_text(ohlcv_rows()))
    write(tmp_path, "notes.txt", "x")
    write(tmp_path, ".DS_Store", "x")
    (tmp_path / "old").mkdir()
    (prices, _), notes = load(tmp_path)
    assert prices.tickers == ["AAA"]
    assert any("ignored 2 non-CSV entries: ['notes.txt', 'old/']" in n for n in notes)


# --- bad inputs: (case, file content, expected message parts) ----------------------------------
ROWS = ohlcv_rows()
HEADER = "Date,Open,High,Low,Close,Volume"


def _with(i, col, value):
    rows = [list(r) for r in ROWS]
    rows[i][col] = value
    return csv_text(rows)


BAD_INPUTS = [
    (
        "missing column",
        csv_text([r[:4] + r[5:] for r in ROWS], "Date,Open,High,Low,Volume"),
        [
            "missing column(s) ['Close']",
            "found ['Date', 'Open', 'High', 'Low', 'Volume']",
            "expected Date,Open,High,Low,Close,Volume",
        ],
    ),
    (
        "misnamed column",
        csv_text(ROWS, "Date,Open,Hgh,Low,Close,Volume"),
        ["column 'Hgh' is not recognised (did you mean 'High'?)"],
    ),
    ("no date column", csv_text([r[1:] for r in ROWS], "Open,High,Low,Close,Volume"), ["missing column(s) ['Date']"]),
    (
        "unparseable date",
        _with(6, 0, "2021-13-45"),
        ["line 8, column Date: cannot read '2021-13-45' as a date", "YYYY-MM-DD"],
    ),
    ("timezone-aware date", _with(0, 0, "2021-01-04 00:00:00-05:00"), ["line 2, column Date", "carries a timezone"]),
    ("intraday timestamp", _with(2, 0, "2021-01-06 09:30"), ["line 4, column Date", "has a time of day"]),
    (
        "unsorted dates",
        csv_text([ROWS[0], ROWS[2], ROWS[1]] + ROWS[3:]),
        ["line 4, column Date: 2021-01-05 comes after 2021-01-06 (line 3)", "sort the rows"],
    ),
    (
        "conflicting duplicate dates",
        csv_text(ROWS[:5] + [ROWS[4][:4] + (999,) + ROWS[4][5:]] + ROWS[5:]),
        ["line 6 and line 7, column Close", "2021-01-08 appears twice with different values (104 vs 999)"],
    ),
    ("non-numeric price", _with(9, 4, "abc"), ["line 11, column Close: 'abc' is not a number"]),
    ("empty price in a row", _with(9, 2, ""), ["line 11, column High: empty price"]),
    ("zero price", _with(3, 1, 0), ["line 5, column Open: 0 (price must be positive)"]),
    ("negative price", _with(3, 3, -5), ["line 5, column Low: -5 (price must be positive)"]),
    ("infinite price", _with(12, 4, "inf"), ["line 14, column Close: infinite value"]),
    ("negative volume", _with(12, 5, -1), ["line 14, column Volume: -1 (negative volume)"]),
    (
        "gap longer than max_gap_days",
        csv_text(
            ROWS[:10]
            + [(d,) + r[1:] for d, r in zip(pd.bdate_range("2021-03-01", periods=20).strftime("%Y-%m-%d"), ROWS[10:])]
        ),
        ["gap of 45 calendar days between 2021-01-15 (line 11) and 2021-03-01 (line 12)", "max_gap_days=10"],
    ),
    ("fewer rows than min_rows", csv_text(ROWS[:3]), ["only 3 rows of prices, fewer than min_rows=5", "warm-up"]),
    ("header but no rows (no data)", HEADER + "\n", ["has column names but no rows", "no data"]),
    ("empty file", "", ["the file is empty", "no data"]),
    ("ragged row", csv_text(ROWS) + "2021-02-20,1,2,3,4,5,6,7\n", ["cannot parse the CSV", "line 32"]),
]


@pytest.mark.parametrize("case, text, parts", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_csv_input_gets_a_message_naming_file_row_and_column(tmp_path, case, text, parts):
    write(tmp_path, "GOOD.csv", csv_text(ROWS))
    write(tmp_path, "BAD.csv", text)
    with pytest.raises(DataError) as info:
        load(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "BAD.csv") in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def test_binary_file_is_reported_as_unreadable(tmp_path):
    (tmp_path / "BAD.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(DataError, match=r"BAD.csv: not a text CSV file .*export it again as a UTF-8 CSV"):
        load(tmp_path)


def test_unreadable_path_is_reported(tmp_path):
    (tmp_path / "DIR.csv").mkdir()  # a folder named like a CSV is clutter, not a ticker
    write(tmp_path, "AAA.csv", csv_text(ROWS))
    with pytest.raises(DataError, match=r"cannot read the file"):
        read_price_csv(tmp_path / "DIR.csv")


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match=r"no \.csv files \(it is empty\); export each ticker as TICKER.csv"):
        load(tmp_path)


def test_folder_with_only_clutter(tmp_path):
    write(tmp_path, "prices.xlsx", "x")
    with pytest.raises(DataError, match=r"no \.csv files \(it holds only \['prices.xlsx'\]\)"):
        load(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"nope: folder does not exist"):
        load(tmp_path / "nope")


def test_benchmark_not_in_folder_lists_what_is_there(tmp_path):
    write(tmp_path, "AAA.csv", csv_text(ROWS))
    write(tmp_path, "BBB.csv", csv_text(ROWS))
    with pytest.raises(DataError, match=r"benchmark 'SPY' has no file SPY.csv; the folder has \['AAA', 'BBB'\]"):
        load(tmp_path, benchmark="SPY")


def test_requested_ticker_not_in_folder(tmp_path):
    write(tmp_path, "AAA.csv", csv_text(ROWS))
    with pytest.raises(DataError, match=r"no CSV file for ticker\(s\) \['ZZZ'\]; the folder has \['AAA'\]"):
        load(tmp_path, tickers=["AAA", "ZZZ"])


def test_same_ticker_twice_in_different_case(tmp_path):
    write(tmp_path, "AAA.csv", csv_text(ROWS))
    write(tmp_path, "aaa.csv", csv_text(ROWS))
    with pytest.raises(DataError, match=r"are the same ticker; keep one of them"):
        load(tmp_path)


def test_on_error_skip_leaves_bad_files_out_and_names_them(tmp_path):
    write(tmp_path, "AAA.csv", csv_text(ROWS))
    write(tmp_path, "BAD.csv", _with(3, 1, 0))
    (prices, _), notes = load(tmp_path, on_error="skip")
    assert prices.tickers == ["AAA"] and any("left out 1 ticker(s)" in n and "BAD.csv, line 5" in n for n in notes)


def test_validate_names_dates_for_frames_without_line_numbers():
    frame = pd.DataFrame({"Close": [1.0, -2.0, 3.0]}, index=pd.DatetimeIndex(DAYS[:3], name="Date"))
    with pytest.raises(DataError, match=r"yfinance:XYZ, row 2021-01-05, column Close: -2"):
        validate_ohlcv(frame, "yfinance:XYZ", min_rows=1)
    aware = frame.abs().tz_localize("America/New_York")
    with pytest.raises(DataError, match=r"yfinance:XYZ, column Date: dates carry the timezone America/New_York"):
        validate_ohlcv(aware, "yfinance:XYZ", min_rows=1)


def test_validate_accepts_case_and_spelling_variants_and_is_pure():
    raw = pd.DataFrame(
        {
            "DATE": ["2021-01-04", "2021-01-05"],
            "close": ["10", "11"],
            " adj_close ": ["5", "5.5"],
            "Dividends": ["0", "0"],
        }
    )
    before = raw.copy()
    clean, notes = validate_ohlcv(raw, "x.csv", min_rows=1, first_line=2)
    pd.testing.assert_frame_equal(raw, before)  # input untouched
    assert list(clean.columns) == ["close"] and clean["close"].tolist() == [5.0, 5.5]
    assert notes == ["x.csv: ignored column 'Dividends'"]
