"""AlphaRankStrategy and ScoreAlpha against trade lists worked out by hand.

Universes here are hand-made (a few stocks, ~30 business days, constant prices with open != close
so that a fill at the close would show) and use plain bt.feeds.PandasData.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError, DataError
from strategies import AlphaRankStrategy, ScoreAlpha, cross_section, load_scores_csv, rank_to_unit

FIXTURES = Path(__file__).parent / "fixtures"
DATES = pd.bdate_range("2024-01-01", periods=30)  # Mon 2024-01-01 .. Fri 2024-02-09, no holidays
D = lambda text: dt.date.fromisoformat(text)  # noqa: E731


# ---------------------------------------------------------------------------------- helpers
def ohlc(open_, close=None, index=DATES):
    """A price frame from per-day opens and closes (scalars or arrays); close defaults to open + 1."""
    open_ = np.broadcast_to(np.asarray(open_, dtype=float), (len(index),))
    close = open_ + 1.0 if close is None else np.broadcast_to(np.asarray(close, dtype=float), (len(index),))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 1e6,
        },
        index=index,
    )


def score_frame(spec, index=DATES):
    """Scores from {ticker: [(first_date, value), ...]}: each value holds until the next change."""
    frame = pd.DataFrame(np.nan, index=index, columns=list(spec))
    for ticker, changes in spec.items():
        for first, value in changes:
            frame.loc[pd.Timestamp(first) :, ticker] = value
    return frame


class Fills(bt.Analyzer):
    """Every completed order as (date, ticker, signed size, price, reason, rank), plus refusals."""

    def start(self):
        self.fills, self.refused, self.infos = [], [], []

    def notify_order(self, order):
        if order.status == order.Completed:
            when = bt.num2date(order.executed.dt).date()
            self.fills.append(
                (
                    when,
                    order.data._name,
                    int(order.executed.size),
                    round(order.executed.price, 6),
                    order.info.reason,
                    order.info.rank,
                )
            )
            self.infos.append(dict(order.info))
        elif order.status in (order.Margin, order.Rejected):
            self.refused.append((bt.num2date(order.created.dt).date(), order.data._name, order.getstatusname()))

    def get_analysis(self):
        return {"fills": self.fills, "refused": self.refused}


class CrossScores(bt.Analyzer):
    """What an analyzer sees of the strategy's cross-sectioned scores, day by day."""

    def start(self):
        self.by_day = {}

    def next(self):
        self.by_day[self.strategy.datetime.date(0)] = dict(self.strategy.cross_scores)

    def get_analysis(self):
        return self.by_day


def run(prices, scores, cash=10_000.0, commission=0.0, runonce=True, **params):
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    for ticker, frame in prices.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=ticker)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=commission)
    if "alpha" not in params:
        params["alpha"] = ScoreAlpha.factory(scores)
    cerebro.addstrategy(AlphaRankStrategy, **params)
    cerebro.addanalyzer(Fills, _name="fills")
    cerebro.addanalyzer(CrossScores, _name="cross")
    strat = cerebro.run()[0]
    return strat, strat.analyzers.fills, cerebro


# ---------------------------------------------------------------- the main hand-worked scenario
MAIN_PRICES = {  # opens; every close is open + 1, so valuing at the close would change the sizes
    "A": ohlc(np.where(DATES < "2024-01-08", 100.0, 150.0)),  # gaps up to 150 on Mon Jan 8
    "B": ohlc(50.0),
    "C": ohlc(20.0),
    "D": ohlc(40.0),
    "E": ohlc(25.0),
}
MAIN_SCORES = score_frame(
    {
        "A": [("2024-01-01", 0.9), ("2024-01-05", -0.5), ("2024-01-10", 0.7)],
        "B": [("2024-01-01", 0.5), ("2024-01-09", 0.1), ("2024-01-11", -0.3)],
        "C": [("2024-01-01", 0.3)],
        "D": [("2024-01-01", 0.1), ("2024-01-09", 0.6)],
        "E": [("2024-01-01", 0.25)],
    }
)
MAIN_PARAMS = dict(
    cross_section="none",
    top_k=4,
    position_pct=0.3,
    entry_threshold=0.2,
    exit_threshold=0.0,
    review_days=7,
    review_in="calendar",
    min_cash=1000,
)

