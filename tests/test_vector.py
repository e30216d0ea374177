"""The vectorized engine against Cerebro, trade for trade.

Each case is a random small universe (4-15 stocks, 60-200 business days) with late starts, missing
days and delistings, random scores (some missing, some tied) and random params (rank and none,
calendar and bar reviews, top_k 1-10, thresholds that bind and that do not, commission 0 and 5 bp,
position_pct up to 1.0 with cash short, close_at_end on and off, a warm-up start, a point-in-time
universe). The simulator must give Cerebro's fills (AlphaRankStrategy + ScoreAlpha + LeanBroker):
date, action, ticker, shares and reason equal; prices, commissions, scores, the daily equity and
every metric equal to 1e-9 relative. No rule is left unmatched.

CI runs FAST_CASES of them; the slow test runs ALL_CASES (>= 200). The cost cases (make_cost_case)
add random slippage (Cerebro: feeds.broker.set_slippage), a random volume cap (max_volume_pct,
partial sales over several bars) and OHLC bars whose high and low lie beyond the open and close:
COST_FAST_CASES in CI, COST_CASES (>= 100) in the slow set.
"""

from __future__ import annotations

import math

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import analyzers as A
from feeds import ArrayData, LeanBroker, set_slippage
from strategies import AlphaRankStrategy, ScoreAlpha, rank_to_unit
from strategies.vector import day_ranks, prepare, simulate, simulate_prepared

FAST_CASES = 20
ALL_CASES = 240
COST_FAST_CASES = 12
COST_CASES = 150
RTOL = 1e-9


class Spans:
    """Random point-in-time membership: {ticker: [(first, last), ...]} inclusive."""

    def __init__(self, spans):
        self.spans = spans

    def is_member(self, ticker, date):
        return any(a <= date <= b for a, b in self.spans.get(ticker, ()))


