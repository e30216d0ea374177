"""feeds.yahoo against a fake yfinance: no network. The fake serves slices of
tests/fixtures/feeds_yf_AAPL_MSFT.csv in the exact column shape yfinance 1.7 returns."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError, DownloadError
from feeds.yahoo import DownloadReport, YFinanceDownloader, download_to_cache, load_cache, read_cached, split_answer

FIXTURE = Path(__file__).parent / "fixtures" / "feeds_yf_AAPL_MSFT.csv"
SOURCE = pd.read_csv(FIXTURE, header=[0, 1], index_col=0, parse_dates=True)
START = "2019-10-01"
MID = "2020-03-02"  # exclusive end of the first download: last cached day is 2020-02-28
END = "2020-07-01"


def expected(ticker, start=START, end=END, scale=1.0):
    """The fixture's rows for one ticker, in the cache's lowercase layout (independent of feeds.yahoo)."""
    sub = SOURCE.xs(ticker, axis=1, level="Ticker")
    sub = sub[(sub.index >= start) & (sub.index < end)]
    out = pd.DataFrame(
        {c: sub[c.capitalize()].to_numpy(float) for c in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex(sub.index, name="date").as_unit("ns"),
    )
    out[["open", "high", "low", "close"]] *= scale
    return out


def empty_answer(symbols):
    """What yfinance 1.7 returned here with no network (measured): MultiIndex columns, no rows."""
    cols = pd.MultiIndex.from_product(
        [["Adj Close", "Close", "High", "Low", "Open", "Volume"], symbols], names=["Price", "Ticker"]
    )
    return pd.DataFrame(columns=cols, index=pd.DatetimeIndex([], name="Date"), dtype=float)


class FakeYF:
    """Callable like yf.download. `behaviour[symbol]` is a list consumed one call at a time:
    'ok', 'empty', 'nan', 'partial', 'split' (prices / 4), 'short' (last 20 rows only)."""

    def __init__(self, behaviour=None, default="ok"):
        self.behaviour = {k: list(v) for k, v in (behaviour or {}).items()}
        self.default = default
        self.calls = []

    def __call__(self, tickers, start=None, end=None, auto_adjust=None, progress=None, **kwargs):
        assert auto_adjust is True and progress is False
        symbols = [tickers] if isinstance(tickers, str) else list(tickers)
        self.calls.append((tuple(symbols), start, end))
        sub = SOURCE[(SOURCE.index >= start) & (SOURCE.index < end)]
        parts = {}
        for s in symbols:
            queue = self.behaviour.get(s, [])
            mode = queue.pop(0) if queue else self.default
            if mode == "raise":
                raise ConnectionError("connection reset by peer")
            if mode == "kill":
                raise KeyboardInterrupt
            part = sub.xs(s, axis=1, level="Ticker").copy()
            if mode == "empty":
                part = part.iloc[:0]
            elif mode == "nan":
                part.loc[:, :] = np.nan
            elif mode == "partial":
                part.loc[part.index[len(part) // 2] :, "Close"] = np.nan
            elif mode == "split":
                part[["Open", "High", "Low", "Close"]] /= 4
            elif mode == "short":
                part = part.iloc[-20:]
            parts[s] = part
        answer = pd.concat(parts, axis=1, names=["Ticker", "Price"]).swaplevel(0, 1, axis=1).sort_index(axis=1)
        if answer.empty and not len(answer.index):
            return empty_answer(symbols)
        return answer


def no_sleep():
    waits = []
    return waits, waits.append


def test_first_download_caches_each_ticker_exactly(tmp_path):
    fake = FakeYF()
    report = download_to_cache(["AAPL"], START, END, cache_dir=tmp_path, benchmark="MSFT", downloader=fake)
    assert sorted(report.ok) == ["AAPL", "MSFT"] and sorted(report.updated) == ["AAPL", "MSFT"]
    assert report.failed == {}
    for ticker in ("AAPL", "MSFT"):
        frame, meta = read_cached(tmp_path, ticker)
        pd.testing.assert_frame_equal(frame, expected(ticker), check_freq=False)
        assert meta["start"] == START and meta["checked_end"] == END
    assert sorted(p.name for p in tmp_path.iterdir()) == ["AAPL.parquet", "MSFT.parquet"]


def test_progress_bar_over_batches_changes_nothing_else(tmp_path, capsys):
    """download --no-progress's switch: a bar over the batches on stderr, the same cache and report."""
    reports = {}
    for progress in (False, True):
        folder = tmp_path / str(progress)
        reports[progress] = download_to_cache(
            ["AAPL"],
            START,
            END,
            cache_dir=folder,
            benchmark="MSFT",
            downloader=FakeYF(),
            batch_size=1,
            progress=progress,
        )
        err = capsys.readouterr().err
        assert ("yfinance" in err and "2/2" in err) == progress
    assert reports[True].summary() == reports[False].summary()
    for ticker in ("AAPL", "MSFT"):
        pd.testing.assert_frame_equal(
            read_cached(tmp_path / "True", ticker)[0], read_cached(tmp_path / "False", ticker)[0]
        )