# Worked by hand (cash 10,000, no commission; all fills at the open of the day after the decision):
# Mon Jan 1 close: candidates A .9, B .5, C .3, E .25 (D .1 is below 0.2), 4 free slots.
# Tue Jan 2 open, value 10,000, target 30 % = 3,000: A 30@100 (cash 7,000), B 60@50 (4,000),
#   C 150@20 (1,000); E: 3,000 > cash 1,000, and 1,000 is not above min_cash -> skipped
#   (and again every day until Jan 9: cash stays 1,000).
# Fri Jan 5: A turns -0.5 but is not reviewed before Tue Jan 9 (7 calendar days after its fill).
# Tue Jan 9 close: review A (-0.5 < 0: exit), B (0.1: kept, next review Jan 16), C (0.3: kept).
#   Free slots 4 - 2 = 2: D .6 (rank 1), E .25 (rank 2).
# Wed Jan 10 open: value at the open = 1,000 + 30*150 + 60*50 + 150*20 = 11,500 (the close of Jan 9
#   would give 11,740), target 3,450 (compounded). Sell A 30@150 -> cash 5,500.
#   D 86@40 = 3,440 -> cash 2,060. E: 138@25 = 3,450 > 2,060 > 1,000 -> rest: 82@25 = 2,050, cash 10.
# Jan 10 .. 15: A (.7) is a candidate but 4 holdings = top_k: no buy. B is -0.3 from Jan 11 but
#   its next review is Jan 16.
# Tue Jan 16 close: review B (-0.3: exit), C (kept); D and E are reviewed on Jan 17 (kept).
#   One free slot: A .7 rank 1.
# Wed Jan 17 open: value = 10 + 60*50 + 150*20 + 86*40 + 82*25 = 11,500, target 3,450.
#   Sell B 60@50 -> cash 3,010. A: 23@150 = 3,450 > 3,010 > 1,000 -> rest: 20@150 = 3,000, cash 10.
# Thu Feb 8 close: every data ends at the next bar -> sell all at the open of Fri Feb 9 ("end").
MAIN_EXPECTED = sorted(
    [
        (D("2024-01-02"), "A", 30, 100.0, "entry", 1),
        (D("2024-01-02"), "B", 60, 50.0, "entry", 2),
        (D("2024-01-02"), "C", 150, 20.0, "entry", 3),
        (D("2024-01-10"), "A", -30, 150.0, "review_exit", None),
        (D("2024-01-10"), "D", 86, 40.0, "entry", 1),
        (D("2024-01-10"), "E", 82, 25.0, "entry", 2),
        (D("2024-01-17"), "B", -60, 50.0, "review_exit", None),
        (D("2024-01-17"), "A", 20, 150.0, "entry", 1),
        (D("2024-02-09"), "A", -20, 150.0, "end", None),
        (D("2024-02-09"), "C", -150, 20.0, "end", None),
        (D("2024-02-09"), "D", -86, 40.0, "end", None),
        (D("2024-02-09"), "E", -82, 25.0, "end", None),
    ]
)


@pytest.mark.parametrize("runonce", [True, False], ids=["runonce", "next"])
def test_main_scenario_exact_trade_list(runonce):
    strat, fills, cerebro = run(MAIN_PRICES, MAIN_SCORES, runonce=runonce, **MAIN_PARAMS)
    assert sorted(fills.fills) == MAIN_EXPECTED
    assert fills.refused == []
    assert strat.rejected_orders == 0
    # all positions closed at the end: the final value is the cash, 10 + 3,000 + 3,440 + 2,050 + 3,000
    assert cerebro.broker.getcash() == pytest.approx(11_500.0)
    assert cerebro.broker.getvalue() == pytest.approx(11_500.0)
    assert cerebro.p.cheat_on_open  # the strategy turned it on itself: it sizes at the next open
    # the score each order was decided on travels with it
    exits = {(i["reason"], i["score"]) for i in fills.infos if i["reason"] == "review_exit"}
    assert exits == {("review_exit", -0.5), ("review_exit", -0.3)}
    entry_scores = sorted(i["score"] for i in fills.infos if i["reason"] == "entry")
    assert entry_scores == sorted([0.9, 0.5, 0.3, 0.6, 0.25, 0.7])


