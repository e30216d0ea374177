"""Core analyzers against independent computations: Backtrader's own analyzers, QuantStats, hand
formulas over the orders a deterministic strategy is known to have made.

Data: the embedded real closes (close only, so a bar's open equals its close)."""

from __future__ import annotations

import json
import math

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from analyzers.collect import analyzer_results, import_analyzer, json_safe
from analyzers.metrics import (
    PortfolioMetrics,
    align_benchmark,
    compute_metrics,
    daily_returns,
    max_drawdown,
)
from analyzers.tearsheet import QuantStatsTearsheet, benchmark_returns
from analyzers.tradelog import COLUMNS, Book, TradeLog, fill_row
from feeds import ConfigError, load_embedded

TICKERS = ["AAPL", "JNJ", "CVX"]
START, END = "2018-01-01", "2019-12-31"
CASH = 100_000.0
COMMISSION = 0.0005  # 5 bp

# bar number (len(strategy), 1-based) -> orders decided on that bar: (ticker, signed size, info)
PLAN = {
    10: [("AAPL", 100, {"score": 0.5, "rank": 1}), ("JNJ", 50, {"score": 0.3, "rank": 2})],
    30: [("AAPL", 50, {"score": 0.4, "rank": 1})],
    60: [("AAPL", -80, {"reason": "trim"})],
    100: [("AAPL", -70, {"reason": "exit"})],
    120: [("JNJ", -50, {"reason": "exit"})],
    150: [("CVX", 40, {"score": 0.25, "rank": 1})],
    300: [("CVX", -40, {"reason": "Day 150: Score < 0"})],
    320: [("AAPL", 30, {})],
    400: [("AAPL", -30, {})],
}


class PlanStrategy(bt.Strategy):
    """Buys and sells the PLAN's sizes on fixed bars, tagging orders like the alpha strategy does."""

    def next(self):
        for ticker, size, info in PLAN.get(len(self), []):
            data = self.getdatabyname(ticker)
            order = self.buy(data=data, size=size) if size > 0 else self.sell(data=data, size=-size)
            order.addinfo(**info)


@pytest.fixture(scope="module")
def market():
    prices, bench = load_embedded(START, END)
    frames = {t: prices.frame(t) for t in TICKERS}
    dates = frames[TICKERS[0]].index
    for frame in frames.values():  # the hand computations below index every ticker by bar
        assert frame.index.equals(dates)
    return frames, bench


@pytest.fixture(scope="module")
def run(market, tmp_path_factory):
    frames, bench = market
    out = tmp_path_factory.mktemp("run")
    cerebro = bt.Cerebro(stdstats=False)
    for ticker, frame in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=ticker)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=COMMISSION)
    cerebro.addstrategy(PlanStrategy)
    cerebro.addanalyzer(TradeLog, path=str(out / "trades.csv"))
    cerebro.addanalyzer(PortfolioMetrics, benchmark=bench, out_dir=str(out))
    cerebro.addanalyzer(QuantStatsTearsheet, benchmark=bench, path=str(out / "tearsheet.html"), title="Plan")
    cerebro.addanalyzer(
        bt.analyzers.SharpeRatio,
        _name="bt_sharpe",
        timeframe=bt.TimeFrame.Days,
        annualize=True,
        riskfreerate=0.0,
        stddev_sample=True,
        convertrate=True,
    )
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="bt_drawdown")
    cerebro.addanalyzer(bt.analyzers.TimeReturn, _name="bt_returns", timeframe=bt.TimeFrame.Days)
    cerebro.addanalyzer(bt.analyzers.SQN, _name="sqn")
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
    strategy = cerebro.run()[0]
    return strategy, out


