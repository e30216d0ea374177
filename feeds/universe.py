"""Which stocks the strategy may hold, and when.

`load_constituents()` gives the shipped list of today's S&P 500 members (the seed's 497 names).
Using today's members over past years is survivorship bias: names that later joined the index are
bought before they were in it, names that dropped out are missing. `Membership` fixes that when a
point-in-time file is at hand:

    members = Membership.from_csv("sp500_history.csv")   # ticker,start,end  (end empty = still in)
    members.is_member("TSLA", "2019-06-03")              # False: TSLA joined on 2020-12-21
    eligible = members.mask(prices.dates, prices.tickers)  # bool date x ticker frame

Both `start` and `end` are inclusive: `end` is the last day the ticker was a member. A ticker may
have several rows (left and rejoined).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import DataError

CONSTITUENTS_FILE = Path(__file__).resolve().parent / "data" / "sp500_constituents.csv"


def _read_commented_csv(path: Path) -> tuple[pd.DataFrame, dict]:
    """A CSV whose leading '# key: value' lines are metadata."""
    text = path.read_text()
    meta = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return pd.read_csv(io.StringIO(text), comment="#", dtype=str, keep_default_na=False), meta


def load_constituents(path=CONSTITUENTS_FILE) -> tuple[list[str], str]:
    """(tickers, as_of date string) of the shipped S&P 500 list (today's members, survivorship-biased)."""
    frame, meta = _read_commented_csv(Path(path))
    if "ticker" not in frame.columns:
        raise DataError(f"{path}: no 'ticker' column; found {list(frame.columns)}")
    as_of = (
        frame["as_of"].iloc[0]
        if "as_of" in frame.columns
        else meta.get("as_of", "").split()[0]
        if meta.get("as_of")
        else ""
    )
    return [t.strip() for t in frame["ticker"] if t.strip()], as_of


def yahoo_symbols(path=CONSTITUENTS_FILE) -> dict[str, str]:
    """{ticker: Yahoo symbol} for the shipped names whose Yahoo spelling differs (BRK.B -> BRK-B)."""
    frame, _ = _read_commented_csv(Path(path))
    if "yahoo_symbol" not in frame.columns:
        return {}
    return {t: y for t, y in zip(frame["ticker"], frame["yahoo_symbol"]) if y and y != t}


class Membership:
    """Point-in-time index membership: for each ticker, the inclusive [start, end] spans it was in."""

    def __init__(self, spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]], source: str = ""):
        self._spans = {t: sorted(s) for t, s in spans.items()}
        self.source = source

    @classmethod
    def from_csv(cls, path) -> "Membership":
        """Read `ticker,start,end` rows (end empty = still a member; several rows per ticker allowed)."""
        path = Path(path)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#", skipinitialspace=True)
        except FileNotFoundError:
            raise DataError(f"{path}: membership file does not exist; give a CSV with ticker,start,end") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: membership file is empty; give a CSV with ticker,start,end") from None
        frame.columns = [str(c).strip().lower() for c in frame.columns]
        missing = [c for c in ("ticker", "start", "end") if c not in frame.columns]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {missing}; found {list(frame.columns)}; expected "
                f"ticker,start,end (end empty = still a member)"
            )
        if frame.empty:
            raise DataError(f"{path}: no rows; give one row per membership span: ticker,start,end")
        line_of = _line_numbers(path)
        spans: dict[str, list] = {}
        for i, row in enumerate(frame.itertuples(index=False)):
            line = f"{path}, line {line_of[i] if i < len(line_of) else i + 2}"
            ticker = str(row.ticker).strip()
            if not ticker:
                raise DataError(f"{line}, column ticker: empty ticker; fill it in or remove the row")
            start = _parse_date(row.start, line, "start")
            if start is None:
                raise DataError(f"{line}, column start: empty start date; give the first day {ticker} was a member")
            end = _parse_date(row.end, line, "end") or pd.Timestamp.max.normalize()
            if start > end:
                raise DataError(
                    f"{line}: start {start.date()} is after end {end.date()} for {ticker}; "
                    f"swap them or fix the dates (end is the last day as a member)"
                )
            spans.setdefault(ticker, []).append((start, end, line))
        for ticker, rows in spans.items():
            _refuse_overlap(ticker, rows)
        return cls({t: [(a, b) for a, b, _ in rows] for t, rows in spans.items()}, source=str(path))

    def check_tickers(self, tickers) -> list[str]:
        """The universe's tickers that `tickers` (the data's stocks) lacks, sorted. DataError when
        it has none of them (a backtest would then never be able to buy anything)."""
        have = set(map(str, tickers))
        unknown = sorted(set(self._spans) - have)
        if unknown and len(unknown) == len(self._spans):
            shown = sorted(have)[:10]
            raise DataError(
                f"{self.source or 'universe'}: none of its {len(unknown)} ticker(s) ({unknown[:10]}) is in the "
                f"data, whose stocks are {shown}{' ...' if len(have) > 10 else ''}; check the spelling "
                f"(tickers are case-sensitive) or give the matching --data"
            )
        return unknown

    @classmethod
    def always(cls, tickers) -> "Membership":
        """Every listed ticker is a member on every date (the survivorship-biased default)."""
        return cls({str(t): [(pd.Timestamp.min.ceil("D"), pd.Timestamp.max.normalize())] for t in tickers}, "always")

    @property
    def tickers(self) -> list[str]:
        return sorted(self._spans)

    def is_member(self, ticker: str, date) -> bool:
        day = pd.Timestamp(date).normalize()
        return any(start <= day <= end for start, end in self._spans.get(ticker, ()))

    def mask(self, dates, tickers) -> pd.DataFrame:
        """Boolean frame (dates x tickers): True where the ticker was a member that day."""
        index = pd.DatetimeIndex(dates).normalize()
        values = index.as_unit("ns").asi8  # pandas 3 ranges may be in us: compare in one unit
        out = np.zeros((len(index), len(tickers)), dtype=bool)
        for j, ticker in enumerate(tickers):
            for start, end in self._spans.get(str(ticker), ()):
                out[:, j] |= (values >= start.as_unit("ns").value) & (values <= end.as_unit("ns").value)
        return pd.DataFrame(out, index=pd.DatetimeIndex(dates), columns=list(tickers))

    def members_on(self, date) -> list[str]:
        return [t for t in self.tickers if self.is_member(t, date)]

    def __repr__(self) -> str:
        return f"Membership({len(self._spans)} tickers, source={self.source!r})"


def _refuse_overlap(ticker: str, rows: list) -> None:
    """DataError when two membership spans of one ticker overlap (a typo: which end is right?)."""
    rows = sorted(rows, key=lambda r: r[0])
    for (s1, e1, line1), (s2, _, line2) in zip(rows, rows[1:]):
        if s2 <= e1:
            end = "open" if e1 == pd.Timestamp.max.normalize() else str(e1.date())
            raise DataError(
                f"{line1} and {line2}: the spans of {ticker} overlap ({s1.date()}..{end} and "
                f"{s2.date()}..); a ticker that left and rejoined needs an end before its next start"
            )


def _parse_date(value, line: str, column: str):
    text = str(value).strip()
    if not text:
        return None
    try:
        day = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise DataError(f"{line}, column {column}: cannot read {text!r} as a date; write YYYY-MM-DD") from None
    if day.tz is not None:
        raise DataError(f"{line}, column {column}: {text!r} carries a timezone; write a plain date YYYY-MM-DD")
    return day.normalize()


def _line_numbers(path: Path) -> list[int]:
    """File line number of each data row (skipping comment and blank lines and the header)."""
    numbers, header_seen = [], False
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            continue
        numbers.append(n)
    return numbers
