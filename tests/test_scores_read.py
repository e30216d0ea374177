"""AlphaRankStrategy.scores_read: the scores a run read, as a frame that trades the same again
(in Cerebro with ScoreAlpha, and in the vector engine)."""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import analyzers as A
from feeds import ArrayData, LeanBroker
from strategies import AlphaRankStrategy, ScoreAlpha, load_scores_csv, scores_csv
from strategies.vector import simulate
from tests.test_vector import make_case


class Momentum(bt.Indicator):
    """A stand-in for a model's indicator: tanh of 20 x the 3-bar return (NaN in the warm-up)."""

    lines = ("score",)

    def __init__(self):
        self.addminperiod(4)

    def next(self):
        self.lines.score[0] = float(np.tanh(20 * (self.data.close[0] / self.data.close[-3] - 1)))


def run(case, alpha, runonce=True):
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, runonce=runonce)
    cerebro.setbroker(LeanBroker())
    cerebro.broker.setcash(case["cash"])
    cerebro.broker.setcommission(commission=case["commission"])
    for ticker, frame in case["prices"].items():
        cerebro.adddata(ArrayData(dataname=frame, lean=True), name=ticker)
    cerebro.addstrategy(AlphaRankStrategy, alpha=alpha, universe=case["universe"], **case["params"])
    cerebro.addanalyzer(A.TradeLog, _name="tradelog")
    return cerebro.run()[0]


def frame_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


@pytest.mark.parametrize("seed", [3, 7, 11])
def test_a_score_frame_is_read_back_on_the_bars_the_stocks_have(seed):
    case = make_case(seed)
    strategy = run(case, ScoreAlpha.factory(case["scores"]))
    read = strategy.scores_read()
    for ticker, frame in case["prices"].items():
        bars = frame.index
        column = read[ticker]
        np.testing.assert_array_equal(column.loc[bars].to_numpy(), case["scores"][ticker].loc[bars].to_numpy())
        assert column.drop(bars).isna().all(), ticker  # no bar, no score
    assert read.index.equals(pd.DatetimeIndex(sorted(set().union(*(f.index for f in case["prices"].values())))))


@pytest.mark.parametrize("runonce", [True, False])
def test_the_scores_of_an_indicator_trade_the_same_again(runonce):
    case = make_case(5)
    case["params"] = {**case["params"], "entry_threshold": 0.2, "exit_threshold": 0.0}
    first = run(case, Momentum, runonce=runonce)
    read = first.scores_read()
    assert read.notna().to_numpy().sum() > 0.8 * sum(len(f) for f in case["prices"].values())
    expected = frame_text(first.analyzers.tradelog.to_frame())
    assert expected.count("\n") > 10  # it trades
    again = run(case, ScoreAlpha.factory(read))
    assert frame_text(again.analyzers.tradelog.to_frame()) == expected
    vector = simulate(case["prices"], read, case["params"], case["cash"], case["commission"], universe=case["universe"])
    ours, theirs = vector.trades, first.analyzers.tradelog.to_frame()
    assert ours[["Date", "Action", "Ticker", "Shares"]].equals(theirs[["Date", "Action", "Ticker", "Shares"]])


def test_scores_csv_reads_back_bit_for_bit_and_trades_the_same(tmp_path):
    case = make_case(5)
    first = run(case, Momentum)
    read = first.scores_read()
    path = tmp_path / "scores.csv"
    path.write_text(scores_csv(read))
    back = load_scores_csv(path)
    assert back.index.equals(read.index) and list(back.columns) == list(read.columns)
    np.testing.assert_array_equal(back.to_numpy(), read.to_numpy())  # NaN where NaN, every bit elsewhere
    again = run(case, ScoreAlpha.factory(back))
    assert frame_text(again.analyzers.tradelog.to_frame()) == frame_text(first.analyzers.tradelog.to_frame())