def _expected_orders(frames):
    """The fills the PLAN must produce: decided on bar b, filled at bar b+1's open."""
    rows = []
    for bar in sorted(PLAN):
        for ticker, size, info in PLAN[bar]:
            frame = frames[ticker]
            fill_date = frame.index[bar]  # bar b is index b-1; its next bar is index b
            rows.append(
                {
                    "bar": bar,
                    "ticker": ticker,
                    "size": size,
                    "info": info,
                    "date": fill_date,
                    "price": float(frame["open"].iloc[bar]),
                }
            )
    return rows


def test_trade_log_matches_the_known_orders(run, market):
    strategy, out = run
    frames, _ = market
    log = strategy.analyzers.tradelog.to_frame()
    expected = _expected_orders(frames)
    assert list(log.columns) == list(COLUMNS)
    assert len(log) == len(expected)
    for (_, row), exp in zip(log.iterrows(), expected):
        assert row["Date"] == exp["date"].date().isoformat()
        assert row["Ticker"] == exp["ticker"]
        assert row["Action"] == ("BUY" if exp["size"] > 0 else "SELL")
        assert row["Price"] == pytest.approx(exp["price"], rel=1e-12)
        assert row["Shares"] == abs(exp["size"])
        assert row["Amount"] == pytest.approx(exp["price"] * abs(exp["size"]), rel=1e-12)
        assert row["Commission"] == pytest.approx(COMMISSION * exp["price"] * abs(exp["size"]), rel=1e-9)
        for column, key in (("Score", "score"), ("Rank", "rank"), ("Reason", "reason")):
            want = exp["info"].get(key)
            assert pd.isna(row[column]) if want is None else row[column] == want
        if exp["size"] > 0:
            assert pd.isna(row["PnL_Pct"]) and pd.isna(row["Days"])

    # PnL by hand: AAPL bought twice (average entry), trimmed, closed; later reopened.
    by_bar = {(e["bar"], e["ticker"]): e for e in expected}
    a1, a2 = by_bar[(10, "AAPL")], by_bar[(30, "AAPL")]
    avg = (100 * a1["price"] + 50 * a2["price"]) / 150
    sells = log[log["Action"] == "SELL"].reset_index(drop=True)
    trim, close = by_bar[(60, "AAPL")], by_bar[(100, "AAPL")]
    assert sells.loc[0, "PnL_Pct"] == pytest.approx((trim["price"] / avg - 1) * 100, rel=1e-12)
    assert sells.loc[0, "Days"] == (trim["date"] - a1["date"]).days
    assert sells.loc[1, "PnL_Pct"] == pytest.approx((close["price"] / avg - 1) * 100, rel=1e-12)
    assert sells.loc[1, "Days"] == (close["date"] - a1["date"]).days
    j_in, j_out = by_bar[(10, "JNJ")], by_bar[(120, "JNJ")]
    assert sells.loc[2, "PnL_Pct"] == pytest.approx((j_out["price"] / j_in["price"] - 1) * 100, rel=1e-12)
    reopen, reclose = by_bar[(320, "AAPL")], by_bar[(400, "AAPL")]
    assert sells.loc[4, "Days"] == (reclose["date"] - reopen["date"]).days  # new position, new clock
    assert sells.loc[4, "PnL_Pct"] == pytest.approx((reclose["price"] / reopen["price"] - 1) * 100, rel=1e-12)

    # The CSV on disk is the same log; empty cells where values are missing.
    on_disk = pd.read_csv(out / "trades.csv")
    assert list(on_disk.columns) == list(COLUMNS)
    np.testing.assert_allclose(on_disk["PnL_Pct"].to_numpy(), log["PnL_Pct"].to_numpy(), rtol=1e-12)
    assert strategy.analyzers.tradelog.get_analysis()["trades"][0]["Ticker"] == "AAPL"


