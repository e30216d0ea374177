"""ArrayData / FastArrayData / LeanBroker against Backtrader's stock PandasData and BackBroker.

Every test runs the same Cerebro twice, once with the stock parts, and demands identical bars,
fills and broker values (exact float equality, NaN == NaN)."""

import datetime as dt

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from feeds.arraydata import ArrayData, FastArrayData, datetime_numbers, feed_frame
from feeds.broker import LeanBroker
from feeds.synthetic import make_synthetic_universe


@pytest.fixture(scope="module")
def panel():
    prices, _ = make_synthetic_universe(n_tickers=6, n_days=160, seed=3, late_start_share=0.5)
    return prices


@pytest.fixture(scope="module")
def frames(panel):
    return {ticker: feed_frame(frame) for ticker, frame in panel.items()}


class RecordBars(bt.Strategy):
    """Records len and every line of every started data on each strategy bar."""

    def __init__(self):
        self.bars = {d._name: [] for d in self.datas}

    def prenext(self):
        self.next()

    def next(self):
        for d in self.datas:
            if len(d):
                self.bars[d._name].append((len(d),) + tuple(getattr(d.lines, a)[0] for a in d.getlinealiases()))


def run(strategy, frames, feed_cls, broker_cls=None, feed_kwargs=None, **cerebro_kwargs):
    cerebro = bt.Cerebro(stdstats=False, **cerebro_kwargs)
    if broker_cls is not None:
        cerebro.broker = broker_cls()
    for name, frame in frames.items():
        cerebro.adddata(feed_cls(dataname=frame, **(feed_kwargs or {})), name=name)
    cerebro.addstrategy(strategy)
    return cerebro.run()[0]


def assert_same_bars(expected: dict, actual: dict):
    assert expected.keys() == actual.keys()
    for name in expected:
        e, a = np.array(expected[name], dtype=float), np.array(actual[name], dtype=float)
        assert e.shape == a.shape, name
        np.testing.assert_array_equal(a, e, err_msg=name)  # NaN == NaN, otherwise exact
    assert sum(len(bars) for bars in expected.values()) > 0


@pytest.mark.parametrize("feed_cls", [ArrayData, FastArrayData])
@pytest.mark.parametrize("runonce,preload", [(True, True), (False, True), (False, False)])
def test_same_bars_as_pandasdata(frames, feed_cls, runonce, preload):
    stock = run(RecordBars, frames, bt.feeds.PandasData, runonce=runonce, preload=preload)
    ours = run(RecordBars, frames, feed_cls, runonce=runonce, preload=preload)
    assert_same_bars(stock.bars, ours.bars)
    # The fast paths really ran: arrays handed over in preload, lean advance where asked.
    assert all(d._lean_fast == (feed_cls is FastArrayData and preload) for d in ours.datas)
    assert all((d._line_values is None) == preload for d in ours.datas)  # preload skipped per-bar _load
    # The late starters really start late (the test covers unequal lengths).
    lengths = {name: len(bars) for name, bars in stock.bars.items()}
    assert len(set(lengths.values())) > 1
    # Whole buffers too, datetime floats included, read after the run.
    for ds, do in zip(stock.datas, ours.datas):
        for alias in ds.getlinealiases():
            np.testing.assert_array_equal(
                np.asarray(getattr(do.lines, alias).array), np.asarray(getattr(ds.lines, alias).array)
            )


@pytest.mark.parametrize("runonce", [True, False])
def test_fromdate_todate(frames, runonce):
    kwargs = dict(fromdate=dt.datetime(2010, 3, 1), todate=dt.datetime(2010, 5, 14))
    stock = run(RecordBars, frames, bt.feeds.PandasData, feed_kwargs=kwargs, runonce=runonce)
    ours = run(RecordBars, frames, FastArrayData, feed_kwargs=kwargs, runonce=runonce)
    assert_same_bars(stock.bars, ours.bars)
    first = min(bars[0][-1] for bars in ours.bars.values() if bars)  # datetime is the last alias
    last = max(bars[-1][-1] for bars in ours.bars.values() if bars)
    assert bt.num2date(first).date() >= dt.date(2010, 3, 1)
    assert bt.num2date(last).date() == dt.date(2010, 5, 14)


