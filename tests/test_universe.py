"""feeds.universe: the shipped constituents list and point-in-time membership."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from feeds.universe import CONSTITUENTS_FILE, Membership, load_constituents, yahoo_symbols

FIXTURE = Path(__file__).parent / "fixtures" / "feeds_membership.csv"


def test_constituents_are_the_497_seed_members_without_spy_and_vix():
    tickers, as_of = load_constituents()
    assert len(tickers) == 497 and len(set(tickers)) == 497
    assert "SPY" not in tickers and "^VIX" not in tickers
    assert tickers[:3] == ["MMM", "AOS", "ABT"] and "BRK.B" in tickers and "BF.B" in tickers
    assert as_of == "2026-01-01" and pd.Timestamp(as_of).year == 2026
    # brute force: every non-comment line after the header is one ticker
    lines = [x for x in CONSTITUENTS_FILE.read_text().splitlines() if x and not x.startswith("#")][1:]
    assert [x.split(",")[0] for x in lines] == tickers


def test_yahoo_symbols_map_only_share_classes():
    assert yahoo_symbols() == {"BRK.B": "BRK-B", "BF.B": "BF-B"}


def test_membership_from_csv_matches_a_brute_force_reading():
    members = Membership.from_csv(FIXTURE)
    assert members.tickers == ["AAPL", "GPS", "TSLA", "XLNX"]
    assert members.is_member("TSLA", "2020-12-21") and not members.is_member("TSLA", "2020-12-18")
    assert members.is_member("XLNX", "2022-02-14") and not members.is_member("XLNX", "2022-02-15")  # end inclusive
    assert not members.is_member("GPS", "2012-06-01") and members.is_member("GPS", "2013-01-02")  # left, rejoined
    assert not members.is_member("NOPE", "2020-01-02")

    spans = {
        "AAPL": [("1982-11-30", "2262-01-01")],
        "TSLA": [("2020-12-21", "2262-01-01")],
        "XLNX": [("1999-11-08", "2022-02-14")],
        "GPS": [("1986-01-01", "2011-06-30"), ("2013-01-02", "2019-12-20")],
    }
    dates = pd.bdate_range("2010-01-01", "2023-12-31")
    tickers = ["TSLA", "GPS", "XLNX", "AAPL", "NOPE"]
    mask = members.mask(dates, tickers)
    assert list(mask.columns) == tickers and mask.index.equals(dates) and mask.dtypes.eq(bool).all()
    for t in tickers:
        want = [any(pd.Timestamp(s) <= d <= pd.Timestamp(e) for s, e in spans.get(t, [])) for d in dates]
        np.testing.assert_array_equal(mask[t].to_numpy(), want)
        sample = dates[::97]
        assert [members.is_member(t, d) for d in sample] == list(mask.loc[sample, t])
    assert members.members_on("2015-06-01") == ["AAPL", "GPS", "XLNX"]


def test_membership_always():
    members = Membership.always(["A", "B"])
    mask = members.mask(pd.bdate_range("1990-01-01", "2030-01-01"), ["A", "B", "C"])
    assert mask[["A", "B"]].all().all() and not mask["C"].any()
    assert members.is_member("A", "1900-01-01") and not members.is_member("C", "2020-01-01")


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "ticker,start,end\nAAA,2020-05-01,2020-01-01\n",
            r"line 2: start 2020-05-01 is after end 2020-01-01 for AAA; swap them",
        ),
        (
            "# comment\nticker,start,end\nAAA,2020-01-01,\nBBB,2020-31-01,\n",
            r"line 4, column start: cannot read '2020-31-01' as a date; write YYYY-MM-DD",
        ),
        ("ticker,start,end\nAAA,2020-01-01,someday\n", r"line 2, column end: cannot read 'someday'"),
        ("ticker,begin,end\nAAA,2020-01-01,\n", r"missing column\(s\) \['start'\]; found \['ticker', 'begin', 'end'\]"),
        ("ticker,start,end\n,2020-01-01,\n", r"line 2, column ticker: empty ticker"),
        ("ticker,start,end\nAAA,,\n", r"line 2, column start: empty start date"),
        ("ticker,start,end\n", r"no rows"),
        ("", r"membership file is empty"),
    ],
)
def test_membership_errors_name_file_line_and_column(tmp_path, text, message):
    path = tmp_path / "members.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        Membership.from_csv(path)
    assert str(path) in str(info.value)


def test_membership_missing_file(tmp_path):
    with pytest.raises(DataError, match="membership file does not exist"):
        Membership.from_csv(tmp_path / "none.csv")