def test_sharpe_and_drawdown_match_backtrader_and_quantstats(run):
    strategy, _ = run
    metrics = strategy.analyzers.portfoliometrics
    m = metrics.get_analysis()
    equity = metrics.equity()
    returns = daily_returns(equity, metrics.initial_value)

    # Same daily returns as Backtrader's TimeReturn (first one against the starting cash).
    bt_returns = pd.Series(strategy.analyzers.bt_returns.get_analysis())
    assert len(bt_returns) == len(returns)
    np.testing.assert_allclose(returns.to_numpy(), bt_returns.to_numpy(), rtol=0, atol=1e-15)

    bt_sharpe = strategy.analyzers.bt_sharpe.get_analysis()["sharperatio"]
    qs_sharpe = qs.stats.sharpe(returns, periods=252)
    assert m["sharpe"] == pytest.approx(bt_sharpe, rel=1e-9, abs=1e-12)
    assert m["sharpe"] == pytest.approx(qs_sharpe, rel=1e-9, abs=1e-12)

    bt_dd = strategy.analyzers.bt_drawdown.get_analysis()["max"]["drawdown"]
    assert m["max_drawdown"] < 0
    assert m["max_drawdown"] == pytest.approx(-bt_dd / 100.0, rel=1e-9)
    # QuantStats rebuilds prices from the returns: agreement to rounding of the compounding.
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(returns), rel=1e-9)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(returns, periods=252), rel=1e-9)
    assert m["volatility"] == pytest.approx(qs.stats.volatility(returns, periods=252), rel=1e-9)


def test_returns_cagr_exposure_turnover_by_hand(run, market):
    strategy, out = run
    frames, bench = market
    metrics = strategy.analyzers.portfoliometrics
    m = metrics.get_analysis()
    equity = metrics.equity()
    n = len(equity)

    final = strategy.broker.getvalue()
    assert m["final_value"] == pytest.approx(final, rel=1e-12)
    assert m["total_return"] == pytest.approx(final / CASH - 1, rel=1e-12)
    assert m["cagr"] == pytest.approx((final / CASH) ** (252 / n) - 1, rel=1e-12)
    assert m["cagr"] == pytest.approx(qs.stats.cagr(daily_returns(equity, CASH), periods=252), rel=1e-9)
    assert m["days"] == n == len(frames["AAPL"])
    assert m["start"] == "2018-01-02" and m["end"] == frames["AAPL"].index[-1].date().isoformat()

    # Exposure: brute-force walk over the known fills (a position opens on its fill day).
    held = {t: 0 for t in TICKERS}
    fills = {}
    for e in _expected_orders(frames):
        fills.setdefault(e["date"], []).append(e)
    days_with_position = 0
    for day in frames["AAPL"].index:
        for e in fills.get(day, []):
            held[e["ticker"]] += e["size"]
        days_with_position += any(held.values())
    assert m["exposure"] == pytest.approx(days_with_position / n, rel=1e-12)

    traded = sum(e["price"] * abs(e["size"]) for e in _expected_orders(frames))
    assert m["turnover"] == pytest.approx(traded / equity.mean() * 252 / n, rel=1e-9)

    assert m["n_trades"] == 5  # SELL rows of the plan
    sells = strategy.analyzers.tradelog.to_frame().query("Action == 'SELL'")
    assert m["win_rate"] == pytest.approx((sells["PnL_Pct"] > 0).mean(), rel=1e-12)

    on_dates = bench.reindex(frames["AAPL"].index, method="ffill")
    assert m["benchmark_total_return"] == pytest.approx(on_dates.iloc[-1] / on_dates.iloc[0] - 1, rel=1e-12)
    curve = metrics.benchmark_curve()
    assert curve.iloc[0] == pytest.approx(CASH) and curve.index.equals(equity.index)
    assert curve.iloc[-1] == pytest.approx(CASH * (1 + m["benchmark_total_return"]), rel=1e-12)

    # With history before the first bar, the benchmark is held from the last close before it,
    # over as many periods as the strategy has returns (what the tearsheet shows).
    _, full_bench = load_embedded()
    before = full_bench[full_bench.index < frames["AAPL"].index[0]].iloc[-1]
    with_history = compute_metrics(equity, benchmark=full_bench, initial_value=CASH)
    expected = full_bench.asof(frames["AAPL"].index[-1]) / before - 1
    assert with_history["benchmark_total_return"] == pytest.approx(expected, rel=1e-12)
    assert with_history["benchmark_cagr"] == pytest.approx((1 + expected) ** (252 / n) - 1, rel=1e-12)

    saved = json.loads((out / "metrics.json").read_text())
    assert saved["sharpe"] == pytest.approx(m["sharpe"], rel=1e-12)
    curve = pd.read_csv(out / "equity.csv", parse_dates=["date"], index_col="date")["value"]
    np.testing.assert_allclose(curve.to_numpy(), equity.to_numpy(), rtol=1e-15)


