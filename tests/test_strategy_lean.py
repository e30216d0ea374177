"""AlphaRankStrategy's lean paths against the per-stock stock paths, bar for bar.

The lean run: ArrayData(lean=True) feeds whose price lines follow their datetime line, ScoreAlpha
lines that follow their stock's once runonce has computed them, AlphaRankStrategy's own
_oncepost (no advance check for those alphas, no min-period recount once every data started),
the day's scores from one grid row, and LeanBroker. The reference run: stock PandasData and
BackBroker, Backtrader's own Strategy._oncepost, and the strategy's per-stock loop over the score
lines (no grid). Both must give the same fills, values, analyzer calls and indicator readings.
"""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from core.lean import FollowerLineBuffer, follows_clock
from feeds.arraydata import ArrayData, feed_frame
from feeds.broker import LeanBroker
from feeds.synthetic import make_synthetic_universe
from strategies import AlphaRankStrategy, ScoreAlpha


def _universe():
    """Late starters, gaps, a stock that ends early, and scores with NaN holes."""
    panel, bench = make_synthetic_universe(n_tickers=8, n_days=160, seed=11, late_start_share=0.4)
    frames = {ticker: feed_frame(frame) for ticker, frame in panel.items()}
    tickers = list(frames)
    frames[tickers[0]] = frames[tickers[0]].drop(frames[tickers[0]].index[[20, 21, 60]])  # gaps
    frames[tickers[1]] = frames[tickers[1]].iloc[:-40]  # ends early (a delisting)
    rng = np.random.default_rng(4)
    scores = pd.DataFrame(rng.uniform(-1, 1, (len(panel.dates), len(tickers))), index=panel.dates, columns=tickers)
    scores = scores.mask(rng.random(scores.shape) < 0.05)
    return frames, feed_frame(bench), scores


class Recorder(bt.Analyzer):
    """What an analyzer sees each bar: which hook ran, the value, and the strategy's SMA reading."""

    def start(self):
        self.rows = []

    def prenext(self):
        self.rows.append(("prenext", len(self.strategy)))

    def next(self):
        s = self.strategy
        sma = s.sma[0] if isinstance(s, WithSma) else None
        self.rows.append(("next", len(s), s.broker.getvalue(), s.broker.getcash(), sma))

    def notify_order(self, order):
        if order.status == order.Completed:
            self.rows.append(("fill", order.data._name, order.executed.dt, order.executed.size, order.executed.price))


class WithSma(AlphaRankStrategy):
    """AlphaRankStrategy plus a stock indicator that must still be advanced every bar."""

    def __init__(self):
        super().__init__()
        self.sma = bt.indicators.SMA(self.datas[0].close, period=5)


class PerStock(WithSma):
    """The reference: Backtrader's own _oncepost and the per-stock loop over the score lines."""

    _oncepost = bt.Strategy._oncepost

    def _score_grid(self):
        return False


def _run(frames, bench, scores, strategy, lean: bool, runonce: bool):
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    cerebro.broker = LeanBroker() if lean else bt.brokers.BackBroker()
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.setcommission(commission=0.001)
    feed = (lambda f: ArrayData(dataname=f, lean=True)) if lean else (lambda f: bt.feeds.PandasData(dataname=f))
    cerebro.adddata(feed(bench), name="IDX")
    for ticker, frame in frames.items():
        cerebro.adddata(feed(frame), name=ticker)
    cerebro.addstrategy(
        strategy, alpha=ScoreAlpha.factory(scores), benchmark="IDX", top_k=3, position_pct=0.3, review_days=3
    )
    cerebro.addanalyzer(Recorder, _name="rec")
    return cerebro.run()[0]


@pytest.mark.parametrize("runonce", [True, False], ids=["runonce", "next"])
def test_lean_paths_trade_and_report_as_the_per_stock_stock_paths(runonce):
    frames, bench, scores = _universe()
    lean = _run(frames, bench, scores, WithSma, lean=True, runonce=runonce)
    stock = _run(frames, bench, scores, PerStock, lean=False, runonce=runonce)
    expected, got = stock.analyzers.rec.rows, lean.analyzers.rec.rows
    fills = [r for r in expected if r[0] == "fill"]
    assert len(fills) > 20 and {r[0] for r in expected} == {"prenext", "next", "fill"}  # the test has teeth
    assert got == expected
    pd.testing.assert_frame_equal(lean.scores_read(), stock.scores_read())
    assert lean.broker.getvalue() == stock.broker.getvalue()
    if runonce:  # the lean machinery was really on
        assert lean._grid is not False and stock._grid is False
        assert all(follows_clock(a) for a in lean.alphas.values())
        assert lean._moving == [lean.sma]  # only the stock indicator is still advanced
        assert all(type(d.lines.close) is FollowerLineBuffer for d in lean.datas)


def test_a_lean_feed_runs_twice_with_the_same_bars():
    """The followers survive a second run of the same feed objects (Cerebro.run() again)."""
    frames, bench, scores = _universe()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker = LeanBroker()
    for ticker, frame in list(frames.items())[:3]:
        cerebro.adddata(ArrayData(dataname=frame, lean=True), name=ticker)
    cerebro.addstrategy(AlphaRankStrategy, alpha=ScoreAlpha.factory(scores), top_k=2, position_pct=0.4)
    cerebro.addanalyzer(Recorder, _name="rec")
    first = [r for r in cerebro.run()[0].analyzers.rec.rows if r[0] == "fill"]
    second_strat = cerebro.run()[0]
    second = [r for r in second_strat.analyzers.rec.rows if r[0] == "fill"]
    assert first and second == first
    assert all(d._lean_fast for d in second_strat.datas)
