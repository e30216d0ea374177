"""Costs beyond commission: slippage and the volume cap, in Cerebro and in the vector engine.

The random cases of tests/test_vector.py (make_cost_case) prove the two engines equal with costs;
these tests check the rules by hand-worked scenarios and Backtrader's own brokers and feeds:
no order is ever rejected with slippage on (also with Backtrader's default cap at high/low on a
stock BackBroker and PandasData feeds), the close-only caveat, a sale split by the volume cap, and
the clear errors.
"""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import analyzers as A
from core.errors import ConfigError, DataError
from feeds import ArrayData, LeanBroker, set_slippage
from strategies import AlphaRankStrategy, ScoreAlpha
from strategies.vector import simulate
from tests.test_vector import assert_same


def ohlc_with_gaps(seed: int, n_stocks: int = 8, n_days: int = 250) -> dict:
    """OHLC frames with gap opens (10-40 % up on 5 % of days), missing days and an intraday range
    beyond the open and the close."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2022-01-03", periods=n_days)
    frames = {}
    for i in range(n_stocks):
        close = 30 + 50 * rng.random() * np.exp(np.cumsum(rng.normal(0, 0.02, n_days)))
        gap = np.where(rng.random(n_days) < 0.05, rng.uniform(0.1, 0.4, n_days), rng.normal(0, 0.005, n_days))
        open_ = np.r_[close[0], close[:-1] * (1 + gap[1:])]
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n_days)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n_days)))
        frame = pd.DataFrame(
            {"open": open_, "high": high, "low": low, "close": close, "volume": rng.uniform(1e4, 1e5, n_days)},
            index=index,
        )
        frames[f"S{i}"] = frame[rng.random(n_days) > 0.05]  # missing days
    return frames


def random_scores(frames: dict, seed: int) -> pd.DataFrame:
    index = next(iter(frames.values())).index.union(pd.bdate_range("2022-01-03", periods=250))
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.uniform(-1, 1, (len(index), len(frames))), index=index, columns=list(frames))


def stock_cerebro(frames, scores, strategy=AlphaRankStrategy, **params):
    """Backtrader as a user has it: bt.Cerebro's own BackBroker and PandasData feeds, and
    Backtrader's set_slippage_perc with its defaults (slip_open=True, capped at high/low)."""
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(20_000.0)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.broker.set_slippage_perc(0.01)
    for ticker, frame in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=ticker)
    cerebro.addstrategy(strategy, alpha=ScoreAlpha.factory(scores), **params)
    cerebro.addanalyzer(A.TradeLog, _name="tradelog")
    return cerebro.run()[0]


class SizesAtTheOpen(AlphaRankStrategy):
    """A broken variant: it sizes at the bare open, as if there were no slippage."""

    def _fill_price(self, d, buy):
        return d.open[0]


def test_stock_backbroker_slippage_rejects_no_order_on_ohlc_with_gaps():
    frames = ohlc_with_gaps(0)
    scores = random_scores(frames, 1)
    params = dict(top_k=3, position_pct=0.5, min_cash=0.0, review_days=3)
    strategy = stock_cerebro(frames, scores, **params)
    trades = strategy.analyzers.tradelog.to_frame()
    assert strategy.rejected_orders == 0 and len(trades) > 100
    # Backtrader's default rule: the slipped open, capped at the bar's high (buys) or low (sells)
    capped_buys = 0
    for row in trades.itertuples():
        bar = frames[row.Ticker].loc[pd.Timestamp(row.Date)]
        if row.Action == "BUY":
            assert row.Price == pytest.approx(min(bar.open * 1.01, bar.high), rel=1e-12)
            capped_buys += bar.open * 1.01 > bar.high
        else:
            assert row.Price == pytest.approx(max(bar.open * 0.99, bar.low), rel=1e-12)
    assert 0 < capped_buys < (trades["Action"] == "BUY").sum()
    # the test has teeth: sizing at the bare open gets orders refused for lack of cash
    assert stock_cerebro(frames, scores, strategy=SizesAtTheOpen, **params).rejected_orders > 0