def test_tearsheet_written_with_benchmark(run):
    strategy, out = run
    result = strategy.analyzers.quantstatstearsheet.get_analysis()
    html = (out / "tearsheet.html").read_text()
    assert result["path"] == str(out / "tearsheet.html")
    assert result["returns"] == len(strategy.analyzers.portfoliometrics.equity())
    assert "<!doctype html>" in html[:200].lower() and html.rstrip().lower().endswith("</html>")
    assert "SP500" in html and "Plan" in html
    assert not list(out.glob(".tearsheet.html.*"))  # no temporary file left behind
    # The tearsheet is built from the same returns as metrics.json, benchmark on the same dates.
    tearsheet = strategy.analyzers.quantstatstearsheet
    m = strategy.analyzers.portfoliometrics.get_analysis()
    assert qs.stats.sharpe(tearsheet.returns()) == pytest.approx(m["sharpe"], rel=1e-12)
    bench_r = benchmark_returns(tearsheet.p.benchmark, tearsheet.returns().index)
    assert bench_r.index.equals(tearsheet.returns().index)
    assert qs.stats.comp(bench_r) == pytest.approx(m["benchmark_total_return"], rel=1e-9)


def test_string_benchmark_is_refused(market, tmp_path):
    frames, _ = market
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frames["AAPL"].iloc[:30]), name="AAPL")
    cerebro.addstrategy(bt.Strategy)
    ticker_string = "SPY"  # what must be refused: offline QuantStats would turn it into zeros
    cerebro.addanalyzer(QuantStatsTearsheet, benchmark=ticker_string, path=str(tmp_path / "t.html"))
    with pytest.raises(ConfigError, match="'SPY'"):
        cerebro.run()
    assert not (tmp_path / "t.html").exists()


def test_quantstats_cannot_download_inside_the_tearsheet():
    from analyzers.tearsheet import no_downloads

    with no_downloads(qs):
        with pytest.raises(ConfigError, match="SPY"):
            qs.utils._prepare_benchmark("SPY", pd.bdate_range("2020-01-01", periods=3))
    assert qs.utils.download_returns.__name__ == "download_returns"  # restored afterwards


def test_benchmark_returns_cover_the_strategy_dates(market):
    _, bench = market
    dates = pd.DatetimeIndex(bench.index[5:15]).tz_localize("UTC")  # Backtrader-style aware dates
    from_prices = benchmark_returns(bench, dates)
    assert from_prices.index.tz is None and len(from_prices) == 10
    # the first return is against the price of the day before the first strategy date
    assert from_prices.iloc[0] == pytest.approx(bench.iloc[5] / bench.iloc[4] - 1, rel=1e-12)
    np.testing.assert_allclose(from_prices.to_numpy(), bench.pct_change().iloc[5:15].to_numpy(), rtol=1e-12)
    from_returns = benchmark_returns(bench.pct_change().dropna(), dates)
    np.testing.assert_allclose(from_returns.to_numpy(), from_prices.to_numpy(), rtol=1e-9)
    rebased = align_benchmark(bench, dates, base=CASH)
    assert rebased.iloc[0] == CASH
    assert rebased.iloc[-1] == pytest.approx(CASH * bench.iloc[14] / bench.iloc[5], rel=1e-12)