def test_tzinput_and_filters_take_the_per_bar_path(frames):
    pytest.importorskip("pytz")
    kwargs = dict(tzinput="America/New_York", tz="UTC")
    two = {k: frames[k] for k in list(frames)[:2]}
    stock = run(RecordBars, two, bt.feeds.PandasData, feed_kwargs=kwargs)
    ours = run(RecordBars, two, FastArrayData, feed_kwargs=kwargs)
    assert_same_bars(stock.bars, ours.bars)
    assert stock.bars["SYN0001"][0][-1] % 1 != 0  # the localization really moved the stamps
    assert all(d._line_values is not None for d in ours.datas)  # built only by the per-bar _load


def test_series_of_closes_is_a_flat_bar():
    closes = pd.Series([100.0, 101.5, np.nan, 99.25], index=pd.bdate_range("2020-01-06", periods=4), name="SPX")
    by_hand = pd.DataFrame(
        {"open": closes, "high": closes, "low": closes, "close": closes, "volume": 0.0, "openinterest": 0.0}
    )
    for runonce in (True, False):
        stock = run(RecordBars, {"SPX": by_hand}, bt.feeds.PandasData, runonce=runonce)
        ours = run(RecordBars, {"SPX": closes}, ArrayData, runonce=runonce)
        assert_same_bars(stock.bars, ours.bars)


def test_feed_frame_fills_volume_and_openinterest():
    prices, _ = make_synthetic_universe(n_tickers=2, n_days=10, seed=1, ohlcv=False, late_start_share=0)
    raw = prices.frame("SYN0001")
    assert raw["volume"].isna().all()  # close-only panel: no volume
    served = feed_frame(raw)
    assert list(served.columns) == ["open", "high", "low", "close", "volume", "openinterest"]
    assert (served["volume"] == 0).all() and (served["openinterest"] == 0).all()
    pd.testing.assert_series_equal(served["close"], raw["close"])
    # Missing open/high/low take the close.
    only_close = raw[["close"]]
    np.testing.assert_array_equal(feed_frame(only_close)["high"], raw["close"])


def test_datetime_numbers_match_date2num():
    naive = pd.date_range("1999-12-30", periods=5, freq="D")
    intraday = pd.date_range("2021-03-01 09:30:00.123456", periods=5, freq="37min")
    aware = pd.date_range("2021-03-01 09:30", periods=3, freq="h", tz="America/New_York")
    for index in (naive, intraday, aware):
        expected = [bt.date2num(ts.to_pydatetime()) for ts in index]
        np.testing.assert_array_equal(datetime_numbers(index), np.array(expected))


def test_intraday_bars_as_pandasdata():
    index = pd.date_range("2021-03-01 09:30", periods=30, freq="5min")
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, 30)))
    frame = pd.DataFrame(
        {
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 10.0,
            "openinterest": 0.0,
        },
        index=index,
    )
    kwargs = dict(timeframe=bt.TimeFrame.Minutes, compression=5)
    stock = run(RecordBars, {"X": frame}, bt.feeds.PandasData, feed_kwargs=kwargs)
    ours = run(RecordBars, {"X": frame}, FastArrayData, feed_kwargs=kwargs)
    assert_same_bars(stock.bars, ours.bars)


def test_resampled_lean_feed_falls_back_to_stock_ticks(frames):
    def weekly(feed_cls):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.resampledata(feed_cls(dataname=frames["SYN0001"]), name="W", timeframe=bt.TimeFrame.Weeks)
        cerebro.addstrategy(RecordBars)
        return cerebro.run()[0]

    stock, lean = weekly(bt.feeds.PandasData), weekly(FastArrayData)
    assert_same_bars(stock.bars, lean.bars)
    assert not lean.datas[0]._lean_active and len(lean.bars["W"]) < len(frames["SYN0001"]) / 4


def test_bad_input_names_the_problem():
    with pytest.raises(DataError, match="close"):
        ArrayData(dataname=pd.DataFrame({"open": [1.0]}, index=pd.DatetimeIndex(["2020-01-02"])), name="XYZ")
    with pytest.raises(DataError, match="DatetimeIndex"):
        ArrayData(dataname=pd.Series([1.0, 2.0], name="ABC"))
    with pytest.raises(DataError, match="Series"):
        ArrayData(dataname=[1.0, 2.0])


