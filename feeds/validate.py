"""Checks of one ticker's OHLCV frame: pure functions, no I/O.

`validate_ohlcv(raw, source)` takes a frame as it was read (a CSV's columns, with a date column or
a DatetimeIndex) and returns `(clean, warnings)`: `clean` has a tz-naive DatetimeIndex named
``date`` and lowercase float columns (a subset of open, high, low, close, volume, always close);
`warnings` lists the repairs made. Anything it cannot repair safely raises DataError naming the
source ("prices/AAPL.csv" or "yfinance:AAPL"), the row (CSV line number, or the date) and the
column, and saying what to fix.

Repairs (each reported in `warnings`): exact duplicate rows dropped; rows where every price is
empty dropped (old Yahoo CSVs wrote "null" rows on holidays); a file sorted newest-first (common
vendor export) reversed; unknown extra columns (Dividends, Stock Splits) ignored. Not a repair but
the documented reading: with an Adj Close column, OHLC are multiplied by Adj Close / Close (volume
is kept). Everything else (unsorted dates, conflicting duplicates, bad, empty, infinite or
non-positive prices, negative volume, long gaps, too few rows, timezones, intraday times, dates
written DD/MM/YYYY) raises.

Suspicious but usable data is let through with a SuspiciousDataWarning: a close that moves by
more than MAX_DAILY_MOVE times (or less than 1/MAX_DAILY_MOVE) in one day, a file that ends more
than EARLY_END_DAYS before the latest file of the same folder.
"""

from __future__ import annotations

import difflib
import re
import warnings as _warnings

import numpy as np
import pandas as pd

from core.errors import DataError

PRICE_FIELDS = ("open", "high", "low", "close")
FIELDS = PRICE_FIELDS + ("volume",)

# The longest market-wide closure in the embedded 1990-2022 S&P 500 data is 7 calendar days
# (2001-09-10 -> 2001-09-17); weekends plus holidays give at most 5. A gap longer than 10 calendar
# days therefore means missing bars (or a trading halt), not a holiday.
DEFAULT_MAX_GAP_DAYS = 10
# One trading year: room for a 200-day moving average plus a 30-day model window.
DEFAULT_MIN_ROWS = 252
# The embedded 20 stocks' one-day close ratios, 1990-2022, lie within 0.33 .. 1.53; a move beyond
# 5x or below 1/5 in a day is a typo or an unadjusted split far more often than news.
MAX_DAILY_MOVE = 5.0
# A file that ends more than a year before the newest one is a stale export (or a delisting).
EARLY_END_DAYS = 365

EXPECTED_HINT = "expected Date,Open,High,Low,Close,Volume (Adj Close optional) or Date,Close"

# Accepted spellings, compared after lowercasing and dropping spaces, '_' and '-'.
_ALIASES = {
    "date": "date",
    "datetime": "date",
    "timestamp": "date",
    "time": "date",
    "day": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "adjclose*": "adj_close",
}
# Columns that appear in yfinance/vendor exports and are safely ignored.
_IGNORED = {"dividends", "stocksplits", "capitalgains", "repaireddata", "ticker", "symbol"}


class DataRepairWarning(UserWarning):
    """A data problem that was repaired (and how); emitted by the loaders."""


class SuspiciousDataWarning(UserWarning):
    """Data that was kept as it is but looks wrong: an extreme daily move, a file that ends early."""


class Suspicious(str):
    """A note about suspicious data: emit() shows it as a SuspiciousDataWarning."""


def emit(messages) -> None:
    """Show notes as warnings (once each): a Suspicious note as SuspiciousDataWarning, any other as
    DataRepairWarning; loaders call this at the edge."""
    for message in messages:
        category = SuspiciousDataWarning if isinstance(message, Suspicious) else DataRepairWarning
        _warnings.warn(str(message), category, stacklevel=3)


def extreme_moves(close: pd.Series, source: str, bound: float = MAX_DAILY_MOVE) -> list[str]:
    """A Suspicious note naming the days whose close is more than `bound` times the previous
    close, or less than 1/bound of it (the first 5 such days), or nothing."""
    close = pd.Series(close, dtype="float64").dropna()
    ratio = (close / close.shift(1)).to_numpy()
    days = np.flatnonzero((ratio > bound) | (ratio < 1.0 / bound))
    if not len(days):
        return []
    shown = "; ".join(
        f"{_day(close.index[i - 1])} {close.iloc[i - 1]:g} -> {_day(close.index[i])} {close.iloc[i]:g} "
        f"(x{ratio[i]:.3g})"
        for i in days[:5]
    )
    return [
        Suspicious(
            f"{source}: close moved more than {bound:g}x (or below 1/{bound:g}) in one day on {len(days)} "
            f"day(s): {shown}; check for a price typo or an unadjusted split"
        )
    ]