def make_case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n_stocks, n_days = int(rng.integers(4, 16)), int(rng.integers(60, 201))
    index = pd.bdate_range("2021-01-04", periods=n_days)
    prices, scores = {}, {}
    tie_scores = rng.random() < 0.3
    for i in range(n_stocks):
        ticker = f"S{i:02d}"
        close = 20 + 80 * rng.random() * np.exp(np.cumsum(rng.normal(0, 0.02, n_days)))
        gap = np.where(rng.random(n_days) < 0.1, rng.uniform(-0.1, 0.2, n_days), rng.normal(0, 0.005, n_days))
        open_ = np.r_[close[0], close[:-1] * (1 + gap[1:])]
        keep = np.ones(n_days, dtype=bool)
        if rng.random() < 0.3:  # a late start
            keep[: int(rng.integers(1, n_days // 2))] = False
        if rng.random() < 0.25:  # a delisting: the data stops
            keep[int(rng.integers(n_days // 2, n_days - 1)) :] = False
        if rng.random() < 0.4:  # missing days
            keep &= rng.random(n_days) > 0.07
        if keep.sum() < 2:
            keep[:2] = True
        prices[ticker] = pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close),
                "low": np.minimum(open_, close),
                "close": close,
                "volume": 1e6,
            },
            index=index,
        )[keep]
        values = rng.uniform(-1, 1, n_days)
        if tie_scores:
            values = np.round(values, 1)
        values[rng.random(n_days) < 0.08] = np.nan
        scores[ticker] = values
    scores = pd.DataFrame(scores, index=index)
    params = dict(
        top_k=int(rng.integers(1, 11)),
        cross_section=str(rng.choice(["rank", "none"])),
        review_in=str(rng.choice(["calendar", "bars"])),
        review_days=int(rng.integers(1, 11)),
        entry_threshold=float(rng.choice([-0.5, 0.0, 0.2, 0.5, 0.8, 0.95])),
        exit_threshold=float(rng.choice([-0.6, -0.2, 0.0, 0.3])),
        position_pct=float(
            rng.choice([0.05, 0.1, 0.2, 0.35, 0.5, 1.0]) if rng.random() < 0.7 else rng.uniform(0.05, 1)
        ),
        min_cash=float(rng.choice([0.0, 100.0, 1000.0])),
        close_at_end=bool(rng.random() < 0.7),
    )
    if rng.random() < 0.3:
        params["start"] = index[int(rng.integers(1, n_days // 2))].date().isoformat()
    universe = None
    if rng.random() < 0.35:
        spans = {}
        for ticker in prices:
            if rng.random() < 0.8:
                a, b = sorted(rng.integers(0, n_days, 2))
                first = index[0] if rng.random() < 0.5 else index[a]
                spans[ticker] = [(first, index[b] if rng.random() < 0.6 else index[-1])]
        universe = Spans(spans)
    return dict(
        prices=prices,
        scores=scores,
        params=params,
        universe=universe,
        cash=float(rng.choice([10_000.0, 100_000.0])),
        commission=float(rng.choice([0.0, 0.0005])),
    )


def make_cost_case(seed: int) -> dict:
    """make_case's universe and params plus costs: OHLC bars (high and low beyond the open and
    close), volume (5 % of days without), slippage 0 / 5 bp / 20 bp / up to 3 %, and a volume cap
    of 0.2 % - 100 % of the day's volume on 60 % of the cases (it binds on buys and splits sales)."""
    case = make_case(seed)
    rng = np.random.default_rng(1_000_000 + seed)
    prices = {}
    for ticker, frame in case["prices"].items():
        n = len(frame)
        top = np.maximum(frame["open"], frame["close"]) * (1 + np.abs(rng.normal(0, 0.01, n)))
        bottom = np.minimum(frame["open"], frame["close"]) * (1 - np.abs(rng.normal(0, 0.01, n)))
        volume = np.round(rng.uniform(200, 50_000, n)) * (rng.random(n) > 0.05)
        prices[ticker] = frame.assign(high=top, low=bottom, volume=volume)
    slippage = [0.0, 0.0005, 0.002, float(rng.uniform(0, 0.03))][int(rng.integers(0, 4))]
    params = dict(case["params"])
    if rng.random() < 0.6:
        params["max_volume_pct"] = float(rng.choice([0.002, 0.01, 0.05, 0.2, 1.0]))
    return {**case, "prices": prices, "params": params, "slippage": slippage}


def run_cerebro(case: dict):
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    cerebro.setbroker(LeanBroker())
    cerebro.broker.setcash(case["cash"])
    cerebro.broker.setcommission(commission=case["commission"])
    set_slippage(cerebro.broker, case.get("slippage", 0.0))
    for ticker, frame in case["prices"].items():
        cerebro.adddata(ArrayData(dataname=frame, lean=True), name=ticker)
    cerebro.addstrategy(
        AlphaRankStrategy, alpha=ScoreAlpha.factory(case["scores"]), universe=case["universe"], **case["params"]
    )
    cerebro.addanalyzer(A.TradeLog, _name="tradelog")
    cerebro.addanalyzer(A.PortfolioMetrics, _name="metrics")
    strategy = cerebro.run()[0]
    return strategy


def assert_same(case: dict, label: str = "") -> int:
    """Compare the two engines on one case; return the number of fills compared."""
    strategy = run_cerebro(case)
    assert strategy.rejected_orders == 0
    ours = simulate(
        case["prices"],
        case["scores"],
        case["params"],
        case["cash"],
        case["commission"],
        universe=case["universe"],
        slippage=case.get("slippage", 0.0),
    )
    theirs = strategy.analyzers.tradelog.to_frame()
    mine = ours.trades
    context = (
        f"{label} params={case['params']} commission={case['commission']} slippage={case.get('slippage', 0.0)} "
        f"universe={case['universe'] is not None}"
    )
    assert len(mine) == len(theirs), f"{context}: {len(mine)} fills vs Cerebro's {len(theirs)}\n{mine}\n{theirs}"
    for column in ("Date", "Action", "Ticker", "Shares", "Reason", "Rank"):
        a, b = mine[column].tolist(), theirs[column].tolist()
        assert [None if x is None or (isinstance(x, float) and math.isnan(x)) else x for x in a] == [
            None if x is None or (isinstance(x, float) and math.isnan(x)) else x for x in b
        ], f"{context}: {column}"
    for column in ("Price", "Commission", "Amount", "PnL_Pct", "Days"):
        np.testing.assert_allclose(
            mine[column].to_numpy(float),
            theirs[column].to_numpy(float),
            rtol=RTOL,
            atol=0,
            err_msg=f"{context}: {column}",
        )
    np.testing.assert_allclose(
        pd.to_numeric(mine["Score"]).to_numpy(float),
        pd.to_numeric(theirs["Score"]).to_numpy(float),
        rtol=RTOL,
        atol=1e-15,
        err_msg=f"{context}: Score",
    )
    equity = strategy.analyzers.metrics.equity()
    assert list(ours.equity.index) == list(equity.index.normalize()), f"{context}: equity dates"
    np.testing.assert_allclose(
        ours.equity.to_numpy(), equity.to_numpy(), rtol=RTOL, atol=0, err_msg=f"{context}: equity"
    )
    assert_metrics_equal(ours.metrics, strategy.analyzers.metrics.get_analysis(), context)
    return len(mine)


def assert_metrics_equal(mine: dict, theirs: dict, context: str = "") -> None:
    assert set(mine) == set(theirs), context
    for key, value in theirs.items():
        if isinstance(value, float) and value is not None:
            assert mine[key] == pytest.approx(value, rel=RTOL, abs=1e-12), f"{context}: metric {key}"
        else:
            assert mine[key] == value, f"{context}: metric {key}"


def _run_cases(seeds, make=make_case):
    fills = 0
    for seed in seeds:
        fills += assert_same(make(seed), label=f"seed {seed}")
    return fills


def test_vector_equals_cerebro_trade_for_trade_fast_share():
    assert _run_cases(range(FAST_CASES)) > 10 * FAST_CASES  # the cases really trade


@pytest.mark.slow
def test_vector_equals_cerebro_trade_for_trade_all_cases():
    assert _run_cases(range(ALL_CASES)) > 10 * ALL_CASES


def test_vector_equals_cerebro_with_slippage_volume_caps_and_ohlc_fast_share():
    assert _run_cases(range(COST_FAST_CASES), make_cost_case) > 10 * COST_FAST_CASES


@pytest.mark.slow
def test_vector_equals_cerebro_with_slippage_volume_caps_and_ohlc_all_cases():
    assert _run_cases(range(COST_CASES), make_cost_case) > 10 * COST_CASES


def partial_sales(trades: pd.DataFrame) -> int:
    """SELL fills that leave part of the holding (the volume cap split the sale)."""
    held, count = {}, 0
    for action, ticker, shares in trades[["Action", "Ticker", "Shares"]].itertuples(index=False):
        held[ticker] = held.get(ticker, 0) + (shares if action == "BUY" else -shares)
        count += action == "SELL" and held[ticker] > 0
    return count


@pytest.mark.slow
def test_the_cost_cases_slip_cap_and_split_sales():
    """What the cost cases must exercise: slippage on most, the volume cap on many, sales split."""
    cases = [make_cost_case(seed) for seed in range(COST_CASES)]
    assert sum(c["slippage"] > 0 for c in cases) > COST_CASES // 2
    assert {c["slippage"] for c in cases} >= {0.0, 0.0005, 0.002}
    capped = [c for c in cases if c["params"].get("max_volume_pct") is not None]
    assert len(capped) > COST_CASES // 3
    split = sum(
        partial_sales(
            simulate(c["prices"], c["scores"], c["params"], c["cash"], c["commission"], universe=c["universe"]).trades
        )
        for c in capped
    )
    assert split > 20


@pytest.mark.slow
def test_the_generator_covers_what_the_issue_lists():
    cases = [make_case(s) for s in range(ALL_CASES)]
    params = [c["params"] for c in cases]
    assert {p["cross_section"] for p in params} == {"rank", "none"}
    assert {p["review_in"] for p in params} == {"calendar", "bars"}
    assert {p["top_k"] for p in params} == set(range(1, 11))
    assert {p["close_at_end"] for p in params} == {True, False}
    assert {c["commission"] for c in cases} == {0.0, 0.0005}
    assert any(p["position_pct"] == 1.0 for p in params) and any("start" in p for p in params)
    assert sum(c["universe"] is not None for c in cases) > 40
    late = delisted = gappy = 0
    for c in cases:
        full = c["scores"].index
        for frame in c["prices"].values():
            late += frame.index[0] > full[0]
            delisted += frame.index[-1] < full[-1]
            gappy += len(full.intersection(frame.index[[0]].union(frame.index[[-1]]))) and len(frame) < len(
                full[(full >= frame.index[0]) & (full <= frame.index[-1])]
            )
    assert late > 50 and delisted > 50 and gappy > 50


# ------------------------------------------------------------------ building blocks and the two rules
def test_day_ranks_are_bit_for_bit_rank_to_unit():
    rng = np.random.default_rng(1)
    values = np.round(rng.normal(size=(50, 12)), 1)
    values[rng.random(values.shape) < 0.3] = np.nan
    ranks = day_ranks(values)
    for row, out in zip(values, ranks):
        finite = np.isfinite(row)
        assert np.array_equal(out[finite], rank_to_unit(row[finite]))
        assert np.isnan(out[~finite]).all()


def _flat(open_, index):
    open_ = np.broadcast_to(np.asarray(open_, dtype=float), (len(index),))
    return pd.DataFrame({"open": open_, "close": open_ + 1.0}, index=index)


def test_vector_rule_ranks_among_members_and_reviews_a_leaver_as_one_more_member():
    # the same scenario as tests/test_strategy.py: C is bought (ranked 1.0 among members A, B, C;
    # N, never a member, does not count), leaves the universe, is reviewed as one more member and sold
    index = pd.bdate_range("2024-01-01", periods=30)
    prices = {t: _flat(10.0, index) for t in "ABCN"}
    scores = pd.DataFrame({"A": 0.1, "B": 0.2, "C": 0.3, "N": 0.9}, index=index)
    scores.loc["2024-01-08":, "C"] = 0.05

    class Universe:
        def is_member(self, ticker, date):
            return ticker in "AB" or (ticker == "C" and date <= pd.Timestamp("2024-01-07"))

    out = simulate(
        prices,
        scores,
        dict(cross_section="rank", top_k=1, entry_threshold=0.9, close_at_end=False),
        cash=10_000.0,
        universe=Universe(),
    )
    assert out.trades[["Date", "Ticker", "Shares", "Reason"]].values.tolist() == [
        ["2024-01-02", "C", 200, "entry"],
        ["2024-01-10", "C", 200, "review_exit"],
        ["2024-01-10", "B", 200, "entry"],
    ]


def test_vector_rule_a_sale_waiting_for_a_bar_keeps_its_slot():
    index = pd.bdate_range("2024-01-01", periods=30)
    prices = {"A": _flat(10.0, index).drop(pd.Timestamp("2024-01-10")), "B": _flat(20.0, index)}
    scores = pd.DataFrame({"A": 0.5, "B": np.nan}, index=index)
    scores.loc["2024-01-05":, "A"] = -0.5
    scores.loc["2024-01-05":, "B"] = 0.4
    out = simulate(prices, scores, dict(cross_section="none", top_k=1, close_at_end=False), cash=10_000.0)
    assert out.trades[["Date", "Ticker", "Shares", "Reason"]].values.tolist() == [
        ["2024-01-02", "A", 200, "entry"],
        ["2024-01-11", "A", 200, "review_exit"],
        ["2024-01-11", "B", 100, "entry"],
    ]
    assert out.positions.max() == 1


def test_prepared_panel_is_shared_by_variants():
    case = make_case(3)
    panel = prepare(case["prices"], case["scores"], universe=case["universe"])
    one = simulate_prepared(panel, case["params"], case["cash"], case["commission"])
    again = simulate(
        case["prices"], case["scores"], case["params"], case["cash"], case["commission"], universe=case["universe"]
    )
    pd.testing.assert_frame_equal(one.trades, again.trades)
    lean = simulate_prepared(panel, case["params"], case["cash"], case["commission"], trade_log=False)
    assert lean.trades is None and lean.metrics == one.metrics


# ------------------------------------------------------------------ the main job on both engines
@pytest.mark.slow
def test_run_vector_writes_the_cerebro_runs_files_byte_for_byte(embedded, tmp_path):
    """jobs.backtest.run (Cerebro, ScoreAlpha) and jobs.backtest.run_vector on the same scores, with a
    point-in-time universe: trades.csv, equity.csv, metrics.json and scores.csv are the same bytes."""
    from configs import load_config
    from feeds import Membership
    from jobs.backtest import run, run_vector
    from jobs.market import MarketData

    prices, bench = embedded
    data = MarketData(prices, bench)
    config = load_config(
        "default",
        None,
        {"backtest": {"start": "2021-01-01", "end": "2022-12-31"}, "strategy": {"top_k": 4, "entry_threshold": 0.3}},
    )
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(rng.uniform(-1, 1, prices.close.shape), index=prices.dates, columns=prices.tickers)
    members = tmp_path / "members.csv"
    members.write_text(
        "ticker,start,end\n"
        + "".join(f"{t},1990-01-01,{'2021-09-30' if i % 3 == 0 else ''}\n" for i, t in enumerate(prices.tickers[:15]))
    )
    universe = Membership.from_csv(members)
    run(config, tmp_path / "cerebro", scores=scores, progress=False, data=data, universe=universe)
    run_vector(config, tmp_path / "vector", scores, data, universe)
    for name in ("trades.csv", "equity.csv", "metrics.json", "scores.csv"):  # metrics.json: the cost table too
        assert (tmp_path / "vector" / name).read_bytes() == (tmp_path / "cerebro" / name).read_bytes(), name
    assert (tmp_path / "vector" / "tearsheet.html").stat().st_size > 10_000


def test_engine_vector_refuses_what_needs_backtrader(tmp_path):
    import run_backtest

    scores = tmp_path / "s.csv"
    scores.write_text("Date,AAPL\n2021-01-04,0.5\n")
    code = run_backtest.main(["--engine", "vector", "--pyfolio", "--scores", str(scores), "--out", str(tmp_path)])
    assert code == 2


def test_bad_input_is_a_clear_error():
    from core.errors import ConfigError, DataError

    index = pd.bdate_range("2024-01-01", periods=10)
    prices = {"A": _flat(10.0, index)}
    scores = pd.DataFrame({"A": 0.5}, index=index)
    with pytest.raises(ConfigError, match="top_kk"):
        simulate(prices, scores, {"top_kk": 3})
    with pytest.raises(ConfigError, match="position_pct"):
        simulate(prices, scores, {"position_pct": 1.5})
    with pytest.raises(DataError, match="'B'"):
        simulate({**prices, "B": _flat(5.0, index)}, scores, {})


def test_cerebro_membership_mask_path_equals_is_member_path():
    """AlphaRankStrategy reads a feeds.Membership through one mask (runonce); any other universe
    through is_member per stock and day: both give the same fills (and so does the simulator)."""
    from feeds import Membership

    for seed in (7, 11):
        case = make_case(seed)
        rng = np.random.default_rng(seed)
        index = case["scores"].index
        spans = {}
        for ticker in case["prices"]:
            a, b = sorted(rng.integers(0, len(index), 2))
            spans[ticker] = [(index[a], index[b])]
        members = Membership(spans)

        class OnlyIsMember:
            def __init__(self, members):
                self.members = members

            def is_member(self, ticker, date):
                return self.members.is_member(ticker, date)

        logs = []
        for universe in (members, OnlyIsMember(members)):
            strategy = run_cerebro({**case, "universe": universe})
            logs.append(strategy.analyzers.tradelog.to_frame())
        assert len(logs[0]) > 0
        pd.testing.assert_frame_equal(logs[0], logs[1])
        assert_same({**case, "universe": members}, label=f"seed {seed} Membership")


def test_the_kernels_take_only_numpy_arrays_and_scalars():
    """strategies/vector_nb.py imports numpy and numba only (no pandas, no project module): what
    it gets is arrays and numbers, as vectorbt's portfolio/nb.py."""
    import ast
    from pathlib import Path

    import strategies.vector_nb as nb

    tree = ast.parse(Path(nb.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"__future__", "numpy", "numba"}