def test_commission_is_paid_within_cash_and_never_rejected():
    # Same scenario with 0.05 % commission: the full-size buys keep their size, the "rest of the
    # cash" buys shrink so that price * shares + commission fits the cash.
    strat, fills, cerebro = run(MAIN_PRICES, MAIN_SCORES, commission=0.0005, **MAIN_PARAMS)
    assert fills.refused == [] and strat.rejected_orders == 0
    by_key = {(f[0], f[1]): f[2] for f in fills.fills}
    assert by_key[(D("2024-01-02"), "C")] == 150  # 3,000 + 1.5 commission, cash 4,000 - 3 = 3,997
    # Jan 2: cash after A, B = 10,000 - 3,000*1.0005 - 3,000*1.0005 = 3,997; C 150@20 -> 997 left.
    # Jan 10: value 997 + 11,500 - 1,000 = 11,497 -> target 3,449.1 -> D 86@40 (3,440 + 1.72);
    #   cash = 997 + 4,500 - 2.25 - 3,441.72 = 2,053.03 -> E rest: floor(2,053.03 / (25 * 1.0005)) = 82
    assert by_key[(D("2024-01-10"), "D")] == 86
    assert by_key[(D("2024-01-10"), "E")] == 82
    assert cerebro.broker.getcash() >= 0


# ---------------------------------------------------------------- review clock: calendar vs bars
@pytest.mark.parametrize("review_in, exit_day", [("calendar", "2024-01-09"), ("bars", "2024-01-11")])
def test_review_in_calendar_days_or_trading_bars(review_in, exit_day):
    # X is bought at the open of Fri Jan 5 (score 0.5 on Jan 4) and scores -0.5 from Jan 5 on.
    # review_days=3: calendar -> Mon Jan 8 (Jan 5 + 3 days) is the first review, sold Tue Jan 9;
    # bars -> its bar 5 is Jan 5, bar 8 is Wed Jan 10, sold Thu Jan 11. No exit before the review.
    scores = score_frame({"X": [("2024-01-04", 0.5), ("2024-01-05", -0.5)]})
    _, fills, _ = run({"X": ohlc(10.0)}, scores, cross_section="none", review_days=3, review_in=review_in)
    assert fills.fills == [
        (D("2024-01-05"), "X", 200, 10.0, "entry", 1),  # 20 % of 10,000 at 10
        (D(exit_day), "X", -200, 10.0, "review_exit", None),
    ]


# ---------------------------------------------------------------- cross-section by rank
def test_rank_to_unit_matches_hand_computation():
    # sorted: -0.2 (rank 1), 0.1 (2), 0.3 (3), 0.5 and 0.5 (ranks 4 and 5 -> 4.5 each); n = 5
    # 2*(r-1)/4 - 1: r=1 -> -1, r=2 -> -0.5, r=3 -> 0, r=4.5 -> 0.75
    assert rank_to_unit([0.1, 0.5, 0.5, -0.2, 0.3]).tolist() == [-0.5, 0.75, 0.75, -1.0, 0.0]
    assert rank_to_unit([0.42]).tolist() == [0.0]
    assert rank_to_unit([]).tolist() == []
    assert cross_section({"a": 0.3, "b": -0.1}, "none") == {"a": 0.3, "b": -0.1}
    assert cross_section({"a": 0.3, "b": -0.1}, "rank") == {"a": 1.0, "b": -1.0}


def test_average_ranks_match_scipy_rankdata():
    from scipy.stats import rankdata

    from strategies.alpha_rank import average_ranks

    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 60, 400):
        values = np.round(rng.normal(size=n), 1)  # rounding makes plenty of ties
        np.testing.assert_array_equal(average_ranks(values), rankdata(values, method="average"))
        expected = 2 * (rankdata(values) - 1) / (n - 1) - 1 if n > 1 else np.zeros(1)
        np.testing.assert_allclose(rank_to_unit(values), expected)