def _day(label):
    return label.date() if hasattr(label, "date") else label


def early_ends(last_days: dict, where: str, days: int = EARLY_END_DAYS) -> list[str]:
    """A Suspicious note naming the sources (e.g. files) whose last date, in `last_days` {source:
    Timestamp}, is more than `days` calendar days before the newest one, or nothing."""
    if len(last_days) < 2:
        return []
    newest = max(last_days.values())
    early = sorted((d, s) for s, d in last_days.items() if (newest - d).days > days)
    if not early:
        return []
    shown = ", ".join(f"{s} (last {d.date()})" for d, s in early[:10])
    more = f" and {len(early) - 10} more" if len(early) > 10 else ""
    return [
        Suspicious(
            f"{where}: {len(early)} file(s) end more than {days} days before the newest ({newest.date()}): "
            f"{shown}{more}; a stale export or a delisting? Their stocks are not traded after their last date"
        )
    ]


def _key(name) -> str:
    return re.sub(r"[\s_\-]", "", str(name).strip().lower())


def canonical_columns(columns, source: str) -> tuple[dict, list[str]]:
    """Map the given column names to canonical ones; raise on a missing or misnamed column.

    Returns ({original name: canonical name}, warnings). Names are case-insensitive; 'Adj Close'
    (any spacing/case) maps to 'adj_close'.
    """
    mapping, unknown, notes = {}, [], []
    for col in columns:
        key = _key(col)
        if key in _ALIASES:
            canon = _ALIASES[key]
            if canon in mapping.values():
                raise DataError(
                    f"{source}: columns {[c for c in columns if _ALIASES.get(_key(c)) == canon]} "
                    f"all mean {canon!r}; keep only one of them"
                )
            mapping[col] = canon
        elif key in _IGNORED or key.startswith("unnamed"):
            notes.append(f"{source}: ignored column {col!r}")
        else:
            unknown.append(col)
    found = list(columns)
    for col in unknown:
        close = difflib.get_close_matches(_key(col), list(_ALIASES), n=1, cutoff=0.6)
        if close:
            raise DataError(
                f"{source}: column {col!r} is not recognised (did you mean "
                f"{_pretty(_ALIASES[close[0]])!r}?); found {found}; {EXPECTED_HINT}"
            )
        notes.append(f"{source}: ignored unrecognised column {col!r}")
    missing = [_pretty(c) for c in ("date", "close") if c not in mapping.values()]
    if "close" in missing and "adj_close" in mapping.values():
        missing.remove("Close")  # Date,Adj Close: the adjusted close is the close
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; found {found}; {EXPECTED_HINT}")
    return mapping, notes


def _pretty(canon: str) -> str:
    return "Adj Close" if canon == "adj_close" else canon.capitalize()


