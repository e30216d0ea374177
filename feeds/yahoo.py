"""Daily prices from Yahoo Finance (yfinance) with a local Parquet cache.

    report = download_to_cache(tickers, start="2016-01-01")      # needs the network
    prices, spy, vix = load_cache("cache/yfinance")              # never does

One Parquet file per ticker (`<cache_dir>/<TICKER>.parquet`, columns open/high/low/close/volume,
auto-adjusted prices as `yf.download(..., auto_adjust=True)` gives them), each written atomically
(temporary file, then os.replace). The file's Parquet metadata records what was asked for: the
requested start, the end it was checked through, the Yahoo symbol and the yfinance version.

Rules, because yfinance does not raise when it cannot connect (it logs and returns an empty frame):
- An empty, all-NaN or partial answer (a missing column, a row with some prices missing) is a
  failure of that ticker. Failed tickers are retried with exponential backoff (backoff, 2*backoff,
  ...), then reported by name in `DownloadReport.failed` with the reason.
- Cached data is never replaced by an empty answer or by a full answer with fewer rows.
- Later runs fetch only from the last cached date on: the last cached day is asked again (one day
  of overlap) so that (a) a healthy answer is never empty, even over a weekend, and (b) the cache
  can be checked against Yahoo. Auto-adjusted prices are rescaled backwards after every split and
  dividend; when the overlapping close differs by more than `RESCALE_RTOL`, the whole history is
  fetched again and replaces the file (if it is at least as long as the cache).
- `end=None` means "through yesterday": today's bar may still be forming and is never cached.
- A run whose cache is already checked through the requested end makes no network call.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from core.errors import DataError, DownloadError
from core.io import atomic_path
from feeds.csv_folder import frames_to_panel
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

VIX = "^VIX"
RESCALE_RTOL = 1e-4  # 0.01 %: far below any dividend adjustment, far above float noise
BATCH_SIZE = 50  # tickers per yf.download call (it threads within a call)
META_KEY = b"feeds.yahoo"
_COLUMN_NAMES = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "adj close": "adj_close",
}


@dataclass
class DownloadReport:
    """What a download_to_cache run did. `ok` = updated + unchanged (usable and checked this run)."""

    ok: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)  # ticker -> reason (cached data, if any, was kept)
    updated: list = field(default_factory=list)  # file written with new or replaced rows
    unchanged: list = field(default_factory=list)  # nothing new (or already checked through `end`)
    notes: dict = field(default_factory=dict)  # ticker -> what happened besides (e.g. rescaled)
    calls: int = 0  # downloader calls made

    def summary(self) -> str:
        lines = [
            f"yfinance: {len(self.ok)} ok ({len(self.updated)} updated, {len(self.unchanged)} unchanged), "
            f"{len(self.failed)} failed, {self.calls} download call(s)"
        ]
        lines += [f"  failed {t}: {r}" for t, r in self.failed.items()]
        lines += [f"  note {t}: {n}" for t, n in self.notes.items()]
        return "\n".join(lines)


# --- the default downloader: yf.download, with its log lines captured as failure reasons -------
class YFinanceDownloader:
    """Calls `yfinance.download` (looked up at call time, so monkeypatching works) and keeps the
    errors yfinance logs instead of raising in `last_errors` ({SYMBOL: message})."""

    def __init__(self):
        self.last_errors: dict[str, str] = {}

    def __call__(self, tickers, **kwargs):
        import yfinance as yf

        handler = _ListHandler()
        logger = logging.getLogger("yfinance")
        logger.addHandler(handler)  # also keeps yfinance from printing through logging's last resort
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pandas deprecation noise from inside yfinance
                return yf.download(tickers, **kwargs)
        finally:
            logger.removeHandler(handler)
            self.last_errors = handler.errors()


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def errors(self) -> dict:
        # yfinance logs "['AAPL', 'MSFT']: DNSError('...')"
        found = {}
        for message in self.messages:
            match = re.match(r"\s*\[(.*?)\]:\s*(.*)", message, re.S)
            if match:
                for symbol in re.findall(r"'([^']+)'", match.group(1)):
                    found[symbol.upper()] = match.group(2).strip().splitlines()[0][:200]
        return found


# --- cache files -------------------------------------------------------------------------------
def cache_file(cache_dir, ticker: str) -> Path:
    return Path(cache_dir) / f"{ticker.replace('/', '_')}.parquet"


def read_cached(cache_dir, ticker: str) -> tuple[pd.DataFrame, dict]:
    """(frame, metadata) of one cached ticker; DataError if the file is missing or unreadable."""
    import pyarrow.parquet as pq

    path = cache_file(cache_dir, ticker)
    if not path.exists():
        raise DataError(f"{path}: no cached prices for {ticker}; run download_to_cache([{ticker!r}], start=...) first")
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for a truncated or foreign file
        raise DataError(
            f"{path}: unreadable Parquet file ({type(error).__name__}: {error}); delete it and run "
            f"download_to_cache again"
        ) from None
    meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    frame = table.to_pandas()
    frame.index = pd.DatetimeIndex(frame.index, name="date").as_unit("ns")
    return frame, meta


def write_cached(cache_dir, ticker: str, frame: pd.DataFrame, meta: dict) -> Path:
    """Write one ticker's frame atomically: the old file stays whole until the new one is complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame[list(FIELDS)].astype("float64"), preserve_index=True)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    path = cache_file(cache_dir, ticker)
    with atomic_path(path, suffix=".parquet.tmp") as tmp:
        pq.write_table(table, tmp)
    return path