def test_rank_mode_ranks_only_ready_stocks_and_trades_on_ranks():
    # All raw scores are negative: with cross_section="none" nothing would be bought. Ranked among
    # the ready stocks, the best ones pass 0.2. N has no score before Jan 10, M has no bar on Jan 3.
    prices = {t: ohlc(10.0) for t in ("J", "K", "L", "N")}
    prices["M"] = ohlc(10.0).drop(pd.Timestamp("2024-01-03"))
    scores = score_frame(
        {
            "J": [("2024-01-01", -0.9)],
            "K": [("2024-01-01", -0.8)],
            "L": [("2024-01-01", -0.7)],
            "M": [("2024-01-01", -0.6)],
            "N": [("2024-01-10", -0.1)],
        }
    )
    strat, fills, _ = run(prices, scores, cross_section="rank", top_k=2)
    by_day = strat.analyzers.cross.get_analysis()
    # Jan 2: J, K, L, M ready -> ranks 1..4 -> -1, -1/3, 1/3, 1
    assert by_day[D("2024-01-02")] == pytest.approx({"J": -1.0, "K": -1 / 3, "L": 1 / 3, "M": 1.0})
    # Jan 3: M has no bar -> not ready -> J, K, L ranked among three
    assert by_day[D("2024-01-03")] == pytest.approx({"J": -1.0, "K": 0.0, "L": 1.0})
    # Jan 10: N joins with the best raw score
    assert by_day[D("2024-01-10")] == pytest.approx({"J": -1.0, "K": -0.5, "L": 0.0, "M": 0.5, "N": 1.0})
    assert strat.cross_scores == by_day[D("2024-02-09")]
    assert strat.raw_scores == {"J": -0.9, "K": -0.8, "L": -0.7, "M": -0.6, "N": -0.1}
    # Jan 1 (only bar 1): M rank 1 (1.0), L rank 2 (1/3 > 0.2): both bought Jan 2, 2,000 / 10 = 200
    assert fills.fills[:2] == [
        (D("2024-01-02"), "M", 200, 10.0, "entry", 1),
        (D("2024-01-02"), "L", 200, 10.0, "entry", 2),
    ]
    info = fills.infos[1]
    assert info["score"] == pytest.approx(1 / 3) and info["rank"] == 2


# ---------------------------------------------------------------- datas that start late / end early
@pytest.mark.parametrize("runonce", [True, False], ids=["runonce", "next"])
def test_late_starter_not_traded_before_it_starts_and_does_not_hold_others_back(runonce):
    # L starts on Jan 15 (bar 11 of the others) with the best score, and has scores (1.0) for every
    # date before it exists. Z ends on Jan 26. Nobody waits for L; L is bought the bar after its first.
    prices = {"A": ohlc(10.0), "Z": ohlc(20.0).loc[:"2024-01-26"], "L": ohlc(50.0).loc["2024-01-15":]}
    scores = score_frame({"A": [("2024-01-01", 0.5)], "Z": [("2024-01-01", 0.4)], "L": [("2024-01-01", 1.0)]})
    strat, fills, _ = run(prices, scores, runonce=runonce, cross_section="none", top_k=3)
    # Jan 2: A 200@10, Z 100@20 (20 % of 10,000). Jan 15 close: L ready -> Jan 16 open:
    # value = 10,000 - 2,000 - 2,000 + 200*10 + 100*20 = 10,000 -> L 40@50.
    # Z's data stops on Jan 26, before the backtest ends: nobody knew in advance (a delisting), so
    # it is not sold ahead and stays held at its last price; A and L are sold at the last open.
    assert sorted(fills.fills) == sorted(
        [
            (D("2024-01-02"), "A", 200, 10.0, "entry", 1),
            (D("2024-01-02"), "Z", 100, 20.0, "entry", 2),
            (D("2024-01-16"), "L", 40, 50.0, "entry", 1),
            (D("2024-02-09"), "A", -200, 10.0, "end", None),
            (D("2024-02-09"), "L", -40, 50.0, "end", None),
        ]
    )
    assert strat.getposition(strat.getdatabyname("Z")).size == 100
    assert "L" not in strat.analyzers.cross.get_analysis()[D("2024-01-12")]


@pytest.mark.parametrize("runonce", [True, False], ids=["runonce", "next"])
def test_orders_wait_for_a_bar_sells_carry_over_buys_are_decided_again(runonce):
    # Neither A nor B trades on Wed Jan 10. A is reviewed on Jan 9 (-0.5): its sale waits for its
    # next bar, Jan 11. B (score 0.5 from Jan 9) is planned on Jan 9 for Jan 10, has no bar then,
    # so the plan is dropped; B is not ready at the close of Jan 10 (no bar), ready again on Jan 11
    # -> bought at the open of Jan 12. Its 20 % is of a value of 10,000 (everything at cost).
    gap = pd.Timestamp("2024-01-10")
    prices = {"A": ohlc(10.0).drop(gap), "B": ohlc(20.0).drop(gap), "C": ohlc(30.0)}  # C keeps Jan 10
    scores = score_frame({"A": [("2024-01-01", 0.5), ("2024-01-05", -0.5)], "B": [("2024-01-09", 0.5)], "C": []})
    strat, fills, _ = run(prices, scores, runonce=runonce, cross_section="none", close_at_end=False)
    assert fills.fills == [
        (D("2024-01-02"), "A", 200, 10.0, "entry", 1),
        (D("2024-01-11"), "A", -200, 10.0, "review_exit", None),
        (D("2024-01-12"), "B", 100, 20.0, "entry", 1),
    ]
    assert fills.refused == []