class SmaTrader(bt.Strategy):
    """Per-data SMA rule; orders fill at the next open. Records fills, trades and daily value."""

    params = (("period", 5),)

    def __init__(self):
        self.sma = {d: bt.indicators.SMA(d.close, period=self.p.period) for d in self.datas}
        self.fills, self.trades, self.values = [], [], []

    def prenext(self):
        self.next()

    def next(self):
        self.values.append((self.datetime[0], self.broker.getvalue(), self.broker.getcash()))
        for d in self.datas:
            if len(d) <= self.p.period:  # not started, or SMA not ready yet
                continue
            size = self.getposition(d).size
            if not size and d.close[0] > self.sma[d][0]:
                self.buy(data=d, size=7)
            elif size and d.close[0] < self.sma[d][0]:
                self.close(data=d)

    def notify_order(self, order):
        if order.status in (order.Completed, order.Margin, order.Rejected):
            self.fills.append(
                (
                    order.data._name,
                    order.getstatusname(),
                    order.executed.dt,
                    order.executed.price,
                    order.executed.size,
                    order.executed.comm,
                )
            )

    def notify_trade(self, trade):
        if trade.isclosed:
            self.trades.append((trade.data._name, trade.dtopen, trade.dtclose, trade.pnl, trade.pnlcomm))


@pytest.mark.parametrize(
    "mode",
    [dict(runonce=True), dict(runonce=False), dict(preload=False), dict(exactbars=1)],
    ids=["runonce", "next", "no-preload", "exactbars"],
)
def test_lean_feed_and_broker_trade_like_stock(frames, mode):
    def trade(feed_cls, broker_cls):
        cerebro = bt.Cerebro(stdstats=False, **mode)
        cerebro.broker = broker_cls(cash=10_000.0)
        cerebro.broker.setcommission(commission=0.001)
        for name, frame in frames.items():
            cerebro.adddata(feed_cls(dataname=frame), name=name)
        cerebro.addstrategy(SmaTrader)
        strat = cerebro.run()[0]
        return strat, cerebro.broker.getvalue()

    stock, stock_value = trade(bt.feeds.PandasData, bt.brokers.BackBroker)
    assert len(stock.trades) > 10 and len(stock.fills) > 20
    for feed_cls, broker_cls in [
        (ArrayData, bt.brokers.BackBroker),
        (FastArrayData, bt.brokers.BackBroker),
        (FastArrayData, LeanBroker),
    ]:
        ours, value = trade(feed_cls, broker_cls)
        assert ours.fills == stock.fills, (feed_cls.__name__, broker_cls.__name__)
        assert ours.trades == stock.trades
        assert ours.values == stock.values
        assert value == stock_value
    # Fills happen at the next bar's open: an independent check on the recorded prices.
    opens = {name: dict(zip(datetime_numbers(f.index), f["open"])) for name, f in frames.items()}
    for name, status, when, price, _size, _comm in stock.fills:
        if status == "Completed":
            assert price == pytest.approx(opens[name][when], rel=1e-12)  # executed.price is an average


@pytest.mark.parametrize("lean_feed", [False, True])
def test_lean_broker_counts_nan_like_stock(lean_feed):
    """A flat position on a NaN close makes the stock value NaN: LeanBroker must not hide it, on a
    stock-mode or a lean feed (a lean feed with a NaN close is not 'always finite')."""
    closes = pd.Series([10.0, 11.0, np.nan, 12.0], index=pd.bdate_range("2020-01-06", periods=4))

    class Touch(bt.Strategy):
        def __init__(self):
            self.values = []

        def next(self):
            self.getposition(self.data)
            self.values.append(self.broker.getvalue())

    def values(broker_cls, lean):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.broker = broker_cls(cash=100.0)
        cerebro.adddata(ArrayData(dataname=closes, lean=lean), name="X")
        cerebro.addstrategy(Touch)
        strat = cerebro.run()[0]
        assert strat.data.close_always_finite is False
        return strat.values

    stock = values(bt.brokers.BackBroker, lean=False)
    np.testing.assert_array_equal(values(LeanBroker, lean=lean_feed), stock)
    assert np.isnan(stock).sum() == 1


def test_bench_feed_runs_small(capsys):
    from bench.bench_feed import main

    rows = main(["--tickers", "4", "--days", "40", "--repeats", "1"])
    out = capsys.readouterr().out
    assert [r["feed"] for r in rows][0] == "PandasData (stock)" and len(rows) == 4
    assert rows[0]["speed-up vs PandasData"] == 1.0 and all(r["us/data-bar"] > 0 for r in rows)
    assert "SYNTHETIC" in out and "final broker values agree: True" in out