# --- answers -----------------------------------------------------------------------------------
def split_answer(answer, symbols: list[str]) -> dict[str, pd.DataFrame | None]:
    """One frame per symbol from a yf.download answer.

    yfinance 1.7 returns MultiIndex columns (Price, Ticker) even for one ticker (group_by='column');
    with group_by='ticker' the levels are (Ticker, Price); with multi_level_index=False and one
    ticker the columns are flat. Columns come back lowercase; a symbol absent from the answer is None.
    """
    if answer is None or not isinstance(answer, pd.DataFrame):
        return {s: None for s in symbols}
    columns = answer.columns
    out = {}
    if isinstance(columns, pd.MultiIndex):
        price_level = 0 if any(str(v).lower() in _COLUMN_NAMES for v in columns.get_level_values(0)) else 1
        ticker_level = 1 - price_level
        present = {str(v).upper(): v for v in columns.get_level_values(ticker_level)}
        for s in symbols:
            if s.upper() not in present:
                out[s] = None
                continue
            sub = answer.xs(present[s.upper()], axis=1, level=ticker_level)
            out[s] = _lower(sub)
    else:
        if len(symbols) != 1:
            raise DownloadError(f"yfinance answer has flat columns for {len(symbols)} tickers; cannot tell them apart")
        out[symbols[0]] = _lower(answer)
    return out