def test_close_at_end_off_keeps_positions_open():
    prices = {"A": ohlc(10.0)}
    scores = score_frame({"A": [("2024-01-01", 0.5)]})
    strat, fills, cerebro = run(prices, scores, cross_section="none", close_at_end=False)
    assert fills.fills == [(D("2024-01-02"), "A", 200, 10.0, "entry", 1)]
    assert strat.getposition(strat.datas[0]).size == 200


# ---------------------------------------------------------------- no Margin rejections
def _gappy_universe(seed=7, n_stocks=6, n_days=80):
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2023-01-02", periods=n_days)
    prices, scores = {}, {}
    for i in range(n_stocks):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.03, n_days)))
        gap = np.where(rng.random(n_days) < 0.3, rng.uniform(0.10, 0.40, n_days), rng.normal(0, 0.01, n_days))
        open_ = np.r_[close[0], close[:-1] * (1 + gap[1:])]  # frequent 10-40 % gap-ups at the open
        prices[f"G{i}"] = ohlc(open_, close, index=index)
        scores[f"G{i}"] = rng.uniform(-1, 1, n_days)
    return prices, pd.DataFrame(scores, index=index)


class NaiveCloseSizer(bt.Strategy):
    """The trap this strategy avoids: size at the close of t, fill at the open of t+1."""

    params = (("scores", None),)

    def next(self):
        today = pd.Timestamp(self.datetime.date(0))
        for d in self.datas:
            if not self.getposition(d).size and self.p.scores.at[today, d._name] > 0.3:
                self.buy(data=d, size=int(0.45 * self.broker.getvalue() // d.close[0]))
            elif self.getposition(d).size and self.p.scores.at[today, d._name] < 0:
                self.close(data=d)


def test_zero_margin_rejections_with_big_gap_ups_and_tight_cash():
    prices, scores = _gappy_universe()
    strat, fills, _ = run(
        prices, scores, commission=0.001, cross_section="rank", top_k=4, position_pct=0.45, review_days=2, min_cash=100
    )
    assert len([f for f in fills.fills if f[4] == "entry"]) > 20  # it really trades
    assert fills.refused == [] and strat.rejected_orders == 0

    # the same universe breaks a strategy that sizes at the close (so the test has teeth)
    cerebro = bt.Cerebro(stdstats=False)
    for ticker, frame in prices.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=ticker)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.addstrategy(NaiveCloseSizer, scores=scores)
    cerebro.addanalyzer(Fills, _name="fills")
    naive = cerebro.run()[0]
    assert len(naive.analyzers.fills.refused) > 0


# ---------------------------------------------------------------- universe, benchmark, start
class JoinsLate:
    """A is a member of the universe only from Jan 10 on; everyone else always."""

    def __init__(self):
        self.calls = []

    def is_member(self, ticker, date):
        self.calls.append((ticker, date))
        return ticker != "A" or date >= pd.Timestamp("2024-01-10")


def test_universe_member_filter():
    universe = JoinsLate()
    prices = {"A": ohlc(10.0), "B": ohlc(10.0)}
    scores = score_frame({"A": [("2024-01-01", 0.9)], "B": [("2024-01-01", 0.5)]})
    _, fills, _ = run(prices, scores, cross_section="none", universe=universe)
    entries = [f for f in fills.fills if f[4] == "entry"]
    # B every day from Jan 1; A only once a member: decided at the close of Jan 10, filled Jan 11
    assert entries == [(D("2024-01-02"), "B", 200, 10.0, "entry", 1), (D("2024-01-11"), "A", 200, 10.0, "entry", 1)]
    assert all(isinstance(date, pd.Timestamp) for _, date in universe.calls)


def test_benchmark_is_never_traded_and_gets_no_alpha():
    prices = {"SP500": ohlc(1000.0), "A": ohlc(10.0)}
    scores = score_frame({"A": [("2024-01-01", 0.9)]})  # no SP500 column at all
    strat, fills, _ = run(prices, scores, cross_section="none", benchmark="SP500")
    assert set(strat.alphas) == {"A"}
    assert isinstance(strat.alphas["A"], ScoreAlpha)
    assert {f[1] for f in fills.fills} == {"A"}
    assert "SP500" not in strat.cross_scores


def test_start_is_a_warm_up_with_no_trades():
    prices = {"A": ohlc(10.0)}
    scores = score_frame({"A": [("2024-01-01", 0.9)]})
    _, fills, _ = run(prices, scores, cross_section="none", start="2024-01-10")
    assert fills.fills[0] == (D("2024-01-11"), "A", 200, 10.0, "entry", 1)


def test_an_indicator_class_works_as_alpha():
    class ConstantAlpha(bt.Indicator):
        lines = ("score",)

        def __init__(self):
            self.lines.score = self.data.close * 0 + 0.5

    _, fills, _ = run({"A": ohlc(10.0)}, None, alpha=ConstantAlpha, cross_section="none")
    assert fills.fills[0] == (D("2024-01-02"), "A", 200, 10.0, "entry", 1)


# ---------------------------------------------------------------- parameter validation
@pytest.mark.parametrize(
    "params, name",
    [
        (dict(alpha=None), "alpha"),
        (dict(top_k=0), "top_k"),
        (dict(top_k=2.5), "top_k"),
        (dict(entry_threshold=1.5), "entry_threshold"),
        (dict(exit_threshold=-2), "exit_threshold"),
        (dict(exit_threshold=float("nan")), "exit_threshold"),
        (dict(position_pct=0.0), "position_pct"),
        (dict(position_pct=1.2), "position_pct"),
        (dict(review_days=0), "review_days"),
        (dict(review_in="weeks"), "review_in"),
        (dict(min_cash=-1), "min_cash"),
        (dict(cross_section="zscore"), "cross_section"),
        (dict(benchmark="SPY"), "benchmark"),
        (dict(universe=object()), "universe"),
        (dict(start="not a date"), "start"),
    ],
)
def test_invalid_params_raise_config_error_naming_the_param(params, name):
    scores = score_frame({"A": [("2024-01-01", 0.5)]})
    params = dict(params)
    if "alpha" not in params:
        params["alpha"] = ScoreAlpha.factory(scores)
    with pytest.raises(ConfigError, match=name):
        run({"A": ohlc(10.0)}, scores, **params)


def test_alpha_without_score_line_is_refused():
    with pytest.raises(ConfigError, match="score"):
        run({"A": ohlc(10.0)}, None, alpha=bt.indicators.SMA)


# ---------------------------------------------------------------- ScoreAlpha
class _Record(bt.Strategy):
    params = (("scores", None), ("asof", False))

    def __init__(self):
        self.alpha = ScoreAlpha(self.data, scores=self.p.scores, asof=self.p.asof)
        self.seen = []

    def next(self):
        self.seen.append((self.datetime.date(0), self.alpha.score[0]))


@pytest.mark.parametrize("runonce", [True, False], ids=["runonce", "next"])
@pytest.mark.parametrize("asof", [False, True])
def test_score_alpha_reads_the_bar_date(runonce, asof):
    index = pd.bdate_range("2024-01-01", periods=8)
    scores = pd.DataFrame(
        {"A": [0.1, np.nan, 0.3, 0.4, 0.5], "B": 0.0},
        index=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05", "2023-12-30"]).sort_values(),
    )
    # sorted index: Dec 30 0.1, Jan 1 nan, Jan 2 0.3, Jan 4 0.4, Jan 5 0.5
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    cerebro.adddata(bt.feeds.PandasData(dataname=ohlc(10.0, index=index)), name="A")
    cerebro.addstrategy(_Record, scores=scores, asof=asof)
    seen = dict(cerebro.run()[0].seen)
    expected = {
        "2024-01-01": np.nan,
        "2024-01-02": 0.3,
        "2024-01-03": np.nan,
        "2024-01-04": 0.4,
        "2024-01-05": 0.5,
        "2024-01-08": np.nan,
        "2024-01-09": np.nan,
        "2024-01-10": np.nan,
    }
    if asof:  # the last score on or before the day, NaN rows included as they are
        expected.update({"2024-01-03": 0.3, "2024-01-08": 0.5, "2024-01-09": 0.5, "2024-01-10": 0.5})
    got = [seen[D(k)] for k in expected]
    np.testing.assert_array_equal(got, list(expected.values()))


def test_score_alpha_missing_ticker_names_it():
    scores = score_frame({"A": [("2024-01-01", 0.5)]})
    with pytest.raises(DataError, match="'ZZZ'"):
        run({"ZZZ": ohlc(10.0)}, scores)


def test_load_scores_csv_fixture():
    frame = load_scores_csv(FIXTURES / "strategy_scores.csv")
    assert list(frame.columns) == ["AAA", "BBB", "CCC"]
    assert list(frame.index.date) == [D("2024-01-01"), D("2024-01-02"), D("2024-01-03"), D("2024-01-05")]
    assert frame.loc["2024-01-05", "AAA"] == -0.75
    assert math.isnan(frame.loc["2024-01-03", "AAA"]) and math.isnan(frame.loc["2024-01-01", "CCC"])
    assert frame.loc["2024-01-03", "BBB"] == 1.0


@pytest.mark.parametrize(
    "text, match",
    [
        ("Date,A\n2024-01-01,0.1\nJan 32nd,0.2\n", r"column 'Date', data row 2.*Jan 32nd"),
        ("Date,A\n2024-01-02,0.1\n2024-01-01,0.2\n", r"row 2: unsorted"),
        ("Date,A\n2024-01-01,0.1\n2024-01-01,0.2\n", r"row 2: duplicate"),
        ("Date,A,B\n2024-01-01,0.1,0.2\n2024-01-02,0.1,high\n", r"column 'B', data row 2.*'high' is not a number"),
        ("Date,A\n2024-01-01,1.5\n", r"column 'A', data row 1.*outside \[-1, 1\]"),
        ("Day,A\n2024-01-01,0.5\n", r"no 'Date' column"),
    ],
)
def test_load_scores_csv_errors_name_file_and_column(tmp_path, text, match):
    path = tmp_path / "bad_scores.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match) as err:
        load_scores_csv(path)
    assert "bad_scores.csv" in str(err.value)


# ---------------------------------------------------------------- the two rules of issue 9
class Spans:
    """Membership from {ticker: (first, last)} (inclusive dates); tickers not named are never members."""

    def __init__(self, spans):
        self.spans = {t: (pd.Timestamp(a), pd.Timestamp(b)) for t, (a, b) in spans.items()}

    def is_member(self, ticker, date):
        span = self.spans.get(ticker)
        return span is not None and span[0] <= date <= span[1]


def test_universe_ranks_among_the_days_members_only():
    # N has the best score but is never a member: it must not push the members' ranks down.
    # Among A, B, C the best (C) ranks 1.0 > 0.9 and is bought; ranked among all four it would be 1/3.
    prices = {t: ohlc(10.0) for t in "ABCN"}
    scores = score_frame(
        {"A": [("2024-01-01", 0.1)], "B": [("2024-01-01", 0.2)], "C": [("2024-01-01", 0.3)], "N": [("2024-01-01", 0.9)]}
    )
    universe = Spans({t: ("2024-01-01", "2024-12-31") for t in "ABC"})
    strat, fills, _ = run(
        prices, scores, cross_section="rank", top_k=1, entry_threshold=0.9, close_at_end=False, universe=universe
    )
    assert fills.fills == [(D("2024-01-02"), "C", 200, 10.0, "entry", 1)]
    day = strat.analyzers.cross.get_analysis()[D("2024-01-01")]
    # members ranked among themselves; the non-member as one more member (the best of four -> 1.0)
    assert day == {"A": -1.0, "B": 0.0, "C": 1.0, "N": 1.0}


def test_a_holding_that_leaves_the_universe_is_reviewed_on_its_rank_as_one_more_member():
    # C is bought Jan 2, leaves the universe after Jan 7 and scores 0.05 from Jan 8: at its review
    # (Jan 9) it ranks lowest among A, B and itself (-1 < 0) and is sold Jan 10; B takes the slot.
    prices = {t: ohlc(10.0) for t in "ABC"}
    scores = score_frame(
        {"A": [("2024-01-01", 0.1)], "B": [("2024-01-01", 0.2)], "C": [("2024-01-01", 0.3), ("2024-01-08", 0.05)]}
    )
    universe = Spans(
        {"A": ("2024-01-01", "2024-12-31"), "B": ("2024-01-01", "2024-12-31"), "C": ("2024-01-01", "2024-01-07")}
    )
    strat, fills, _ = run(
        prices, scores, cross_section="rank", top_k=1, entry_threshold=0.9, close_at_end=False, universe=universe
    )
    assert fills.fills == [
        (D("2024-01-02"), "C", 200, 10.0, "entry", 1),
        (D("2024-01-10"), "C", -200, 10.0, "review_exit", None),
        (D("2024-01-10"), "B", 200, 10.0, "entry", 1),
    ]
    assert strat.analyzers.cross.get_analysis()[D("2024-01-09")]["C"] == -1.0


def test_rank_among_equals_rank_to_unit_of_the_members_plus_one():
    from strategies.alpha_rank import rank_among

    rng = np.random.default_rng(5)
    for m in (0, 1, 2, 5, 40):
        members = np.round(rng.normal(size=m), 1)
        for value in np.r_[members[:3], np.round(rng.normal(size=3), 1)]:
            assert rank_among(members, value) == rank_to_unit(np.append(members, value))[-1]


def test_a_sale_waiting_for_a_bar_keeps_its_slot():
    # top_k = 1. A is flagged at its review on Jan 9 but has no bar on Jan 10: it is sold Jan 11.
    # B (planned every night from Jan 9) is bought only when A's slot is free, at the Jan 11 open,
    # never holding two stocks at once.
    prices = {"A": ohlc(10.0).drop(pd.Timestamp("2024-01-10")), "B": ohlc(20.0)}
    scores = score_frame({"A": [("2024-01-01", 0.5), ("2024-01-05", -0.5)], "B": [("2024-01-05", 0.4)]})
    _, fills, _ = run(prices, scores, cross_section="none", top_k=1, close_at_end=False)
    assert fills.fills == [
        (D("2024-01-02"), "A", 200, 10.0, "entry", 1),
        (D("2024-01-11"), "A", -200, 10.0, "review_exit", None),
        (D("2024-01-11"), "B", 100, 20.0, "entry", 1),
    ]


# ---------------------------------------------------------------- the day on arrays
class OpenDays(AlphaRankStrategy):
    """Records, at every open, the day the strategy uses and the day every data gives."""

    def start(self):
        super().start()
        self.open_days = []

    def next_open(self):
        asked = max(int(d.datetime[0]) for d in self.datas if len(d))
        self.open_days.append((self._open_day(), asked))
        super().next_open()


def _open_days_run(prices, scores, **params):
    cerebro = bt.Cerebro(stdstats=False)
    for ticker, frame in prices.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=ticker)
    cerebro.addstrategy(OpenDays, alpha=ScoreAlpha.factory(scores), cross_section="rank", top_k=2, **params)
    cerebro.addanalyzer(Fills, _name="fills")
    return cerebro.run()[0]


