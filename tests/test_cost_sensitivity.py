"""strategies/cost_sensitivity.py: the cost table and the breakeven cost, on a synthetic universe
whose scores know a little of the next week (so there is an edge for costs to eat)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analyzers.cost_plot import write_cost_png
from core.errors import ConfigError, DataError
from strategies import cost_sensitivity as cs
from strategies.vector import prepare, simulate_prepared

PARAMS = dict(top_k=3, review_days=1, review_in="bars", exit_threshold=0.3, entry_threshold=0.5, position_pct=0.33)
CASH = 100_000.0


def synthetic(seed=1, n=6, days=160, skill=0.4):
    """(prices, scores, equal-weight growth curve): close-only random walks; the score is tanh of
    skill x the standardised return from the fill day over 5 days, plus unit noise."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2020-01-02", periods=days)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, (days, n)), axis=0))
    tickers = [f"S{j}" for j in range(n)]
    prices = {
        t: pd.DataFrame({k: close[:, j] for k in ("open", "high", "low", "close")}, index=index)
        for j, t in enumerate(tickers)
    }
    log = np.log(close)
    fwd = np.zeros_like(log)
    fwd[:-6] = log[6:] - log[1:-5]
    scores = pd.DataFrame(np.tanh(skill * fwd / fwd.std() + rng.normal(0, 1, (days, n))), index=index, columns=tickers)
    daily = pd.DataFrame(close, index=index).pct_change().mean(axis=1).fillna(0.0)
    return prices, scores, (1 + daily).cumprod()


@pytest.fixture(scope="module")
def case():
    prices, scores, curve = synthetic()
    return prepare(prices, scores), cs.yardstick_returns(curve), curve


def test_each_row_is_the_engine_run_at_that_cost(case):
    """A run at 5 bp commission: each cost a side is its commission first, the rest slippage."""
    panel, yardstick, curve = case
    table = cs.cost_table(panel, PARAMS, CASH, yardstick, commission=0.0005)
    assert [row["cost_bp"] for row in table] == [0.0, 5.0, 10.0, 20.0, 50.0]
    assert [(row["commission_bp"], row["slippage_bp"]) for row in table] == [
        (0.0, 0.0),
        (5.0, 0.0),
        (5.0, 5.0),
        (5.0, 15.0),
        (5.0, 45.0),
    ]
    for row in table:
        commission = min(row["cost_bp"], 5.0) / 1e4
        slippage = row["cost_bp"] / 1e4 - commission
        run = simulate_prepared(panel, PARAMS, CASH, commission=commission, slippage=slippage)  # in this test
        for key in ("sharpe", "cagr", "total_return", "n_trades", "turnover"):
            assert row[key] == run.metrics[key], (row["cost_bp"], key)
        # excess Sharpe recomputed by hand: numpy on the equity and the equal-weight curve
        values = np.r_[CASH, run.equity.to_numpy()]
        ew = np.r_[1.0, curve.to_numpy()]
        diff = values[1:] / values[:-1] - ew[1:] / ew[:-1]
        assert row["excess_sharpe"] == pytest.approx(diff.mean() / diff.std(ddof=1) * math.sqrt(252), rel=1e-12)
    own = simulate_prepared(panel, PARAMS, CASH, commission=0.0005)  # the 5 bp run itself, as a run charges it
    assert table[1]["sharpe"] == own.metrics["sharpe"] and table[1]["total_return"] == own.metrics["total_return"]
    slipped = cs.cost_table(panel, PARAMS, CASH, yardstick, grid=(10,))[0]  # no commission: all slippage
    assert (slipped["commission_bp"], slipped["slippage_bp"]) == (0.0, 10.0)
    assert slipped["sharpe"] == simulate_prepared(panel, PARAMS, CASH, slippage=0.001).metrics["sharpe"]


def test_sharpe_and_excess_fall_as_the_cost_rises(case):
    panel, yardstick, _ = case
    table = cs.cost_table(panel, PARAMS, CASH, yardstick, grid=(50, 0, 10, 5, 20))  # sorted by cost
    sharpe = [row["sharpe"] for row in table]
    excess = [row["excess_sharpe"] for row in table]
    assert excess[0] > 0 > excess[-1]  # the case has an edge, and 50 bp a side eats it
    assert all(a > b for a, b in zip(sharpe, sharpe[1:])), sharpe
    assert all(a > b for a, b in zip(excess, excess[1:])), excess