def validate_ohlcv(
    raw: pd.DataFrame,
    source: str,
    *,
    max_gap_days: float | None = DEFAULT_MAX_GAP_DAYS,
    min_rows: int = DEFAULT_MIN_ROWS,
    first_line: int | None = None,
    adjust: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Check and clean one ticker's prices. See the module docstring for what is repaired.

    raw: the frame as read. Its dates are a column (Date/Datetime/..., any case) or the index.
    first_line: the file line of raw's first row (2 for a CSV with one header line); rows are then
        named "line N", otherwise by their date.
    max_gap_days: largest allowed calendar-day gap between consecutive rows (None: no check).
    min_rows: fewest rows allowed after cleaning (the warm-up the model needs).
    adjust: with an Adj Close column, scale OHLC by Adj Close / Close (volume is left as is).
    """
    frame, notes = _canonical_frame(raw, source)
    line = (lambda i: f"line {first_line + i}") if first_line is not None else None
    dates = _parse_dates(frame["date"], source, line)
    if line is None:
        line = lambda i, parsed=dates: f"row {parsed[i].date()}"  # noqa: E731  (original row order)
    values = {col: _parse_numbers(frame[col], col, source, line) for col in frame.columns if col != "date"}

    keep, value_notes = _check_values(values, source, line)
    notes += value_notes
    rows = np.flatnonzero(keep)
    dates, values = dates[rows], {c: v[rows] for c, v in values.items()}

    order_notes, order = _check_order(dates, source, lambda j: line(rows[j]))
    notes += order_notes
    if order is not None:
        dates, values, rows = dates[order], {c: v[order] for c, v in values.items()}, rows[order]

    keep2, dup_notes = _check_duplicates(dates, values, source, lambda j: line(rows[j]))
    notes += dup_notes
    dates, values, rows = dates[keep2], {c: v[keep2] for c, v in values.items()}, rows[keep2]
    _check_length(dates, rows, source, line, max_gap_days, min_rows)

    clean = pd.DataFrame(values, index=pd.DatetimeIndex(dates, name="date"))
    if "adj_close" in clean:
        clean, adj_notes = _apply_adj_close(clean, source, adjust)
        notes += adj_notes
    columns = [c for c in FIELDS if c in clean]
    notes += extreme_moves(clean["close"], source)
    return clean[columns].astype("float64"), notes


def _canonical_frame(raw: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """The frame with its dates as a "date" column and canonical column names (date, open, ...)."""
    if raw is None or len(raw.columns) == 0 and len(raw) == 0:
        raise DataError(f"{source}: no data at all (no columns, no rows); give Date,Close at least")
    frame = raw.copy()
    dated_index = isinstance(frame.index, pd.DatetimeIndex) or _ALIASES.get(_key(frame.index.name)) == "date"
    if dated_index and not any(_ALIASES.get(_key(c)) == "date" for c in frame.columns):
        frame = frame.reset_index()  # dates live in the index (yfinance, a parquet cache)
        frame = frame.rename(columns={frame.columns[0]: "Date"})
    mapping, notes = canonical_columns(list(frame.columns), source)
    frame = frame[list(mapping)].rename(columns=mapping)
    if len(frame) == 0:
        raise DataError(
            f"{source}: has column names but no rows of prices; the ticker has no data "
            f"(remove the file or download its prices again)"
        )
    return frame, notes


def _check_values(values: dict, source: str, line) -> tuple[np.ndarray, list[str]]:
    """The rows to keep (a row with no price at all is a placeholder, dropped with a note) after
    refusing an empty price beside given ones, an infinite value, a price <= 0 or a volume < 0."""
    notes = []
    prices = [c for c in values if c != "volume"]
    # Rows with no price at all are placeholders (holidays in old Yahoo CSVs): drop them.
    all_empty = np.logical_and.reduce([np.isnan(values[c]) for c in prices])
    if all_empty.any():
        notes.append(
            f"{source}: dropped {int(all_empty.sum())} row(s) with no prices "
            f"({', '.join(line(i) for i in np.flatnonzero(all_empty)[:5])})"
        )
    keep = ~all_empty
    for col in prices:
        bad = np.flatnonzero(keep & np.isnan(values[col]))
        if len(bad):
            raise DataError(
                f"{source}, {line(bad[0])}, column {_pretty(col)}: empty price while other "
                f"prices of that row are given; fill it in or remove the row"
            )
    for col in values:
        v = values[col]
        bad_inf = np.flatnonzero(keep & np.isinf(v))
        if len(bad_inf):
            raise DataError(
                f"{source}, {line(bad_inf[0])}, column {_pretty(col)}: infinite value; "
                f"replace it with the real {_pretty(col).lower()}"
            )
        floor_ok = (v >= 0) if col == "volume" else (v > 0)
        bad = np.flatnonzero(keep & ~np.isnan(v) & ~floor_ok)
        if len(bad):
            what = "negative volume" if col == "volume" else "price must be positive"
            raise DataError(
                f"{source}, {line(bad[0])}, column {_pretty(col)}: {v[bad[0]]:g} ({what}); correct or remove the row"
            )
    if "volume" in values and np.isnan(values["volume"][keep]).any():
        notes.append(f"{source}: {int(np.isnan(values['volume'][keep]).sum())} row(s) without volume")
    return keep, notes


def _check_length(dates: pd.DatetimeIndex, rows: np.ndarray, source: str, line, max_gap_days, min_rows) -> None:
    """Refuse a gap longer than max_gap_days between consecutive rows, and fewer than min_rows rows."""
    if max_gap_days is not None and len(dates) > 1:
        gaps = np.diff(dates.asi8) / 86_400e9
        worst = int(np.argmax(gaps))
        if gaps[worst] > max_gap_days:
            raise DataError(
                f"{source}: gap of {gaps[worst]:.0f} calendar days between {dates[worst].date()} "
                f"({line(rows[worst])}) and {dates[worst + 1].date()} ({line(rows[worst + 1])}) "
                f"exceeds max_gap_days={max_gap_days}; fill in the missing bars or raise max_gap_days"
            )
    if len(dates) == 0:
        raise DataError(f"{source}: no row has a price; the ticker has no data (remove it or get its prices again)")
    if len(dates) < min_rows:
        raise DataError(
            f"{source}: only {len(dates)} rows of prices, fewer than min_rows={min_rows} "
            f"needed for warm-up; give a longer history or lower min_rows"
        )


# A time of day followed by a zone: "2020-01-02 00:00:00-05:00", "2020-01-02T00:00Z", "... UTC".
_TZ_SUFFIX = r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d\d:?\d\d)$"


def _parse_dates(column: pd.Series, source: str, line) -> pd.DatetimeIndex:
    name = lambda i: line(i) if line else f"row {i}"  # noqa: E731
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        raise DataError(
            f"{source}, column Date: dates carry the timezone {column.dt.tz}; "
            f"give plain dates (YYYY-MM-DD) or convert with .tz_localize(None)"
        )
    text, original = None, column
    if not pd.api.types.is_datetime64_any_dtype(column):
        text = column.astype(str).str.strip()
        has_tz = np.zeros(len(text), dtype=bool)
        longer = (text.str.len() > 10).to_numpy(dtype=bool)  # only strings with a time part can carry a zone
        if longer.any():
            has_tz[longer] = text[longer].str.contains(_TZ_SUFFIX, regex=True, na=False).to_numpy(dtype=bool)
        column = text
    if text is not None:
        _refuse_day_first(text, source, name)
    if text is not None and has_tz.any():
        i = int(np.flatnonzero(has_tz)[0])
        raise DataError(
            f"{source}, {name(i)}, column Date: {text.iloc[i]!r} carries a timezone; give plain "
            f"dates (YYYY-MM-DD) in the exchange's local calendar"
        )
    try:
        parsed = pd.to_datetime(column, errors="coerce", format="ISO8601" if text is not None else None)
    except (ValueError, TypeError):
        parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    if parsed.isna().any():  # not ISO: let pandas infer one format for the whole column
        try:
            retry = pd.to_datetime(column, errors="coerce", format="mixed")
        except (ValueError, TypeError):
            retry = parsed
        if retry.notna().sum() > parsed.notna().sum():
            parsed = retry
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"{source}, {name(bad[0])}, column Date: cannot read {_shown(original.iloc[bad[0]])!r} as a date; "
            f"write dates as YYYY-MM-DD"
        )
    index = pd.DatetimeIndex(parsed)
    if index.tz is not None:
        raise DataError(
            f"{source}, column Date: dates carry the timezone {index.tz}; "
            f"give plain dates (YYYY-MM-DD) or convert with .tz_localize(None)"
        )
    intraday = np.flatnonzero(index != index.normalize())
    if len(intraday):
        raise DataError(
            f"{source}, {name(intraday[0])}, column Date: {index[intraday[0]]} has a time of day; "
            f"this project reads daily bars, one row per date"
        )
    return index.as_unit("ns")


_SLASHED = r"(\d{1,2})([/.])(\d{1,2})\2(\d{4})"


def slashed_date_order(text: pd.Series) -> str | None:
    """ "DD/MM/YYYY" or "MM/DD/YYYY" when every date is written NN/NN/YYYY (or with dots) and the
    column says which: a first field above 12 is a day, a second one above 12 is a day; when no
    field is above 12, the reading whose dates are in order (either way round). None otherwise
    (not that shape, or both readings equally plausible)."""
    if not len(text) or not re.fullmatch(_SLASHED, str(text.iloc[0])) or not text.str.fullmatch(_SLASHED).all():
        return None
    fields = text.str.extract(_SLASHED)
    first, second = fields[0].astype(int), fields[2].astype(int)
    if (first > 12).any() and (second > 12).any():
        return "mixed"
    if (first > 12).any():
        return "DD/MM/YYYY"
    if (second > 12).any():
        return "MM/DD/YYYY"
    year = fields[3].astype(int)
    sorted_ = {}
    for label, month, day in (("MM/DD/YYYY", first, second), ("DD/MM/YYYY", second, first)):
        ordinal = (year * 10000 + month * 100 + day).to_numpy()
        sorted_[label] = bool(np.all(np.diff(ordinal) >= 0) or np.all(np.diff(ordinal) <= 0))
    if sorted_["DD/MM/YYYY"] and not sorted_["MM/DD/YYYY"]:
        return "DD/MM/YYYY"
    return None


def _refuse_day_first(text: pd.Series, source: str, name) -> None:
    """DataError for dates written day first (pandas would read them month first where it can)."""
    order = slashed_date_order(text)
    if order not in ("DD/MM/YYYY", "mixed"):
        return
    first = text.str.extract(_SLASHED)[0].astype(int)
    i = int(np.flatnonzero(first.to_numpy() > 12)[0]) if (first > 12).any() else 0
    what = "are written DD/MM/YYYY (day first)" if order == "DD/MM/YYYY" else "mix DD/MM/YYYY and MM/DD/YYYY"
    raise DataError(
        f"{source}, column Date: the dates {what}, e.g. {text.iloc[i]!r} ({name(i)}); read month first "
        f"they would be wrong and out of order. Write them as YYYY-MM-DD, e.g. with pandas: "
        f"pd.to_datetime(df['Date'], dayfirst=True).dt.strftime('%Y-%m-%d')"
    )


_MISSING_TOKENS = {"", "null", "nan", "na", "n/a", "-", "none"}


def _shown(value):
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _parse_numbers(column: pd.Series, col: str, source: str, line) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)  # fast path: already numbers
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    suspects = np.flatnonzero(np.isnan(numbers))
    if not len(suspects):
        return numbers
    # Only the cells that did not parse are looked at as text: missing tokens or "1,234.5".
    bad = []
    for i in suspects:
        value = column.iloc[i]
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            continue
        text = str(value).strip()
        if text.lower() in _MISSING_TOKENS:
            continue
        try:
            numbers[i] = float(text.replace(",", ""))
        except ValueError:
            bad.append(i)
    if len(bad):
        raise DataError(
            f"{source}, {line(bad[0])}, column {_pretty(col)}: {column.iloc[bad[0]]!r} is not a number; "
            f"write plain numbers such as 123.45"
        )
    return numbers


def _check_order(dates: pd.DatetimeIndex, source: str, line_of):
    """Return (notes, order or None). Newest-first files are reversed; any other disorder raises."""
    if dates.is_monotonic_increasing:
        return [], None
    if dates.is_monotonic_decreasing and len(dates) > 1:
        order = np.arange(len(dates))[::-1]
        return [f"{source}: dates run newest-first; reversed them to oldest-first"], order
    step = np.diff(dates.asi8)
    i = int(np.flatnonzero(step < 0)[0])
    raise DataError(
        f"{source}, {line_of(i + 1)}, column Date: {dates[i + 1].date()} comes after "
        f"{dates[i].date()} ({line_of(i)}); sort the rows by date, oldest first"
    )


def _check_duplicates(dates: pd.DatetimeIndex, values: dict, source: str, line_of):
    dup = np.flatnonzero(np.diff(dates.asi8) == 0) + 1  # rows equal to their predecessor's date
    keep = np.ones(len(dates), dtype=bool)
    if not len(dup):
        return keep, []
    for j in dup:
        for col, v in values.items():
            a, b = v[j - 1], v[j]
            if not (a == b or (np.isnan(a) and np.isnan(b))):
                raise DataError(
                    f"{source}, {line_of(j - 1)} and {line_of(j)}, column {_pretty(col)}: the date "
                    f"{dates[j].date()} appears twice with different values ({a:g} vs {b:g}); "
                    f"keep only the right row"
                )
        keep[j] = False
    return keep, [f"{source}: dropped {len(dup)} exact duplicate row(s) ({', '.join(line_of(j) for j in dup[:5])})"]


def _apply_adj_close(clean: pd.DataFrame, source: str, adjust: bool):
    adj = clean.pop("adj_close")
    if "close" not in clean:
        return clean.assign(close=adj), []
    if not adjust:
        return clean, [f"{source}: ignored the Adj Close column (adjust=False)"]
    factor = adj / clean["close"]
    prices = [c for c in PRICE_FIELDS if c in clean]
    clean[prices] = clean[prices].mul(factor, axis=0)  # expected behaviour, not a repair: no note
    return clean, []


def read_each(tickers, read, on_error: str, where) -> tuple[dict, list[str]]:
    """{ticker: read(ticker)} for every ticker; on_error "raise" stops at the first DataError,
    "skip" leaves that ticker out and says so in the returned notes."""
    if on_error not in ("raise", "skip"):
        raise DataError(f"on_error={on_error!r}: use 'raise' or 'skip'")
    frames, skipped = {}, []
    for ticker in tickers:
        try:
            frames[ticker] = read(ticker)
        except DataError as error:
            if on_error == "raise":
                raise
            skipped.append(str(error))
    notes = (
        [f"{where}: left out {len(skipped)} ticker(s) that failed validation: " + " | ".join(skipped)]
        if skipped
        else []
    )
    if not frames:
        first = skipped[0] if skipped else "none given"
        raise DataError(f"{where}: no usable stock prices; first problem: {first}")
    return frames, notes