def test_the_open_day_known_in_advance_is_the_day_the_datas_give():
    """Late starts, gaps and a benchmark with a day no stock has: the day of each open, looked up in
    the union of the datas' dates, is the newest bar's day that asking every data gives."""
    prices, scores = _gappy_universe(n_stocks=4, n_days=40)
    prices["G0"] = prices["G0"].iloc[10:]  # starts late
    prices["G1"] = prices["G1"].drop(prices["G1"].index[[5, 6, 20]])  # gaps
    prices["G2"] = prices["G2"].iloc[:30]  # ends early
    bench = ohlc(100.0, index=prices["G3"].index.append(pd.DatetimeIndex(["2023-03-04"])))  # a Saturday
    strat = _open_days_run({"IDX": bench, **prices}, scores, benchmark="IDX")
    assert strat._open_days is not None  # the look-up, not the loop over the datas, gave the day
    assert len(strat.open_days) == 41
    assert all(used == asked for used, asked in strat.open_days)


def test_two_stamps_on_one_day_fall_back_to_asking_every_data():
    prices, scores = _gappy_universe(n_stocks=3, n_days=30)
    prices["G2"].index = prices["G2"].index + pd.Timedelta(hours=12)  # same dates, another time of day
    strat = _open_days_run(prices, scores)
    assert strat._open_days is None
    assert len(strat.open_days) == 60 and all(used == asked for used, asked in strat.open_days)


def test_the_strategy_shadows_no_backtrader_attribute():
    """Attributes the strategy sets on itself must not be names Backtrader uses (say `_clock`)."""
    prices, scores = _gappy_universe(n_stocks=2, n_days=20)
    ours = run(prices, scores)[0]
    cerebro = bt.Cerebro(stdstats=False)
    for ticker, frame in prices.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=ticker)
    cerebro.addstrategy(bt.Strategy)
    plain = cerebro.run()[0]
    own = set(vars(ours)) - set(vars(plain))
    assert "_book" in own and "_day_columns" in own
    assert not {name for name in own if hasattr(bt.Strategy, name) or hasattr(bt.LineIterator, name)}
