"""Runs that never trade (issue 20.1): no crash, the tearsheet skipped with a note, and a reason.

Each trigger the newcomer review found, on half a year of the embedded data with precomputed
scores (no training): an entry threshold of 1.0, an all-zero scores file, and a universe that
leaves one eligible stock.
"""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from analyzers.metrics import PortfolioMetrics, compute_metrics
from analyzers.tearsheet import QuantStatsTearsheet, skip_reason, write_tearsheet
from analyzers.tradelog import TradeLog
from feeds import Membership, load_embedded
from strategies import AlphaRankStrategy, ScoreAlpha
from strategies.alpha_rank import no_trade_reason

START, END = "2021-01-04", "2021-06-30"
TICKERS = ["AAPL", "JNJ", "CVX", "MSFT"]


@pytest.fixture(scope="module")
def market():
    prices, bench = load_embedded(START, END)
    return {t: prices.frame(t) for t in TICKERS}, bench


def random_scores(frames, seed=0) -> pd.DataFrame:
    dates = frames[TICKERS[0]].index
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.uniform(-1, 1, (len(dates), len(TICKERS))), index=dates, columns=TICKERS)


def backtest(market, scores, tmp_path, universe=None, **params):
    frames, bench = market
    cerebro = bt.Cerebro(stdstats=False)
    for ticker, frame in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=ticker)
    cerebro.broker.setcash(100_000.0)
    cerebro.addstrategy(AlphaRankStrategy, alpha=ScoreAlpha.factory(scores), universe=universe, **params)
    cerebro.addanalyzer(TradeLog, path=str(tmp_path / "trades.csv"), _name="tradelog")
    cerebro.addanalyzer(PortfolioMetrics, benchmark=bench, out_dir=str(tmp_path), _name="metrics")
    cerebro.addanalyzer(QuantStatsTearsheet, benchmark=bench, path=str(tmp_path / "tearsheet.html"), _name="tear")
    return cerebro.run()[0]


def assert_no_trades_reported(strategy, tmp_path):
    tear = strategy.analyzers.tear.get_analysis()
    assert tear["path"] is None and "no position was held" in tear["skipped"]
    assert not (tmp_path / "tearsheet.html").exists()
    metrics = strategy.analyzers.metrics.get_analysis()
    assert metrics["n_trades"] == 0 and metrics["total_return"] == 0.0
    assert metrics["sharpe"] is None and metrics["psr"] is None  # undefined on constant returns, not 0.5
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "trades.csv").exists()


def test_entry_threshold_one_never_buys_and_says_so(market, tmp_path):
    strategy = backtest(market, random_scores(market[0]), tmp_path, entry_threshold=1.0)
    assert_no_trades_reported(strategy, tmp_path)
    summary = strategy.entry_summary()
    assert summary["best_score"] == 1.0 and summary["most_eligible"] == len(TICKERS)  # the top rank is 1.0
    reason = no_trade_reason(summary)
    assert reason.startswith("no score passed the entry threshold") and "entry_threshold 1" in reason


def test_all_zero_scores_never_buy_and_say_the_ranks_tie(market, tmp_path):
    zeros = random_scores(market[0]) * 0.0
    strategy = backtest(market, zeros, tmp_path)
    assert_no_trades_reported(strategy, tmp_path)
    reason = no_trade_reason(strategy.entry_summary())
    assert "no score passed the entry threshold" in reason and "all tied" in reason
    # taken as given (cross-section none) the zeros fail the threshold too, without the tie hint
    none = backtest(market, zeros, tmp_path / "none", cross_section="none")
    assert "all tied" not in no_trade_reason(none.entry_summary())
    assert none.analyzers.metrics.get_analysis()["n_trades"] == 0


def test_universe_of_one_eligible_stock_names_the_rank_rule(market, tmp_path):
    one = Membership({"AAPL": [(pd.Timestamp("2000-01-01"), pd.Timestamp("2030-01-01"))]}, "one.csv")
    strategy = backtest(market, random_scores(market[0]), tmp_path, universe=one)
    assert_no_trades_reported(strategy, tmp_path)
    summary = strategy.entry_summary()
    assert summary["most_eligible"] == 1
    assert no_trade_reason(summary).startswith("fewer eligible stocks than the 2 that cross_section='rank' needs")


