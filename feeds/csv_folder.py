"""Prices from a folder of CSV files, one per ticker (file stem = ticker).

Accepted shapes, column names case-insensitive:
- Date,Open,High,Low,Close,Volume  (Adj Close optional: OHLC are then scaled by Adj Close / Close)
- Date,Close                        (close only: the panel's `available` is {"close"})
- the three-line header that `yf.download(...).to_csv()` writes (Price / Ticker / Date rows).

Every file is checked by feeds.validate; the first problem raises DataError naming the file, the
line and the column. Repairs (dropped exact duplicates, reversed newest-first files, ...) are shown
as DataRepairWarning; extreme daily moves and files that end long before the rest as
SuspiciousDataWarning.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.errors import DataError
from feeds.panel import PricePanel
from feeds.validate import (
    DEFAULT_MAX_GAP_DAYS,
    DEFAULT_MIN_ROWS,
    FIELDS,
    early_ends,
    emit,
    read_each,
    validate_ohlcv,
)

CSV_SUFFIXES = (".csv", ".csv.gz")


def load_csv_folder(
    directory,
    benchmark: str | None = None,
    tickers=None,
    *,
    max_gap_days: float | None = DEFAULT_MAX_GAP_DAYS,
    min_rows: int = DEFAULT_MIN_ROWS,
    on_error: str = "raise",
) -> tuple[PricePanel, pd.Series | None]:
    """Load every TICKER.csv of `directory` into a PricePanel; return (prices, benchmark close).

    benchmark: ticker whose file is taken out of the panel and returned as a close Series.
    tickers: load only these (default: every CSV file); the benchmark need not be listed.
    max_gap_days, min_rows: passed to feeds.validate.validate_ohlcv for every file.
    on_error: "raise" (default) stops at the first bad file; "skip" leaves bad stock files out with a
        DataRepairWarning naming each (a bad benchmark file still raises).
    """
    files = csv_files(directory)
    wanted = list(files) if tickers is None else [str(t) for t in tickers]
    missing = [t for t in wanted if t not in files]
    if missing:
        raise DataError(
            f"{directory}: no CSV file for ticker(s) {missing[:10]}; the folder has "
            f"{_listing(files)}; add TICKER.csv files or drop those tickers"
        )
    if benchmark is not None and benchmark not in files:
        raise DataError(
            f"{directory}: benchmark {benchmark!r} has no file {benchmark}.csv; the folder has "
            f"{_listing(files)}; add it or pass one of those as the benchmark"
        )
    stock_tickers = [t for t in wanted if t != benchmark]
    if not stock_tickers:
        raise DataError(f"{directory}: no stock files besides the benchmark {benchmark!r}; add TICKER.csv files")

    notes = []

    def read(ticker):
        frame, file_notes = read_price_csv(files[ticker], max_gap_days=max_gap_days, min_rows=min_rows)
        notes.extend(file_notes)
        return frame

    frames, skipped_notes = read_each(stock_tickers, read, on_error, directory)
    notes += skipped_notes

    bench = None
    if benchmark is not None:
        bench_frame, bench_notes = read_price_csv(files[benchmark], max_gap_days=max_gap_days, min_rows=min_rows)
        notes += bench_notes
        bench = bench_frame["close"].rename(benchmark)

    prices, field_notes = frames_to_panel(frames, name=Path(directory).name)
    last_days = {files[t].name: frame.index[-1] for t, frame in frames.items()}
    emit(notes + field_notes + early_ends(last_days, str(directory)))
    return prices, bench


def csv_files(directory) -> dict[str, Path]:
    """{ticker: path} of the CSV files in `directory`; clear errors for a missing/empty/cluttered folder."""
    folder = Path(directory)
    if not folder.exists():
        raise DataError(f"{folder}: folder does not exist; give the folder that holds one TICKER.csv per ticker")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, not a folder; give the folder that holds one TICKER.csv per ticker")
    files, clutter = {}, []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue  # hidden files (.DS_Store, editor swap files)
        suffix = next((s for s in CSV_SUFFIXES if path.name.lower().endswith(s)), None)
        if suffix is None or not path.is_file():
            clutter.append(path.name + ("/" if path.is_dir() else ""))
            continue
        ticker = path.name[: -len(suffix)]
        clash = next((t for t in files if t.upper() == ticker.upper()), None)
        if clash is not None:
            raise DataError(f"{folder}: {files[clash].name} and {path.name} are the same ticker; keep one of them")
        files[ticker] = path
    if not files:
        found = f"it holds only {clutter[:10]}" if clutter else "it is empty"
        raise DataError(
            f"{folder}: no .csv files ({found}); export each ticker as TICKER.csv with "
            f"Date,Open,High,Low,Close,Volume or Date,Close columns"
        )
    if clutter:
        emit([f"{folder}: ignored {len(clutter)} non-CSV entr{'y' if len(clutter) == 1 else 'ies'}: {clutter[:10]}"])
    return files


def read_price_csv(
    path, *, max_gap_days=DEFAULT_MAX_GAP_DAYS, min_rows=DEFAULT_MIN_ROWS
) -> tuple[pd.DataFrame, list[str]]:
    """Read and validate one ticker's CSV; return (clean OHLCV frame, repair notes)."""
    path = Path(path)
    source = str(path)
    try:
        head = _first_lines(path, 3)
        if len(head) == 3 and head[1].lower().startswith("ticker,") and head[2].lower().startswith("date"):
            # yf.download(...).to_csv(): "Price,Close,..." / "Ticker,AAPL,..." / "Date,,,..."
            raw = pd.read_csv(path, header=0, skiprows=[1, 2])
            raw = raw.rename(columns={raw.columns[0]: "Date"})
            first_line = 4
        else:
            # numbers are parsed by the fast C reader; a column with a bad cell stays text and
            # feeds.validate finds the cell. Empty/"null"/"NaN" cells are read as missing.
            raw = pd.read_csv(path, skipinitialspace=True)
            first_line = 2
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{source}: the file is empty; the ticker has no data (remove the file or export it again)"
        ) from None
    except UnicodeDecodeError as error:
        raise DataError(
            f"{source}: not a text CSV file ({error.reason} at byte {error.start}); export it again as a UTF-8 CSV"
        ) from None
    except pd.errors.ParserError as error:
        raise DataError(
            f"{source}: cannot parse the CSV ({str(error).strip()}); every row needs the same "
            f"number of comma-separated fields as the header"
        ) from None
    except OSError as error:
        raise DataError(
            f"{source}: cannot read the file ({error.strerror or error}); check that it exists and is readable"
        ) from None
    return validate_ohlcv(raw, source, max_gap_days=max_gap_days, min_rows=min_rows, first_line=first_line)


