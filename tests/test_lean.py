"""LeanLinesMixin against the stock bookkeeping: same len() and same values on every bar."""

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from core.lean import LeanLinesMixin
from feeds.arraydata import ArrayData


class Doubled(bt.Indicator):
    lines = ("value",)

    def next(self):
        self.lines.value[0] = 2 * self.data.close[0]

    def once(self, start, end):
        src, dst = self.data.close.array, self.lines.value.array
        for i in range(start, end):
            dst[i] = 2 * src[i]


class LeanDoubled(LeanLinesMixin, Doubled):
    pass


def _frame(start, n, seed):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
        index=pd.bdate_range(start, periods=n),
    )


@pytest.mark.parametrize("runonce", [True, False])
def test_lean_indicator_and_feed_match_the_stock_ones(runonce):
    seen = {}

    class Record(bt.Strategy):
        def __init__(self):
            self.pairs = [(d, Doubled(d), LeanDoubled(d)) for d in self.datas]

        def prenext(self):
            self.next()

        def next(self):
            for d, stock, lean in self.pairs:
                assert len(lean) == len(stock) == len(d) == len(d.lines.datetime)
                if len(d):
                    seen.setdefault(d._name, []).append((stock.value[0], lean.value[0]))

    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    cerebro.adddata(ArrayData(dataname=_frame("2020-01-01", 60, 1), lean=True), name="A")
    cerebro.adddata(ArrayData(dataname=_frame("2020-02-03", 30, 2), lean=True), name="LATE")
    cerebro.addstrategy(Record)
    cerebro.run()
    assert len(seen["A"]) == 60 and len(seen["LATE"]) >= 30  # LATE ends first and keeps its last bar
    for rows in seen.values():
        stock, lean = np.array(rows).T
        np.testing.assert_array_equal(stock, lean)