def test_a_trading_run_is_unchanged_and_gets_its_tearsheet(market, tmp_path):
    strategy = backtest(market, random_scores(market[0]), tmp_path)
    assert strategy.analyzers.metrics.get_analysis()["n_trades"] > 0
    tear = strategy.analyzers.tear.get_analysis()
    assert tear["skipped"] is None and (tmp_path / "tearsheet.html").stat().st_size > 0
    assert strategy.entry_summary()["best_score"] > 0.2


def test_no_trade_reason_covers_every_case():
    base = {"decision_days": 10, "most_eligible": 3, "best_score": 0.1, "entry_threshold": 0.2}
    assert "no bar" in no_trade_reason({**base, "decision_days": 0, "cross_section": "rank"})
    assert "no stock was eligible" in no_trade_reason({**base, "most_eligible": 0, "cross_section": "rank"})
    none = no_trade_reason({**base, "most_eligible": 1, "cross_section": "none"})
    assert "highest score of an eligible stock was +0.1000" in none  # one stock is fine without ranks
    passed = no_trade_reason({**base, "best_score": 0.5, "cross_section": "rank"})
    assert "no buy was filled" in passed


def test_skip_reason_and_write_tearsheet_on_constant_returns(tmp_path):
    dates = pd.bdate_range("2021-01-04", periods=30)
    flat = pd.Series(0.0, index=dates)
    assert "no position was held" in skip_reason(flat)
    assert "at least 2" in skip_reason(flat.iloc[:1])
    assert skip_reason(pd.Series(np.linspace(-0.01, 0.01, 30), index=dates)) is None
    assert write_tearsheet(flat, flat.rename("SP500"), tmp_path / "t.html") is None
    assert list(tmp_path.iterdir()) == []  # no file and no temporary left behind


def test_metrics_of_a_flat_curve_are_undefined_not_made_up():
    dates = pd.bdate_range("2021-01-04", periods=30)
    m = compute_metrics(pd.Series(1000.0, index=dates), initial_value=1000.0)
    assert m["total_return"] == 0.0 and m["max_drawdown"] == 0.0
    assert np.isnan(m["sharpe"]) and np.isnan(m["psr"]) and np.isnan(m["sortino"])


@pytest.mark.parametrize("trigger", ["threshold", "zeros", "one-member"])
def test_the_vector_engine_sees_what_cerebro_saw(market, tmp_path, trigger):
    from feeds.csv_folder import frames_to_panel
    from strategies.vector import entry_summary, prepare, simulate_prepared

    frames, bench = market
    scores = random_scores(frames) * (0.0 if trigger == "zeros" else 1.0)
    one = Membership({"AAPL": [(pd.Timestamp("2000-01-01"), pd.Timestamp("2030-01-01"))]}, "one.csv")
    universe = one if trigger == "one-member" else None
    params = {"entry_threshold": 1.0} if trigger == "threshold" else {}
    cerebro = backtest(market, scores, tmp_path, universe=universe, **params)
    panel = prepare(frames_to_panel(frames)[0], scores, START, END, universe=universe, benchmark=bench)
    assert simulate_prepared(panel, params).metrics["n_trades"] == 0
    assert entry_summary(panel, params) == cerebro.entry_summary()  # two computations, one answer


def test_run_notes_say_zero_trades_why_and_what_was_skipped(market, tmp_path):
    from analyzers.notes import run_notes, trade_histogram_skip

    strategy = backtest(market, random_scores(market[0]) * 0.0, tmp_path)
    metrics = strategy.analyzers.metrics.get_analysis()
    skipped = (strategy.analyzers.tear.get_analysis()["skipped"], trade_histogram_skip(metrics["n_trades"]))
    notes = run_notes(metrics, no_trade_reason(strategy.entry_summary()), skipped)
    assert notes[0].startswith("0 trades: no score passed the entry threshold")
    assert notes[1].startswith("tearsheet.html not written") and notes[2].startswith("trade_returns.png not written")
    assert notes[3] == "sharpe, psr, sortino not computed (null): the daily returns do not vary"
    assert notes[4] == "win_rate not computed (null): no closed trade"
    trading = backtest(market, random_scores(market[0]), tmp_path / "trading")
    m = trading.analyzers.metrics.get_analysis()
    skipped = (trading.analyzers.tear.get_analysis()["skipped"], trade_histogram_skip(m["n_trades"]))
    assert run_notes(m, None, skipped) == []