def test_split_answer_handles_multiindex_for_one_ticker_and_other_layouts():
    one = FakeYF()("AAPL", start=START, end=MID, auto_adjust=True, progress=False)
    assert isinstance(one.columns, pd.MultiIndex) and one.columns.names == ["Price", "Ticker"]
    want = expected("AAPL", end=MID)
    got = split_answer(one, ["AAPL"])["AAPL"]
    pd.testing.assert_frame_equal(got[want.columns], want, check_freq=False, check_names=False, check_index_type=False)
    by_ticker = one.swaplevel(0, 1, axis=1)  # group_by='ticker'
    flat = one.droplevel(1, axis=1)  # multi_level_index=False
    for answer in (by_ticker, flat):
        again = split_answer(answer, ["AAPL"])["AAPL"]
        np.testing.assert_array_equal(again[want.columns].to_numpy(), want.to_numpy())
    assert split_answer(one, ["MSFT"])["MSFT"] is None


def test_empty_answer_is_retried_with_exponential_backoff_then_reported(tmp_path):
    waits, sleep = no_sleep()
    fake = FakeYF({"AAPL": ["empty"] * 10})
    report = download_to_cache(
        ["AAPL"], START, END, cache_dir=tmp_path, benchmark="MSFT", downloader=fake, retries=3, backoff=0.5, sleep=sleep
    )
    assert waits == [0.5, 1.0, 2.0]  # backoff * 2**k, k = 0, 1, 2
    assert [c[0] for c in fake.calls] == [("AAPL", "MSFT"), ("AAPL",), ("AAPL",), ("AAPL",)]
    assert list(report.failed) == ["AAPL"] and "empty answer" in report.failed["AAPL"]
    assert "nothing cached" in report.failed["AAPL"]
    assert report.ok == ["MSFT"] and not (tmp_path / "AAPL.parquet").exists()


def test_flaky_answer_succeeds_on_retry(tmp_path):
    waits, sleep = no_sleep()
    fake = FakeYF({"AAPL": ["empty", "nan"]})
    report = download_to_cache(["AAPL"], START, END, cache_dir=tmp_path, benchmark=None, downloader=fake, sleep=sleep)
    assert report.ok == ["AAPL"] and report.failed == {} and waits == [1.0, 2.0]
    pd.testing.assert_frame_equal(read_cached(tmp_path, "AAPL")[0], expected("AAPL"), check_freq=False)


