"""PyFolioPositions: every data's positions, cash and value add up, transactions match orders."""

from __future__ import annotations

import os

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from analyzers.positions import PyFolioPositions, write_pyfolio_tearsheet
from feeds import load_embedded

TICKERS = ["AAPL", "JNJ", "KO", "MSFT", "PG", "XOM"]


class RotateThree(bt.Strategy):
    """Deterministic: every 15 bars hold three names (a rotating window), ~30 % of value each.
    Records what the test checks against: the broker value and each held position per day,
    and every completed order."""

    def __init__(self):
        self.values, self.holdings, self.orders = {}, {}, []

    def notify_order(self, order):
        if order.status == order.Completed:
            self.orders.append(
                (bt.num2date(order.executed.dt).date(), order.data._name, order.executed.size, order.executed.price)
            )

    def next(self):
        day = self.datetime.date()
        self.values[day] = self.broker.getvalue()
        self.holdings[day] = {d._name: self.getposition(d).size * d.close[0] for d in self.datas}
        if len(self) % 15 == 1:
            k = (len(self) // 15) % len(self.datas)
            wanted = {(k + j) % len(self.datas) for j in range(3)}
            for i, d in enumerate(self.datas):  # sells before buys: cash is there
                if i not in wanted:
                    self.order_target_percent(d, target=0.0)
            for i, d in enumerate(self.datas):
                if i in wanted:
                    self.order_target_percent(d, target=0.30)


def _run():
    prices, bench = load_embedded("2015-01-01", "2016-12-31")
    cerebro = bt.Cerebro(stdstats=False)
    for t in TICKERS:
        cerebro.adddata(bt.feeds.PandasData(dataname=prices.frame(t).fillna(0.0)), name=t)
    cerebro.broker.setcash(100_000.0)
    cerebro.addstrategy(RotateThree)
    cerebro.addanalyzer(PyFolioPositions, _name="pf")
    cerebro.addanalyzer(bt.analyzers.PositionsValue, _name="pv", headers=True, cash=True)
    cerebro.addanalyzer(bt.analyzers.PyFolio, _name="btpf")
    strat = cerebro.run()[0]
    return strat, bench


@pytest.fixture(scope="module")
def run():
    return _run()


def test_positions_cover_every_data_and_add_up_to_broker_value(run):
    strat, _ = run
    returns, positions, transactions, gross_lev = strat.analyzers.pf.get_pf_items()
    assert list(positions.columns) == TICKERS + ["cash"]
    assert str(positions.index.tz) == "UTC"
    value = pd.Series({pd.Timestamp(d, tz="UTC"): v for d, v in strat.values.items()})
    assert positions.index.equals(value.index)
    np.testing.assert_allclose(positions.sum(axis=1).to_numpy(), value.to_numpy(), rtol=0, atol=1e-6)
    # Each column is size × close as the strategy saw it, for every data.
    held = pd.DataFrame({pd.Timestamp(d, tz="UTC"): h for d, h in strat.holdings.items()}).T
    np.testing.assert_allclose(positions[TICKERS].to_numpy(), held[TICKERS].to_numpy(), atol=1e-6)
    assert (positions[TICKERS] != 0).any().all(), "every ticker was held at some point"
    assert (positions[TICKERS] != 0).sum(axis=1).max() >= 3, "several names at once"
    # Backtrader's own PositionsValue (all datas) agrees; its PyFolio keeps only the last data.
    pv = strat.analyzers.pv.get_analysis()
    header = pv.pop("Datetime")
    assert header == TICKERS + ["cash"]
    np.testing.assert_allclose(np.array(list(pv.values())), positions.to_numpy(), atol=1e-6)
    assert list(strat.analyzers.btpf.get_pf_items()[1].columns) == [TICKERS[-1], "cash"]
    # Returns are the broker value's daily changes from the starting cash.
    expected = value / value.shift(1).fillna(100_000.0) - 1
    np.testing.assert_allclose(returns.to_numpy(), expected.to_numpy(), atol=1e-12)
    exp_lev = positions[TICKERS].abs().sum(axis=1) / value
    np.testing.assert_allclose(gross_lev.to_numpy(), exp_lev.to_numpy(), atol=1e-12)


def test_transactions_match_the_orders(run):
    strat, _ = run
    _, _, txns, _ = strat.analyzers.pf.get_pf_items()
    assert list(txns.columns) == ["amount", "price", "symbol", "value"]
    assert len(strat.orders) > 20
    assert len(txns) == len(strat.orders)  # one execution per market order here
    got = sorted((ts.date(), r.symbol, r.amount, round(r.price, 9)) for ts, r in txns.iterrows())
    want = sorted((d, n, s, round(p, 9)) for d, n, s, p in strat.orders)
    assert got == want
    np.testing.assert_allclose(txns["value"], -txns["amount"] * txns["price"])
    assert (txns["amount"] > 0).any() and (txns["amount"] < 0).any()


def test_get_analysis_is_plain_dicts(run):
    strat, _ = run
    a = strat.analyzers.pf.get_analysis()
    assert set(a) == {"returns", "positions", "transactions", "gross_lev"}
    first = next(iter(a["positions"].values()))
    assert set(first) == set(TICKERS + ["cash"])
    assert isinstance(a["transactions"][0]["symbol"], str)


@pytest.mark.slow  # 8-21 s on this shared 2-core machine
def test_tearsheet_pngs(run, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    strat, bench = run
    returns, positions, txns, _ = strat.analyzers.pf.get_pf_items()
    bench_rets = bench.pct_change().dropna()
    paths = write_pyfolio_tearsheet(returns, positions, txns, bench_rets, tmp_path / "pyfolio.png")
    names = [p.name for p in paths]
    assert names[:3] == ["pyfolio_returns.png", "pyfolio_positions.png", "pyfolio_transactions.png"]
    assert "pyfolio_round_trips.png" in names
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 20_000
    keep = os.environ.get("KEEP_TEARSHEET_DIR")  # to look at the pictures by hand
    if keep:
        import shutil

        for p in paths:
            shutil.copy(p, keep)


# ------------------------------------------------------------- Backtrader's chart, headless


def test_save_bt_plot_headless_in_a_fresh_process(tmp_path):
    """A fresh interpreter without DISPLAY: Backtrader's TkAgg choice must not break the save."""
    import subprocess
    import sys

    script = f"""
import backtrader as bt
from feeds import load_embedded
from analyzers.btplot import save_bt_plot, traded_datas
prices, _ = load_embedded("2019-01-01", "2019-12-31")
class BuyTwo(bt.Strategy):
    def next(self):
        if len(self) == 20:
            self.buy(self.datas[1], size=10)
            self.buy(self.datas[3], size=10)
        if len(self) == 150:
            self.close(self.datas[1])
cerebro = bt.Cerebro()
for t in {TICKERS!r}:
    cerebro.adddata(bt.feeds.PandasData(dataname=prices.frame(t).fillna(0.0)), name=t)
cerebro.addstrategy(BuyTwo)
strat = cerebro.run()[0]
print([d._name for d in traded_datas(strat)])
print(save_bt_plot(cerebro, {str(tmp_path / "bt.png")!r}))
print([d.plotinfo.plot for d in strat.datas])
"""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(__file__)),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == str([TICKERS[1], TICKERS[3]])  # the traded ones, most trades first
    png = tmp_path / "bt.png"
    assert lines[1] == str(png) and png.read_bytes()[:4] == b"\x89PNG"
    assert png.stat().st_size > 30_000
    assert lines[2] == str([True] * len(TICKERS))  # plot flags restored


def test_save_bt_plot_limits_panels(run, tmp_path, monkeypatch):
    import backtrader.plot.plot as btplot_module

    from analyzers.btplot import save_bt_plot

    strat, _ = run
    drawn = []
    original = btplot_module.Plot.plotdata

    def spy(self, data, indicators):  # Backtrader draws each shown data here
        drawn.append(data._name)
        return original(self, data, indicators)

    monkeypatch.setattr(btplot_module.Plot, "plotdata", spy)
    two = save_bt_plot(strat, tmp_path / "two.png", tickers=["KO", "XOM"])
    assert drawn == ["KO", "XOM"]
    drawn.clear()
    save_bt_plot(strat, tmp_path / "capped.png", max_datas=4)
    assert len(drawn) == 4 and set(drawn) <= set(TICKERS)  # all six traded, capped at four
    assert two.read_bytes()[:4] == b"\x89PNG"
    assert all(d.plotinfo.plot for d in strat.datas)