def test_set_slippage_slips_every_fill_on_close_only_data_and_the_vector_engine_agrees():
    """Close-only data (open = high = low = close): Backtrader's default cap cancels every slip;
    feeds.broker.set_slippage (slip_out=True) slips every fill, and the vector engine agrees."""
    frames = {t: f[["close"]] for t, f in ohlc_with_gaps(2, n_stocks=5, n_days=120).items()}
    scores = random_scores(frames, 3)
    case = dict(
        prices=frames,
        scores=scores,
        params=dict(top_k=3, position_pct=0.3, cross_section="none", entry_threshold=0.3),
        universe=None,
        cash=50_000.0,
        commission=0.0005,
        slippage=0.002,
    )
    assert assert_same(case) > 20

    def fills(slip):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.setbroker(LeanBroker())
        cerebro.broker.setcash(50_000.0)
        slip(cerebro.broker)
        for ticker, frame in frames.items():
            cerebro.adddata(ArrayData(dataname=frame), name=ticker)
        cerebro.addstrategy(AlphaRankStrategy, alpha=ScoreAlpha.factory(scores), **case["params"])
        cerebro.addanalyzer(A.TradeLog, _name="tradelog")
        trades = cerebro.run()[0].analyzers.tradelog.to_frame()
        closes = [frames[t].loc[pd.Timestamp(d), "close"] for t, d in zip(trades["Ticker"], trades["Date"])]
        return trades, np.array(closes)

    trades, opens = fills(lambda b: set_slippage(b, 0.002))
    buy = (trades["Action"] == "BUY").to_numpy()
    assert buy.any() and (~buy).any()
    assert np.allclose(trades["Price"].to_numpy()[buy], opens[buy] * 1.002, rtol=1e-15, atol=0)
    assert np.allclose(trades["Price"].to_numpy()[~buy], opens[~buy] * 0.998, rtol=1e-15, atol=0)
    capped, opens = fills(lambda b: b.set_slippage_perc(0.002))  # Backtrader's default: slip_out=False
    assert np.allclose(capped["Price"].to_numpy(), opens, rtol=1e-15, atol=0)  # no slip at all


def _flat(price, index, volume):
    return pd.DataFrame(
        {"open": price, "high": price, "low": price, "close": price, "volume": volume}, index=index
    ).astype(float)


def test_volume_cap_caps_a_buy_and_splits_a_sale_and_the_slot_waits_in_both_engines():
    index = pd.bdate_range("2024-01-01", periods=20)
    volume_a = np.where(index == pd.Timestamp("2024-01-01"), 300.0, 100.0)  # the decision day: 300
    prices = {"A": _flat(10.0, index, volume_a), "B": _flat(20.0, index, 10_000.0)}
    scores = pd.DataFrame({"A": 0.5, "B": np.nan}, index=index)
    scores.loc["2024-01-05":, "A"] = -0.5
    scores.loc["2024-01-05":, "B"] = 0.4
    params = dict(cross_section="none", top_k=1, close_at_end=False, max_volume_pct=0.5)
    case = dict(prices=prices, scores=scores, params=params, universe=None, cash=10_000.0, commission=0.0)
    assert assert_same(case) == 5
    trades = simulate(prices, scores, params, cash=10_000.0).trades
    # A: 200 shares wanted, 150 = 0.5 x 300 bought; sold 50 a bar (0.5 x 100) from the review on;
    # B waits for A's slot and is bought at the open where A's last shares are sold
    assert trades[["Date", "Action", "Ticker", "Shares", "Reason"]].values.tolist() == [
        ["2024-01-02", "BUY", "A", 150, "entry"],
        ["2024-01-10", "SELL", "A", 50, "review_exit"],
        ["2024-01-11", "SELL", "A", 50, "review_exit"],
        ["2024-01-12", "SELL", "A", 50, "review_exit"],
        ["2024-01-12", "BUY", "B", 100, "entry"],
    ]


def test_a_volume_cap_on_data_without_volume_is_refused_naming_the_data():
    index = pd.bdate_range("2024-01-01", periods=10)
    prices = {"A": _flat(10.0, index, 1e4), "NOVOL": pd.DataFrame({"close": 10.0}, index=index)}
    scores = pd.DataFrame({"A": 0.5, "NOVOL": 0.6}, index=index)
    with pytest.raises(DataError, match="'NOVOL'.*max_volume_pct|max_volume_pct.*'NOVOL'"):
        simulate(prices, scores, dict(max_volume_pct=0.1))
    for feed in (ArrayData, bt.feeds.PandasData):  # a missing volume: 0 in ArrayData, NaN in PandasData
        cerebro = bt.Cerebro(stdstats=False)
        for ticker, frame in prices.items():
            cerebro.adddata(feed(dataname=frame), name=ticker)
        cerebro.addstrategy(AlphaRankStrategy, alpha=ScoreAlpha.factory(scores), max_volume_pct=0.1)
        with pytest.raises(DataError, match="'NOVOL' has no volume"):
            cerebro.run()