def test_bisection_finds_the_crossing_of_a_brute_force_fine_grid(case):
    panel, yardstick, _ = case
    bracket, resolution, step = (0.0, 40.0), 0.25, 0.125
    found = cs.breakeven_cost(
        lambda bp: cs.cost_row(panel, PARAMS, CASH, bp, yardstick)["excess_sharpe"], bracket, resolution
    )
    assert found["status"] == "found"
    assert found["high_bp"] - found["low_bp"] <= resolution
    assert found["evaluations"] == 2 + math.ceil(math.log2(40.0 / resolution))
    grid = np.arange(bracket[0], bracket[1] + step / 2, step)
    excess = np.array([cs.cost_row(panel, PARAMS, CASH, bp, yardstick)["excess_sharpe"] for bp in grid])
    assert np.all(np.diff(excess) < 0)  # one crossing, so the grid's and the bisection's must agree
    first_gone = grid[np.argmax(excess <= 0)]
    assert found["low_bp"] < first_gone <= found["high_bp"] + step
    assert abs(found["bp"] - first_gone) <= resolution


def test_bisection_of_a_known_line_and_of_the_whole_block(case):
    found = cs.breakeven_cost(lambda bp: 0.8 * (137.3 - bp))
    assert found["status"] == "found" and abs(found["bp"] - 137.3) <= found["resolution_bp"] / 2
    assert found["low_bp"] < 137.3 <= found["high_bp"]
    panel, yardstick, _ = case
    block = cs.cost_sensitivity(panel, PARAMS, CASH, yardstick, bracket=(0.0, 40.0))
    alone = cs.breakeven_cost(lambda bp: cs.cost_row(panel, PARAMS, CASH, bp, yardstick)["excess_sharpe"], (0.0, 40.0))
    assert block["breakeven"] == alone  # reusing the grid's rows changes nothing
    assert block["table"] == cs.cost_table(panel, PARAMS, CASH, yardstick)


def test_no_edge_at_zero_cost_is_reported_below_the_bracket(case):
    prices, scores, curve = synthetic()
    panel = prepare(prices, -scores)  # the skill turned upside down: worse than equal-weight at 0 bp
    yardstick = cs.yardstick_returns(curve)
    block = cs.cost_sensitivity(panel, PARAMS, CASH, yardstick)
    assert block["table"][0]["excess_sharpe"] < 0
    found = block["breakeven"]
    assert found["status"] == "below_bracket" and found["bp"] is None and found["high_bp"] == 0.0
    assert "below 0 bp" in cs.summary_line(block["table"], found, block["table"][0]["turnover"])


def test_an_edge_that_survives_the_bracket_is_reported_above_it(case):
    panel, yardstick, _ = case
    found = cs.breakeven_cost(lambda bp: cs.cost_row(panel, PARAMS, CASH, bp, yardstick)["excess_sharpe"], (0.0, 2.0))
    assert found["status"] == "above_bracket" and found["bp"] is None and found["low_bp"] == 2.0
    assert cs.describe_breakeven(found).startswith("above 2 bp")
    assert cs.breakeven_cost(lambda bp: float("nan"))["status"] == "undefined"


def test_summary_line_names_every_cost_the_breakeven_and_the_turnover(case):
    panel, yardstick, _ = case
    block = cs.cost_sensitivity(panel, PARAMS, CASH, yardstick)
    line = cs.summary_line(block["table"], block["breakeven"], 12.345)
    assert "\n" not in line
    for row in block["table"]:
        assert f"{row['cost_bp']:g} bp {row['sharpe']:.2f} ({row['excess_sharpe']:+.2f})" in line
    assert f"breakeven {block['breakeven']['bp']:.2f} bp a side" in line and "turnover 12.35/yr" in line


def test_bad_costs_and_yardsticks_are_refused_with_their_names(case):
    panel, yardstick, _ = case
    with pytest.raises(ConfigError, match="cost a side -1"):
        cs.engine_costs(-1)
    with pytest.raises(ConfigError, match="bracket"):
        cs.breakeven_cost(lambda bp: 1.0, (10.0, 5.0))
    with pytest.raises(DataError, match="yardstick has no return on 10 of the strategy's days"):
        cs.cost_row(panel, PARAMS, CASH, 0.0, yardstick.iloc[:-10])


def test_the_plot_is_a_png_written_whole(case, tmp_path):
    panel, yardstick, _ = case
    block = cs.cost_sensitivity(panel, PARAMS, CASH, yardstick)
    path = write_cost_png(block["table"], block["breakeven"], tmp_path / "cost_sensitivity.png", turnover=3.2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cost_sensitivity.png"]  # no temporary left behind


def test_metrics_fields_are_json_and_carry_the_breakeven(case):
    import json

    panel, yardstick, _ = case
    fields = cs.metrics_fields(cs.cost_sensitivity(panel, PARAMS, CASH, yardstick))
    assert set(fields) == {"cost_sensitivity", "breakeven_cost_bp", "breakeven_cost"}
    back = json.loads(json.dumps(fields, allow_nan=False))
    assert back["breakeven_cost_bp"] == fields["breakeven_cost"]["bp"]
    assert fields["breakeven_cost"]["low_bp"] < back["breakeven_cost_bp"] < fields["breakeven_cost"]["high_bp"]
    assert [row["cost_bp"] for row in back["cost_sensitivity"]] == list(cs.GRID_BP)