def test_analyzer_results_are_json(run):
    strategy, _ = run
    results = analyzer_results(strategy)
    text = json.dumps(results, allow_nan=False)
    assert {"sqn", "trades", "bt_drawdown", "tradelog", "portfoliometrics", "bt_returns"} <= set(results)
    # Backtrader counts round trips (AAPL's trim + close is one trade): 4, against 5 SELL rows.
    assert results["trades"]["total"]["closed"] == 4
    assert results["bt_drawdown"]["max"]["drawdown"] == pytest.approx(
        strategy.analyzers.bt_drawdown.get_analysis()["max"]["drawdown"]
    )
    assert results["sqn"]["trades"] == 4
    assert all(isinstance(k, str) for k in results["bt_returns"])
    assert len(text) > 100
    assert json_safe({"x": np.float64("nan"), pd.Timestamp("2020-01-02"): np.int64(3)}) == {"x": None, "2020-01-02": 3}


def test_import_analyzer():
    assert import_analyzer("SQN") is bt.analyzers.SQN
    assert import_analyzer("backtrader.analyzers.SQN") is bt.analyzers.SQN
    assert import_analyzer("analyzers.tradelog:TradeLog") is TradeLog
    for bad in ("backtrader.Strategy", "NoSuchAnalyzer", "nowhere.Module"):
        with pytest.raises(ConfigError, match=bad):
            import_analyzer(bad)


def test_fill_row_book_keeping():
    day = pd.Timestamp("2020-01-01").date()
    later = pd.Timestamp("2020-01-11").date()
    row, book = fill_row(Book(), day, "SELL", 10.0, 5)  # opens a short
    assert row["PnL_Pct"] is None and book.size == -5
    row, book = fill_row(book, later, "BUY", 8.0, 8)  # covers (+20 %), flips long 3
    assert row["PnL_Pct"] == pytest.approx(20.0) and row["Days"] == 10
    assert book.size == 3 and book.avg_price == 8.0 and book.opened == later


def test_trade_stats_on_the_seed_log():
    # tests/fixtures/seed_backtest_trades.csv: the seed project's published trade log (Apache-2.0).
    from pathlib import Path

    from analyzers.metrics import trade_stats

    seed = pd.read_csv(Path(__file__).parent / "fixtures" / "seed_backtest_trades.csv")
    sells = seed[seed["Action"] == "SELL"]
    wins = sum(1 for v in sells["PnL_Pct"] if v > 0)  # a plain loop as the independent count
    stats = trade_stats(seed)
    assert stats["n_trades"] == len(sells) > 0
    assert stats["win_rate"] == pytest.approx(wins / len(sells))


def test_compute_metrics_small_cases():
    dates = pd.bdate_range("2021-01-04", periods=4)
    equity = pd.Series([100.0, 110.0, 99.0, 121.0], index=dates)
    m = compute_metrics(equity, initial_value=100.0)
    assert m["total_return"] == pytest.approx(0.21)
    assert m["max_drawdown"] == pytest.approx(99 / 110 - 1)
    assert max_drawdown([100.0, 101.0, 102.0]) == 0.0
    r = daily_returns(equity, 100.0).to_numpy()
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert math.isnan(m["benchmark_cagr"]) and m["n_trades"] == 0
    # A feed with a time zone: bars at 23:59 New York time keep their local date.
    aware = equity.copy()
    aware.index = (dates + pd.Timedelta(hours=23, minutes=59)).tz_localize("America/New_York")
    held = pd.Series([0, 1, 1, 0], index=aware.index)
    local = compute_metrics(aware, exposure=held, initial_value=100.0)
    assert local["start"] == "2021-01-04" and local["exposure"] == 0.5