def _lower(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.rename(columns=lambda c: _COLUMN_NAMES.get(str(c).lower(), str(c).lower()))
    frame = frame.loc[:, ~frame.columns.duplicated()]
    frame.index = pd.DatetimeIndex(frame.index, name="date")
    return frame


def answer_problem(frame: pd.DataFrame | None, ticker: str) -> tuple[pd.DataFrame | None, str | None]:
    """(clean frame, None) for a usable answer, or (None, reason) for an empty/all-NaN/partial one."""
    if frame is None:
        return None, "the answer does not contain this ticker"
    if frame.empty:
        return (
            None,
            "empty answer (yfinance returns an empty frame when it cannot reach Yahoo or does not know the symbol)",
        )
    missing = [c for c in FIELDS if c not in frame.columns]
    if missing:
        return None, f"partial answer: column(s) {missing} missing"
    frame = frame[list(FIELDS)]
    if frame.index.tz is not None:
        frame = frame.tz_localize(None)
    prices = frame[["open", "high", "low", "close"]].apply(pd.to_numeric, errors="coerce")
    rows = prices.notna().any(axis=1)
    if not rows.any():
        return None, f"all-NaN answer ({len(frame)} rows, no prices)"
    frame = frame[rows]
    holes = frame[["open", "high", "low", "close"]].isna()
    if holes.any().any():
        first = holes.any(axis=1).idxmax()
        column = holes.loc[first].idxmax()
        return None, (
            f"partial answer: {int(holes.any(axis=1).sum())} row(s) with missing prices "
            f"(first {first.date()}, column {column})"
        )
    try:
        clean, _ = validate_ohlcv(frame, f"yfinance:{ticker}", max_gap_days=None, min_rows=1)
    except DataError as error:
        return None, str(error)
    if "volume" not in clean:
        clean["volume"] = np.nan
    return clean[list(FIELDS)], None


def _overlap_disagrees(cached: pd.DataFrame, new: pd.DataFrame) -> tuple[bool, str]:
    common = cached.index.intersection(new.index)
    if not len(common):
        return True, "no overlapping day to check"
    day = common[-1]
    old, now = cached.at[day, "close"], new.at[day, "close"]
    if abs(now - old) > RESCALE_RTOL * abs(old):
        return (
            True,
            f"close on {day.date()} was {old:.6g} in the cache and is {now:.6g} now (split or dividend re-adjustment)",
        )
    return False, ""


# --- the download ------------------------------------------------------------------------------
@dataclass
class _Job:
    ticker: str
    symbol: str
    start: pd.Timestamp  # requested (inclusive)
    end: pd.Timestamp  # exclusive
    fetch_from: pd.Timestamp
    cached: pd.DataFrame | None
    mode: str  # "full" | "incremental" | "refetch"
    failures: int = 0
    reason: str = ""


def _progress(batches: list, progress: bool, attempt: int):
    if not progress or len(batches) < 2:
        return batches
    from tqdm.auto import tqdm

    return tqdm(batches, desc="yfinance" if attempt == 1 else f"yfinance retry {attempt - 1}", unit="batch")


def download_to_cache(
    tickers,
    start,
    end=None,
    cache_dir="cache/yfinance",
    benchmark: str | None = "SPY",
    vix: bool = False,
    retries: int = 3,
    backoff: float = 1.0,
    downloader: Callable | None = None,
    *,
    symbols: dict | None = None,
    sleep: Callable[[float], None] = time.sleep,
    batch_size: int = BATCH_SIZE,
    today=None,
    progress: bool = False,
) -> DownloadReport:
    """Bring the Parquet cache of `tickers` (+ benchmark, + ^VIX if vix) up to date; see module docs.

    start, end: requested dates (end exclusive, as in yf.download; None = through yesterday).
    retries: extra attempts for a failed ticker; the k-th retry waits backoff * 2**(k-1) seconds.
    downloader: a callable like yf.download (default: yfinance.download with its errors captured).
    symbols: {ticker: Yahoo symbol} overrides; by default share classes from the shipped constituents
        list map to Yahoo's spelling (BRK.B -> BRK-B).
    sleep: how to wait between retries (tests pass a no-op). today: the date "today" (tests).
    progress: a progress bar over the batches of each round (yfinance's own bar stays off).
    Raises DownloadError (one line) when nothing could be fetched and nothing is cached.
    """
    downloader = downloader or YFinanceDownloader()
    names = list(dict.fromkeys([str(t) for t in tickers] + ([benchmark] if benchmark else []) + ([VIX] if vix else [])))
    if not names:
        raise DataError("download_to_cache: no tickers given; pass a list such as ['AAPL', 'MSFT']")
    start = pd.Timestamp(start).normalize()
    today = pd.Timestamp(today or _dt.date.today()).normalize()
    end = pd.Timestamp(end).normalize() if end is not None else today
    if end <= start:
        raise DataError(f"download_to_cache: end {end.date()} is not after start {start.date()}; end is exclusive")
    symbol_of = {**_default_symbols(), **(symbols or {})}
    report = DownloadReport()
    _remove_stale_temporaries(cache_dir)

    jobs = []
    for ticker in names:
        job = _plan(ticker, symbol_of.get(ticker, ticker), start, end, cache_dir, report)
        if job is not None:
            jobs.append(job)

    attempt = 0
    while jobs:
        retry_jobs = [j for j in jobs if j.failures]
        if retry_jobs:
            sleep(backoff * 2 ** (max(j.failures for j in retry_jobs) - 1))
        attempt += 1
        next_jobs = []
        for group in _progress(list(_batches(jobs, batch_size)), progress, attempt):
            next_jobs += _run_batch(group, downloader, cache_dir, report)
        jobs = []
        for job in next_jobs:
            if job.failures > retries:
                report.failed[job.ticker] = job.reason + _kept(job)
            else:
                jobs.append(job)

    report.ok = [t for t in names if t in report.updated or t in report.unchanged]
    if not report.ok and not any(cache_file(cache_dir, t).exists() for t in names):
        first = next(iter(report.failed.values()), "no answer")
        raise DownloadError(
            f"yfinance returned no usable data for any of {len(names)} ticker(s) "
            f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}) and {cache_dir} holds none: "
            f"check the network connection or use CSV files instead; first reason: {first}"
        )
    return report