@pytest.mark.parametrize(
    "mode, reason", [("nan", "all-NaN answer"), ("partial", "partial answer"), ("empty", "empty answer")]
)
def test_bad_answers_never_overwrite_the_cache(tmp_path, mode, reason):
    download_to_cache(["AAPL"], START, MID, cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    before = (tmp_path / "AAPL.parquet").read_bytes()
    fake = FakeYF(default=mode)
    report = download_to_cache(
        ["AAPL"], START, END, cache_dir=tmp_path, benchmark=None, downloader=fake, retries=1, sleep=lambda s: None
    )
    assert reason in report.failed["AAPL"] and "kept the cached data through 2020-02-28" in report.failed["AAPL"]
    assert (tmp_path / "AAPL.parquet").read_bytes() == before
    assert len(fake.calls) == 2


def test_partial_answer_reason_names_first_missing_day_and_column(tmp_path):
    report = download_to_cache(
        ["AAPL"], START, END, cache_dir=tmp_path, benchmark="MSFT", downloader=FakeYF({"AAPL": ["partial"]}), retries=0
    )
    half = expected("AAPL").index[len(expected("AAPL")) // 2].date()
    assert f"first {half}, column close" in report.failed["AAPL"]


def test_incremental_fetch_asks_only_from_the_last_cached_day(tmp_path):
    download_to_cache(["AAPL"], START, MID, cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    last_cached = read_cached(tmp_path, "AAPL")[0].index[-1]
    fake = FakeYF()
    report = download_to_cache(["AAPL"], START, END, cache_dir=tmp_path, benchmark=None, downloader=fake)
    assert fake.calls == [(("AAPL",), str(last_cached.date()), END)]  # one day of overlap, nothing earlier
    assert report.updated == ["AAPL"]
    pd.testing.assert_frame_equal(read_cached(tmp_path, "AAPL")[0], expected("AAPL"), check_freq=False)


def test_second_run_needs_no_network(tmp_path):
    download_to_cache(["AAPL"], START, END, cache_dir=tmp_path, benchmark="MSFT", downloader=FakeYF())

    def offline(*args, **kwargs):
        raise AssertionError("the network was used")

    report = download_to_cache(["AAPL"], START, END, cache_dir=tmp_path, benchmark="MSFT", downloader=offline)
    assert report.calls == 0 and sorted(report.unchanged) == ["AAPL", "MSFT"]
    prices, bench, vix = load_cache(tmp_path, benchmark="MSFT", min_rows=100)
    assert prices.tickers == ["AAPL"] and vix is None
    np.testing.assert_array_equal(prices.close["AAPL"].to_numpy(), expected("AAPL")["close"].to_numpy())
    np.testing.assert_array_equal(bench.to_numpy(), expected("MSFT")["close"].to_numpy())


def test_no_new_day_still_records_the_check(tmp_path):
    download_to_cache(["AAPL"], START, "2020-02-29", cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    # 2020-02-29/03-01 is a weekend: asking through 2020-03-01 brings only the overlap day back
    fake = FakeYF()
    report = download_to_cache(["AAPL"], START, "2020-03-02", cache_dir=tmp_path, benchmark=None, downloader=fake)
    assert report.unchanged == ["AAPL"] and report.failed == {} and len(fake.calls) == 1


def test_split_rescaled_history_replaces_the_whole_cache(tmp_path):
    download_to_cache(["AAPL"], START, MID, cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    fake = FakeYF(default="split")
    report = download_to_cache(["AAPL"], START, END, cache_dir=tmp_path, benchmark=None, downloader=fake)
    assert [c[1] for c in fake.calls] == ["2020-02-28", START]  # overlap check, then full history
    assert "split or dividend" in report.notes["AAPL"] and report.updated == ["AAPL"]
    pd.testing.assert_frame_equal(read_cached(tmp_path, "AAPL")[0], expected("AAPL", scale=0.25), check_freq=False)


def test_shorter_full_answer_never_replaces_the_cache(tmp_path):
    download_to_cache(["AAPL"], START, MID, cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    before = (tmp_path / "AAPL.parquet").read_bytes()
    fake = FakeYF({"AAPL": ["split"]}, default="short")
    report = download_to_cache(
        ["AAPL"], START, END, cache_dir=tmp_path, benchmark=None, downloader=fake, retries=1, sleep=lambda s: None
    )
    assert "shorter than the cache" in report.failed["AAPL"]
    assert (tmp_path / "AAPL.parquet").read_bytes() == before


def test_earlier_start_fetches_the_full_history(tmp_path):
    download_to_cache(["AAPL"], "2020-01-02", MID, cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    fake = FakeYF()
    download_to_cache(["AAPL"], START, MID, cache_dir=tmp_path, benchmark=None, downloader=fake)
    assert fake.calls == [(("AAPL",), START, MID)]
    pd.testing.assert_frame_equal(read_cached(tmp_path, "AAPL")[0], expected("AAPL", end=MID), check_freq=False)


def test_download_killed_halfway_keeps_earlier_cache_and_no_temp_file(tmp_path):
    download_to_cache(["AAPL", "MSFT"], START, MID, cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    msft_before = (tmp_path / "MSFT.parquet").read_bytes()
    fake = FakeYF({"MSFT": ["kill"]})
    with pytest.raises(KeyboardInterrupt):
        download_to_cache(
            ["AAPL", "MSFT"], START, END, cache_dir=tmp_path, benchmark=None, downloader=fake, batch_size=1
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["AAPL.parquet", "MSFT.parquet"]
    pd.testing.assert_frame_equal(read_cached(tmp_path, "AAPL")[0], expected("AAPL"), check_freq=False)
    assert (tmp_path / "MSFT.parquet").read_bytes() == msft_before


def test_write_interrupted_midway_leaves_old_file_whole(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    download_to_cache(["AAPL"], START, MID, cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    before = (tmp_path / "AAPL.parquet").read_bytes()

    def half_write(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(KeyboardInterrupt):
        download_to_cache(["AAPL"], START, END, cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    assert [p.name for p in tmp_path.iterdir()] == ["AAPL.parquet"]
    assert (tmp_path / "AAPL.parquet").read_bytes() == before


def test_temporary_file_left_by_a_hard_kill_is_ignored_then_removed(tmp_path):
    import os

    download_to_cache(["AAPL"], START, MID, cache_dir=tmp_path, benchmark="MSFT", downloader=FakeYF())
    stale = tmp_path / ".AAPL.parquet.x1y2.parquet.tmp"  # what atomic_path leaves after SIGKILL
    stale.write_bytes(b"PAR1 half")
    prices, _, _ = load_cache(tmp_path, benchmark="MSFT", min_rows=50)
    assert prices.tickers == ["AAPL"]
    os.utime(stale, (0, 0))  # an old leftover, not a concurrent write
    download_to_cache(["AAPL"], START, MID, cache_dir=tmp_path, benchmark="MSFT", downloader=FakeYF())
    assert not stale.exists()


def test_downloader_exception_is_a_retried_failure(tmp_path):
    report = download_to_cache(
        ["AAPL"],
        START,
        END,
        cache_dir=tmp_path,
        benchmark="MSFT",
        downloader=FakeYF({"AAPL": ["raise"]}),
        batch_size=1,
        sleep=lambda s: None,
    )
    assert report.failed == {} and sorted(report.ok) == ["AAPL", "MSFT"]
    report = download_to_cache(
        ["GOOG"],
        START,
        END,
        cache_dir=tmp_path,
        benchmark="MSFT",
        downloader=FakeYF({"GOOG": ["raise"] * 9}),
        retries=2,
        sleep=lambda s: None,
    )
    assert "ConnectionError: connection reset by peer" in report.failed["GOOG"]


def test_no_network_and_no_cache_raises_one_line(tmp_path, monkeypatch):
    import yfinance as yf

    def offline_download(tickers, **kwargs):
        # what yfinance 1.7 does offline (measured here): log the error, return an empty frame
        symbols = [tickers] if isinstance(tickers, str) else list(tickers)
        logging.getLogger("yfinance").error("\n%d Failed download:", len(symbols))
        logging.getLogger("yfinance").error(f"{symbols}: DNSError('Could not resolve host: query2.finance.yahoo.com')")
        return empty_answer(symbols)

    monkeypatch.setattr(yf, "download", offline_download)
    waits, sleep = no_sleep()
    with pytest.raises(DownloadError) as info:
        download_to_cache(["AAPL", "MSFT"], START, END, cache_dir=tmp_path, sleep=sleep)
    message = str(info.value)
    assert "\n" not in message and "network" in message and "AAPL" in message and "SPY" in message
    assert "DNSError" in message and len(waits) == 3
    assert list(tmp_path.iterdir()) == []


def test_default_downloader_captures_yfinance_log_errors(monkeypatch):
    import yfinance as yf

    def fake(tickers, **kwargs):
        logging.getLogger("yfinance").error("['AAPL', 'BRK-B']: YFTzMissingError('possibly delisted')")
        return empty_answer(list(tickers))

    monkeypatch.setattr(yf, "download", fake)
    downloader = YFinanceDownloader()
    downloader(["AAPL", "BRK-B"], start=START, end=END)
    assert downloader.last_errors == {
        "AAPL": "YFTzMissingError('possibly delisted')",
        "BRK-B": "YFTzMissingError('possibly delisted')",
    }


def test_share_class_tickers_use_yahoo_spelling(tmp_path):
    asked = []

    def fake(tickers, start=None, end=None, **kwargs):
        asked.append(tickers)
        answer = FakeYF()("AAPL", start=start, end=end, auto_adjust=True, progress=False)
        return answer.rename(columns={"AAPL": "BRK-B"}, level=1)

    report = download_to_cache(["BRK.B"], START, END, cache_dir=tmp_path, benchmark=None, downloader=fake)
    assert asked == ["BRK-B"] and report.ok == ["BRK.B"] and (tmp_path / "BRK.B.parquet").exists()


def test_vix_is_fetched_and_loaded(tmp_path):
    def fake(tickers, start=None, end=None, **kwargs):
        symbols = [tickers] if isinstance(tickers, str) else list(tickers)
        answer = FakeYF()(["AAPL", "MSFT"], start=start, end=end, auto_adjust=True, progress=False)
        return answer.rename(columns={"MSFT": "^VIX"}, level=1).loc[
            :, lambda f: f.columns.get_level_values(1).isin(symbols)
        ]

    report = download_to_cache(["AAPL"], START, END, cache_dir=tmp_path, benchmark=None, vix=True, downloader=fake)
    assert sorted(report.ok) == ["AAPL", "^VIX"]
    # benchmark must be cached for load_cache: reuse AAPL's file as the benchmark here
    prices, bench, vix = load_cache(tmp_path, tickers=["AAPL"], benchmark="AAPL", min_rows=100)
    np.testing.assert_array_equal(vix.to_numpy(), expected("MSFT")["close"].to_numpy())


def test_load_cache_errors_name_the_file_and_fix(tmp_path):
    with pytest.raises(DataError, match="no cached prices; run download_to_cache"):
        load_cache(tmp_path)
    download_to_cache(["AAPL"], START, END, cache_dir=tmp_path, benchmark=None, downloader=FakeYF())
    with pytest.raises(DataError, match=r"SPY.parquet: no cached prices for SPY"):
        load_cache(tmp_path)
    (tmp_path / "SPY.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"SPY.parquet: unreadable Parquet file .*delete it"):
        load_cache(tmp_path)
    download_to_cache(
        ["SPY"], START, END, cache_dir=tmp_path, benchmark=None, downloader=FakeYF(), symbols={"SPY": "MSFT"}
    )
    with pytest.raises(DataError, match=r"SPY.parquet: only 189 rows .*min_rows=252.*lower min_rows"):
        load_cache(tmp_path)
    (tmp_path / "BAD.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"BAD.parquet: unreadable Parquet file"):
        load_cache(tmp_path, min_rows=100)
    with pytest.warns(UserWarning, match=r"left out 1 ticker\(s\) that failed validation: .*BAD.parquet"):
        prices, bench, _ = load_cache(tmp_path, min_rows=100, on_error="skip")
    assert prices.tickers == ["AAPL"]
    np.testing.assert_array_equal(bench.to_numpy(), expected("MSFT")["close"].to_numpy())


def test_report_summary_lists_failures(tmp_path):
    report = download_to_cache(
        ["AAPL"],
        START,
        END,
        cache_dir=tmp_path,
        benchmark="MSFT",
        downloader=FakeYF(default="empty", behaviour={"MSFT": ["ok"]}),
        retries=0,
    )
    assert isinstance(report, DownloadReport)
    assert "1 ok" in report.summary() and "failed AAPL: all-NaN answer" in report.summary()