def test_bad_costs_are_clear_errors():
    index = pd.bdate_range("2024-01-01", periods=10)
    prices = {"A": _flat(10.0, index, 1e4)}
    scores = pd.DataFrame({"A": 0.5}, index=index)
    with pytest.raises(ConfigError, match="slippage"):
        simulate(prices, scores, {}, slippage=1.5)
    with pytest.raises(ConfigError, match="slippage"):
        set_slippage(bt.brokers.BackBroker(), -0.01)
    with pytest.raises(ConfigError, match="max_volume_pct"):
        simulate(prices, scores, dict(max_volume_pct=0.0))
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(ArrayData(dataname=prices["A"]), name="A")
    cerebro.addstrategy(AlphaRankStrategy, alpha=ScoreAlpha.factory(scores), max_volume_pct=2.0)
    with pytest.raises(ConfigError, match="max_volume_pct"):
        cerebro.run()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.set_slippage_perc(0.01, slip_match=False)
    cerebro.adddata(ArrayData(dataname=prices["A"]), name="A")
    cerebro.addstrategy(AlphaRankStrategy, alpha=ScoreAlpha.factory(scores))
    with pytest.raises(ConfigError, match="slip_match"):
        cerebro.run()


@pytest.mark.filterwarnings("ignore:the backtest starts")
def test_main_job_costs_in_both_engines_and_in_run_json(tmp_path):
    """jobs.backtest.run (Cerebro) and run_vector with [backtest] slippage and max_volume_pct on
    OHLCV data: the same trades.csv, equity.csv and metrics.json bytes, no order rejected, and
    run.json says what was set and why slip_out is on."""
    import json

    from configs import load_config
    from feeds import make_synthetic_universe
    from jobs.backtest import run, run_vector
    from jobs.market import MarketData

    prices, bench = make_synthetic_universe(n_tickers=12, n_days=300, seed=3)
    data = MarketData(prices, bench)
    costs = {"slippage": 0.0005, "max_volume_pct": 0.0005, "start": "2010-06-01", "end": str(prices.dates[-1].date())}
    config = load_config("default", None, {"backtest": costs, "strategy": {"top_k": 4}})
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(rng.uniform(-1, 1, prices.close.shape), index=prices.dates, columns=prices.tickers)
    cerebro = run(config, tmp_path / "cerebro", scores=scores, progress=False, data=data)
    run_vector(config, tmp_path / "vector", scores, data)
    assert cerebro.rejected_orders == 0 and len(cerebro.trades) > 20
    assert partial_sales_of(cerebro.trades) > 0  # the cap binds
    for name in ("trades.csv", "equity.csv", "metrics.json"):
        assert (tmp_path / "vector" / name).read_bytes() == (tmp_path / "cerebro" / name).read_bytes(), name
    record = json.loads((tmp_path / "cerebro" / "run.json").read_text())["costs"]
    assert record["slippage"] == 0.0005 and record["max_volume_pct"] == 0.0005 and record["slip_out"] is True
    assert "not capped" in record["slip_out_why"]
    assert "slippage 5.0 bp a side" in cerebro.costs.summary()


def partial_sales_of(trades):
    from tests.test_vector import partial_sales

    return partial_sales(trades)


def test_close_only_data_says_slip_out_and_refuses_a_volume_cap(embedded):
    from configs import load_config
    from jobs.engines import backtest_costs
    from jobs.market import MarketData

    data = MarketData(*embedded)
    costs = backtest_costs(load_config("default", None, {"backtest": {"slippage": 0.0005}}), data)
    assert costs.close_only and "close-only data" in costs.record()["slip_out_why"]
    assert "close-only" in costs.summary()
    with pytest.raises(DataError, match="max_volume_pct.*has no volume"):
        backtest_costs(load_config("default", None, {"backtest": {"max_volume_pct": 0.01}}), data)
    with pytest.raises(ConfigError, match="slippage"):
        backtest_costs(load_config("default", None, {"backtest": {"slippage": 0.5}}), data)


def test_cli_flags_set_the_backtest_keys_and_bad_values_are_refused():
    import run_backtest

    def config(*argv):
        return run_backtest.config_from_args(run_backtest.main_parser().parse_args(list(argv)))

    assert config()["backtest"]["slippage"] == 0.0 and config()["backtest"]["max_volume_pct"] == 0.0
    got = config("--slippage", "0.0005", "--max-volume-pct", "0.02")["backtest"]
    assert got["slippage"] == 0.0005 and got["max_volume_pct"] == 0.02
    with pytest.raises(ConfigError, match="--slippage"):
        config("--slippage", "0.2")
    with pytest.raises(ConfigError, match="--max-volume-pct"):
        config("--max-volume-pct", "1.5")


def test_the_paper_account_refuses_costs_it_cannot_book():
    from configs import load_config
    from jobs.paper import refuse_costs_paper_cannot_book

    refuse_costs_paper_cannot_book(load_config("default"))
    with pytest.raises(ConfigError, match="paper account models commission only"):
        refuse_costs_paper_cannot_book(load_config("default", None, {"backtest": {"slippage": 0.001}}))