def _remove_stale_temporaries(cache_dir, older_than_s: float = 3600) -> None:
    """Remove temporary files a killed run (SIGKILL, power loss) left behind; an hour's age keeps
    a concurrent run's file in progress safe. load_cache never reads them (they end in .tmp)."""
    folder = Path(cache_dir)
    if not folder.is_dir():
        return
    now = time.time()
    for tmp in folder.glob(".*.parquet.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
        except OSError:
            pass


def _default_symbols() -> dict:
    try:
        from feeds.universe import yahoo_symbols

        return yahoo_symbols()
    except Exception:  # the shipped list is a convenience, never a reason to fail a download
        return {}


def _plan(ticker, symbol, start, end, cache_dir, report) -> _Job | None:
    if not cache_file(cache_dir, ticker).exists():
        return _Job(ticker, symbol, start, end, start, None, "full")
    try:
        cached, meta = read_cached(cache_dir, ticker)
    except DataError as error:
        report.notes[ticker] = f"{error}; fetching the full history again"
        return _Job(ticker, symbol, start, end, start, None, "full")
    cached_start = pd.Timestamp(meta.get("start", cached.index[0] if len(cached) else start))
    checked_end = pd.Timestamp(
        meta.get("checked_end", cached.index[-1] + pd.Timedelta(days=1) if len(cached) else start)
    )
    if start < cached_start:  # earlier history wanted: fetch it all
        return _Job(ticker, symbol, start, end, start, cached, "refetch")
    if checked_end >= end or not len(cached):
        report.unchanged.append(ticker)  # already checked through `end`: no network
        return None
    return _Job(ticker, symbol, cached_start, end, cached.index[-1], cached, "incremental")


def _batches(jobs, size):
    by_request = {}
    for job in jobs:
        by_request.setdefault((job.fetch_from, job.end), []).append(job)
    for group in by_request.values():
        for i in range(0, len(group), size):
            yield group[i : i + size]


def _run_batch(group: list[_Job], downloader, cache_dir, report) -> list[_Job]:
    """Fetch one batch, write what is good, return the jobs to try again (failed or to refetch)."""
    symbols = [j.symbol for j in group]
    fetch_from, end = group[0].fetch_from, group[0].end
    report.calls += 1
    try:
        answer = downloader(
            symbols[0] if len(symbols) == 1 else symbols,
            start=fetch_from.strftime("%Y-%m-%d"),
            end=end.strftime("%Y-%m-%d"),
            auto_adjust=True,
            progress=False,
        )
        parts = split_answer(answer, symbols)
        call_error = None
    except Exception as error:  # a custom downloader may raise; yfinance itself does not
        parts, call_error = {s: None for s in symbols}, f"{type(error).__name__}: {error}"
    logged = getattr(downloader, "last_errors", {}) or {}
    again = []
    for job in group:
        frame, problem = answer_problem(parts.get(job.symbol), job.ticker)
        if problem and (call_error or logged.get(job.symbol.upper())):
            problem = f"{problem}; {call_error or 'yfinance: ' + logged[job.symbol.upper()]}"
        if problem is None:
            follow_up = _store(job, frame, cache_dir, report)
            if follow_up is not None:
                again.append(follow_up)
        else:
            job.failures += 1
            job.reason = problem
            again.append(job)
    return again


def _store(job: _Job, frame: pd.DataFrame, cache_dir, report) -> _Job | None:
    """Merge a good answer into the cache. Returns a follow-up job (refetch/failure) or None."""
    meta = {
        "ticker": job.ticker,
        "symbol": job.symbol,
        "start": str(job.start.date()),
        "checked_end": str(job.end.date()),
        "fetched_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "auto_adjust": True,
        "yfinance": _yf_version(),
    }
    frame = frame[frame.index < job.end]
    cached = job.cached
    if frame.empty:
        job.failures += 1
        job.reason = f"the answer has no rows before the requested end {job.end.date()}"
        return job
    if job.mode == "incremental":
        disagree, why = _overlap_disagrees(cached, frame)
        if disagree:
            report.notes[job.ticker] = f"{why}; fetched the whole history again"
            return _Job(job.ticker, job.symbol, job.start, job.end, job.start, cached, "refetch")
        new_rows = frame[frame.index > cached.index[-1]]
        write_cached(cache_dir, job.ticker, pd.concat([cached, new_rows]), meta)  # also records checked_end
        (report.updated if len(new_rows) else report.unchanged).append(job.ticker)
        return None
    if cached is not None and (len(frame) < len(cached) or frame.index[0] > cached.index[0]):
        job.failures += 1
        job.reason = (
            f"full answer ({len(frame)} rows from {frame.index[0].date()}) is shorter than the cache "
            f"({len(cached)} rows from {cached.index[0].date()})"
        )
        return job
    write_cached(cache_dir, job.ticker, frame, meta)
    report.updated.append(job.ticker)
    return None


def _kept(job: _Job) -> str:
    if job.cached is not None and len(job.cached):
        return f" (kept the cached data through {job.cached.index[-1].date()})"
    return " (nothing cached)"


def _yf_version() -> str:
    try:
        from importlib.metadata import version

        return version("yfinance")
    except Exception:
        return "unknown"


# --- reading the cache -------------------------------------------------------------------------
def load_cache(
    cache_dir="cache/yfinance",
    tickers=None,
    benchmark: str = "SPY",
    *,
    max_gap_days: float | None = DEFAULT_MAX_GAP_DAYS,
    min_rows: int = DEFAULT_MIN_ROWS,
    on_error: str = "raise",
) -> tuple[PricePanel, pd.Series, pd.Series | None]:
    """(prices, benchmark close, VIX close or None) from the cache, validated; no network.

    tickers: which stocks (default: every cached file except the benchmark and ^VIX).
    on_error: "raise" stops at the first missing or invalid stock; "skip" leaves it out with a
        DataRepairWarning naming it (a missing or invalid benchmark always raises).
    """
    folder = Path(cache_dir)
    cached = sorted(p.name[: -len(".parquet")] for p in folder.glob("*.parquet")) if folder.is_dir() else []
    if not cached:
        raise DataError(f"{cache_dir}: no cached prices; run download_to_cache(tickers, start=...) with network first")
    wanted = [t for t in cached if t not in (benchmark, VIX)] if tickers is None else [str(t) for t in tickers]
    notes = []

    def read(ticker):
        frame, _ = read_cached(cache_dir, ticker)
        clean, more = validate_ohlcv(
            frame, str(cache_file(cache_dir, ticker)), max_gap_days=max_gap_days, min_rows=min_rows
        )
        notes.extend(more)
        return clean

    bench = read(benchmark)["close"].rename(benchmark)
    frames, skipped_notes = read_each(wanted, read, on_error, cache_dir)
    notes += skipped_notes
    vix_close = None
    if cache_file(cache_dir, VIX).exists():
        frame, _ = read_cached(cache_dir, VIX)
        vix_close = validate_ohlcv(frame, str(cache_file(cache_dir, VIX)), max_gap_days=max_gap_days, min_rows=1)[0][
            "close"
        ].rename(VIX)
    prices, more = frames_to_panel(frames, name=f"yfinance:{folder.name}")
    last_days = {cache_file(cache_dir, t).name: frame.index[-1] for t, frame in frames.items()}
    emit(notes + more + early_ends(last_days, str(cache_dir)))
    return prices, bench, vix_close
