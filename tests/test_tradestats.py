"""Trade statistics on the seed's published log and on a TradeLog-style log, checked against
numbers computed here with the csv module and plain arithmetic."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pandas as pd
import pytest

from analyzers.tradestats import (
    closed_trades,
    detect_pnl_unit,
    read_trade_log,
    realized_pnl,
    realized_pnl_png,
    trade_histogram_png,
    trade_stats,
)
from core.errors import DataError

SEED = Path(__file__).parent / "fixtures" / "seed_backtest_trades.csv"


def _seed_rows():
    with open(SEED, newline="") as fh:
        return list(csv.DictReader(fh))


def test_seed_log_stats_match_a_hand_count():
    rows = _seed_rows()
    sells = [r for r in rows if r["Action"] == "SELL"]
    pct = [float(r["PnL_Pct"]) * 100 for r in sells]  # the seed logged fractions
    wins = [p for p in pct if p > 0]
    losses = [p for p in pct if p < 0]
    stats = trade_stats(read_trade_log(SEED))
    assert stats["count"] == len(sells) == 61
    assert stats["win_rate"] == pytest.approx(len(wins) / len(pct))
    assert stats["mean_pnl_pct"] == pytest.approx(sum(pct) / len(pct))
    assert stats["median_pnl_pct"] == pytest.approx(statistics.median(pct))
    assert stats["best_pnl_pct"] == pytest.approx(max(pct))
    assert stats["worst_pnl_pct"] == pytest.approx(min(pct))
    assert stats["avg_win_pct"] == pytest.approx(sum(wins) / len(wins))
    assert stats["avg_loss_pct"] == pytest.approx(sum(losses) / len(losses))
    assert stats["profit_factor"] == pytest.approx(sum(wins) / abs(sum(losses)))
    days = [float(r["Days"]) for r in sells]
    assert stats["avg_holding_days"] == pytest.approx(sum(days) / len(days))
    # Open at the end: tickers bought more than sold (5 positions, the seed's cap).
    net = {}
    for r in rows:
        net[r["Ticker"]] = net.get(r["Ticker"], 0) + (1 if r["Action"] == "BUY" else -1) * int(r["Shares"])
    assert stats["open_positions_at_end"] == sum(1 for v in net.values() if v) == 5


def test_seed_pnl_is_a_fraction_that_agrees_with_its_prices():
    assert detect_pnl_unit(read_trade_log(SEED)) == "fraction"
    rows = _seed_rows()
    # Spot check: REGN bought at 678.35, sold at 558.25 => -17.70 %.
    regn = [r for r in rows if r["Ticker"] == "REGN"]
    assert float(regn[-1]["Price"]) / float(regn[0]["Price"]) - 1 == pytest.approx(float(regn[-1]["PnL_Pct"]), abs=1e-9)
    closed = closed_trades(read_trade_log(SEED))
    assert closed["PnL_Pct"].iloc[0] == pytest.approx(
        float([r for r in rows if r["Action"] == "SELL"][0]["PnL_Pct"]) * 100
    )


def test_realized_pnl_equals_dollar_pnl_of_matched_round_trips():
    # The seed opens each position with one BUY and closes it with one SELL of all shares.
    open_buy, by_date = {}, {}
    for r in _seed_rows():
        if r["Action"] == "BUY":
            open_buy[r["Ticker"]] = float(r["Price"])
        else:
            dollars = int(r["Shares"]) * (float(r["Price"]) - open_buy.pop(r["Ticker"]))
            by_date[r["Date"]] = by_date.get(r["Date"], 0.0) + dollars
    running, expected = 0.0, []
    for day in sorted(by_date):
        running += by_date[day]
        expected.append(running)
    curve = realized_pnl(read_trade_log(SEED))
    assert [d.strftime("%Y-%m-%d") for d in curve.index] == sorted(by_date)
    assert curve.tolist() == pytest.approx(expected, rel=1e-9)


def _our_log():
    # TradeLog-style: PnL_Pct in percent, partial sell, Days in calendar days, an open position.
    return pd.DataFrame(
        [
            dict(Date="2020-01-02", Action="BUY", Ticker="AAA", Price=100.0, Shares=10, PnL_Pct=None, Days=None),
            dict(Date="2020-01-02", Action="BUY", Ticker="BBB", Price=50.0, Shares=20, PnL_Pct=None, Days=None),
            dict(Date="2020-01-10", Action="SELL", Ticker="AAA", Price=110.0, Shares=4, PnL_Pct=10.0, Days=8),
            dict(Date="2020-01-20", Action="SELL", Ticker="AAA", Price=90.0, Shares=6, PnL_Pct=-10.0, Days=18),
            dict(Date="2020-01-21", Action="BUY", Ticker="CCC", Price=10.0, Shares=100, PnL_Pct=None, Days=None),
            dict(Date="2020-02-01", Action="SELL", Ticker="BBB", Price=50.5, Shares=20, PnL_Pct=1.0, Days=30),
        ]
    )


def test_our_percent_log():
    log = _our_log()
    assert detect_pnl_unit(log) == "percent"  # |PnL| values all <= 10 would fool a magnitude rule
    s = trade_stats(log)
    assert s["count"] == 3 and s["open_positions_at_end"] == 1
    assert s["win_rate"] == pytest.approx(2 / 3)
    assert s["mean_pnl_pct"] == pytest.approx(1 / 3)
    assert s["profit_factor"] == pytest.approx(11 / 10)
    assert s["avg_holding_days"] == pytest.approx(56 / 3)
    # 4*(110-100) + 6*(90-100) + 20*(50.5-50) = 40 - 60 + 10
    assert realized_pnl(log).tolist() == pytest.approx([40.0, -20.0, -10.0])
    assert trade_stats(log, pnl_unit="fraction")["mean_pnl_pct"] == pytest.approx(100 / 3)


def test_small_fraction_log_is_not_mistaken_for_percent():
    log = _our_log()
    log["PnL_Pct"] = log["PnL_Pct"] / 100
    assert detect_pnl_unit(log) == "fraction"


def test_missing_column_names_it():
    with pytest.raises(DataError, match="PnL_Pct"):
        trade_stats(pd.DataFrame({"Date": [], "Action": [], "Ticker": [], "Price": [], "Shares": []}))


def test_pngs(tmp_path):
    log = read_trade_log(SEED)
    for fn, name in ((trade_histogram_png, "hist.png"), (realized_pnl_png, "pnl.png")):
        out = fn(log, tmp_path / name)
        assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 10_000
