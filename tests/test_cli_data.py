"""Real data in through the command line: download with a fake yfinance (no test touches the
network), run on the cache, and a point-in-time universe that is respected."""

import numpy as np
import pandas as pd

import run_backtest
from feeds import make_synthetic_universe


def _empty_answer(tickers, **kwargs):
    symbols = [tickers] if isinstance(tickers, str) else list(tickers)
    columns = pd.MultiIndex.from_product(
        [["Close", "High", "Low", "Open", "Volume"], symbols], names=["Price", "Ticker"]
    )
    return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], name="Date"), dtype=float)


class SyntheticYahoo:
    """Answers like yf.download from a seeded synthetic universe (SPY = its index)."""

    def __init__(self):
        self.prices, self.bench = make_synthetic_universe(
            n_tickers=8, n_days=700, start="2019-01-01", seed=5, late_start_share=0.0
        )
        self.calls = 0

    def __call__(self, tickers, start=None, end=None, auto_adjust=None, progress=None, **kwargs):
        self.calls += 1
        symbols = [tickers] if isinstance(tickers, str) else list(tickers)
        parts = {}
        for s in symbols:
            if s == "SPY":
                c = self.bench
                frame = pd.DataFrame({"Open": c, "High": c, "Low": c, "Close": c, "Volume": 1e6})
            else:
                f = self.prices.frame(s)
                frame = f.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
            parts[s] = frame.loc[
                (frame.index >= pd.Timestamp(start)) & (frame.index < pd.Timestamp(end or "2100-01-01"))
            ]
        answer = pd.concat(parts, axis=1).swaplevel(0, 1, axis=1).sort_index(axis=1)
        answer.columns.names = ["Price", "Ticker"]
        answer.index.name = "Date"
        return answer


def test_download_without_network_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    import yfinance as yf

    monkeypatch.setattr(yf, "download", _empty_answer)
    code = run_backtest.main(
        [
            "download",
            "--tickers",
            "AAPL",
            "MSFT",
            "--cache",
            str(tmp_path / "cache"),
            "--backoff",
            "0",
            "--retries",
            "1",
        ]
    )
    assert code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "network" in err
    assert not list((tmp_path / "cache").glob("*.parquet"))


def test_download_then_run_on_the_cache(tmp_path, monkeypatch, capsys):
    import yfinance as yf

    fake = SyntheticYahoo()
    monkeypatch.setattr(yf, "download", fake)
    tickers = fake.prices.tickers
    cache = tmp_path / "cache"
    argv = [
        "download",
        "--tickers",
        *tickers,
        "--start",
        "2019-01-01",
        "--end",
        "2021-09-01",
        "--cache",
        str(cache),
        "--backoff",
        "0",
    ]
    assert run_backtest.main(argv) == 0
    assert len(list(cache.glob("*.parquet"))) == len(tickers) + 1
    calls = fake.calls
    assert run_backtest.main(argv) == 0 and fake.calls == calls  # second run: no network
    # scores for the cached universe, then the main job on the cache
    rng = np.random.default_rng(0)
    dates = fake.prices.dates[(fake.prices.dates >= "2020-06-01") & (fake.prices.dates < "2021-09-01")]
    scores = pd.DataFrame(
        rng.uniform(-1, 1, (len(dates), len(tickers))).round(3), index=dates.strftime("%Y-%m-%d"), columns=tickers
    )
    scores.index.name = "Date"
    scores.to_csv(tmp_path / "s.csv")
    code = run_backtest.main(
        [
            "--source",
            "yfinance",
            "--data",
            str(cache),
            "--benchmark",
            "SPY",
            "--scores",
            str(tmp_path / "s.csv"),
            "--start",
            "2020-06-01",
            "--end",
            "2021-08-31",
            "--out",
            str(tmp_path / "res"),
            "--name",
            "yf",
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    trades = pd.read_csv(tmp_path / "res" / "yf" / "trades.csv")
    assert len(trades) > 10 and set(trades.Ticker) <= set(tickers)


def test_a_stock_outside_its_membership_window_is_never_bought(tmp_path, embedded):
    prices, _ = embedded
    start, end = pd.Timestamp("2021-01-04"), pd.Timestamp("2022-06-30")
    dates = prices.dates[(prices.dates >= start) & (prices.dates <= end)]
    rng = np.random.default_rng(1)
    scores = pd.DataFrame(
        rng.uniform(-0.5, 0.5, (len(dates), len(prices.tickers))).round(3),
        index=dates.strftime("%Y-%m-%d"),
        columns=prices.tickers,
    )
    scores["AAPL"] = 0.99  # the best score every day: bought whenever it may be
    scores.index.name = "Date"
    scores.to_csv(tmp_path / "s.csv")
    members = ["ticker,start,end"] + [f"{t},2000-01-01," for t in prices.tickers if t != "AAPL"]
    members.append("AAPL,2021-07-01,2021-09-30")
    (tmp_path / "members.csv").write_text("\n".join(members) + "\n")
    code = run_backtest.main(
        [
            "--scores",
            str(tmp_path / "s.csv"),
            "--universe",
            str(tmp_path / "members.csv"),
            "--start",
            str(start.date()),
            "--end",
            str(end.date()),
            "--out",
            str(tmp_path / "res"),
            "--name",
            "pit",
            "--no-progress",
        ]
    )
    assert code == 0
    trades = pd.read_csv(tmp_path / "res" / "pit" / "trades.csv", parse_dates=["Date"])
    aapl_buys = trades[(trades.Ticker == "AAPL") & (trades.Action == "BUY")]
    assert len(aapl_buys) >= 1
    # decided on a member day (the bar before the fill), so filled from Jul 2 to the first bar after Sep 30
    assert aapl_buys.Date.min() > pd.Timestamp("2021-07-01")
    assert aapl_buys.Date.max() <= pd.Timestamp("2021-10-01")