def _first_lines(path: Path, n: int) -> list[str]:
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [line.strip() for _, line in zip(range(n), handle)]


def frames_to_panel(frames: dict[str, pd.DataFrame], name: str = "") -> tuple[PricePanel, list[str]]:
    """Assemble per-ticker clean frames into a PricePanel on the union of their dates.

    When tickers disagree on which fields they have, only the fields all of them have are kept
    (the note says which tickers lacked which field).
    """
    fields_of = {t: set(f.columns) & set(FIELDS) for t, f in frames.items()}
    common = set.intersection(*fields_of.values())
    notes = []
    if any(f != common for f in fields_of.values()):
        lacking = {
            field: [t for t, f in fields_of.items() if field not in f]
            for field in FIELDS
            if field not in common and any(field in f for f in fields_of.values())
        }
        notes.append(
            f"{name}: files disagree on their fields; kept only {sorted(common, key=FIELDS.index)} "
            "("
            + "; ".join(f"{field} missing in {ts[:5]}{'...' if len(ts) > 5 else ''}" for field, ts in lacking.items())
            + ")"
        )
    wide = {
        field: pd.concat({t: f[field] for t, f in frames.items()}, axis=1).sort_index()
        for field in FIELDS
        if field in common
    }
    for frame in wide.values():
        frame.index.name = "date"
    return PricePanel(wide, available=common, name=name), notes


def _listing(files: dict) -> str:
    names = sorted(files)
    return f"{names[:20]}{' and %d more' % (len(names) - 20) if len(names) > 20 else ''}"
