"""What cost breaks the edge: the strategy re-traded by the vector engine at several costs a side.

    table = cost_table(panel, params, cash, yardstick)           # one row per cost in GRID_BP
    found = breakeven_cost(lambda bp: cost_row(panel, params, cash, bp, yardstick)["excess_sharpe"])
    print(summary_line(table, found, turnover))

`panel` is strategies.vector.prepare's (the run's own scores and prices), so each row is the same
strategy the run traded, only charged more or less. A cost a side is what one fill pays, as a
fraction of its value: commission plus slippage. `engine_costs` splits it into the engine's
keywords: the run's own commission first (`commission`, a fraction), the rest as slippage (a buy
fills at open x (1 + s), a sell at open x (1 - s)), so the row at the run's own commission +
slippage is the run itself. A row holds both parts beside the total.

The yardstick is the universe's equal-weight curve of the reports (growth of 1, no costs). The
excess Sharpe is the Sharpe ratio (analyzers.metrics.sharpe_ratio) of the strategy's daily return
minus the yardstick's daily return on the same day; the breakeven cost is the cost a side at which
it reaches zero, found by bisection on a bracket (BRACKET_BP) to a stated resolution.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analyzers.metrics import daily_returns, sharpe_ratio
from core.errors import ConfigError, DataError
from strategies.vector import simulate_prepared

GRID_BP = (0.0, 5.0, 10.0, 20.0, 50.0)  # costs a side, in basis points, that every report shows
BRACKET_BP = (0.0, 500.0)  # where the breakeven is searched; 500 bp a side is far past any real cost
RESOLUTION_BP = 0.25  # the bisection stops when the breakeven is known to within this
BP_PER_UNIT = 1e4  # basis points in 1; dividing by it gives 5 bp as the float 0.0005 exactly


def engine_costs(cost_bp: float, commission: float = 0.0) -> dict:
    """simulate_prepared's cost keywords for `cost_bp` a side: up to `commission` (the run's own,
    a fraction a side) as commission, the rest as slippage; so the 5 bp row of a run at 5 bp
    commission is charged exactly as the run was (5 / 1e4 is the float 0.0005)."""
    cost_bp = float(cost_bp)
    if not (math.isfinite(cost_bp) and 0.0 <= cost_bp < 1e4):
        raise ConfigError(f"cost a side {cost_bp!r} bp: give a number of basis points in [0, 10000)")
    if not (math.isfinite(commission) and 0.0 <= commission < 1.0):
        raise ConfigError(f"commission {commission!r}: give the run's commission as a fraction a side in [0, 1)")
    total = cost_bp / BP_PER_UNIT
    if total <= commission:
        return {"commission": total, "slippage": 0.0}
    return {"commission": float(commission), "slippage": total - commission}


def yardstick_returns(curve: pd.Series) -> pd.Series:
    """Daily returns of a growth curve that starts on the strategy's first day (0 on that day, as
    the strategy's first return against its starting cash before any fill)."""
    curve = pd.Series(curve, dtype="float64")
    return curve.pct_change(fill_method=None).fillna(0.0)


def excess_sharpe(equity: pd.Series, cash: float, yardstick: pd.Series) -> float:
    """Sharpe of (the strategy's daily return - the yardstick's daily return), day by day.
    `yardstick` holds daily returns (yardstick_returns) on at least the equity's dates."""
    strategy = daily_returns(equity, cash)
    other = pd.Series(yardstick, dtype="float64").reindex(strategy.index)
    missing = other.index[other.isna()]
    if len(missing):
        raise DataError(
            f"cost sensitivity: the yardstick has no return on {len(missing)} of the strategy's days "
            f"(first {missing[0].date()}); pass the equal-weight curve on the run's calendar"
        )
    return sharpe_ratio(strategy - other)


def cost_row(panel, params: dict, cash: float, cost_bp: float, yardstick: pd.Series, commission: float = 0.0) -> dict:
    """The strategy on `panel` at `cost_bp` a side (engine_costs' split with the run's
    `commission`): Sharpe, CAGR, excess Sharpe over the yardstick (daily returns), total return,
    trades and the turnover that the cost is charged on."""
    costs = engine_costs(cost_bp, commission)
    result = simulate_prepared(panel, params, cash, trade_log=False, benchmark_metrics={}, **costs)
    m = result.metrics
    return {
        "cost_bp": float(cost_bp),
        "commission_bp": costs["commission"] * BP_PER_UNIT,
        "slippage_bp": float(cost_bp) - costs["commission"] * BP_PER_UNIT,  # in bp: 45, not 45.00000000000001
        "sharpe": m["sharpe"],
        "cagr": m["cagr"],
        "excess_sharpe": _finite_or_none(excess_sharpe(result.equity, cash, yardstick)),
        "total_return": m["total_return"],
        "n_trades": m["n_trades"],
        "turnover": m["turnover"],
    }


def cost_table(
    panel, params: dict, cash: float, yardstick: pd.Series, grid=GRID_BP, commission: float = 0.0
) -> list[dict]:
    """cost_row at every cost of `grid` (basis points a side), cheapest first."""
    return [cost_row(panel, params, cash, bp, yardstick, commission) for bp in sorted(float(g) for g in grid)]


def breakeven_cost(excess_at, bracket=BRACKET_BP, resolution: float = RESOLUTION_BP) -> dict:
    """The cost a side (bp) where `excess_at(bp)` (the excess Sharpe) turns from above zero to zero
    or below, by bisection on `bracket`: the interval [low_bp, high_bp] holds the crossing, with
    excess_at(low) > 0 >= excess_at(high) and high - low <= resolution; `bp` is its middle.

    status "found"; "below_bracket" when there is no edge even at the bracket's low end (the
    breakeven is below it: below 0 bp for the default bracket); "above_bracket" when the edge
    survives the high end; "undefined" when the excess Sharpe cannot be computed at an end (NaN)."""
    lo, hi = (float(b) for b in bracket)
    if not (0.0 <= lo < hi and resolution > 0):
        raise ConfigError(
            f"breakeven bracket {bracket!r} / resolution {resolution!r}: need 0 <= low < high and resolution > 0"
        )
    out = {"bp": None, "low_bp": None, "high_bp": None, "resolution_bp": float(resolution), "bracket_bp": [lo, hi]}
    at_lo, at_hi = _number(excess_at(lo)), _number(excess_at(hi))
    if math.isnan(at_lo) or math.isnan(at_hi):
        return {**out, "status": "undefined", "evaluations": 2}
    if not at_lo > 0:
        return {**out, "status": "below_bracket", "high_bp": lo, "evaluations": 2}
    if at_hi > 0:
        return {**out, "status": "above_bracket", "low_bp": hi, "evaluations": 2}
    evaluations = 2
    while hi - lo > resolution:
        mid = 0.5 * (lo + hi)
        value = _number(excess_at(mid))
        evaluations += 1
        if value > 0:
            lo = mid
        else:  # zero, below zero or NaN: the edge is gone there
            hi = mid
    return {**out, "status": "found", "bp": 0.5 * (lo + hi), "low_bp": lo, "high_bp": hi, "evaluations": evaluations}


def cost_sensitivity(
    panel,
    params: dict,
    cash: float,
    yardstick: pd.Series,
    grid=GRID_BP,
    bracket=BRACKET_BP,
    resolution=RESOLUTION_BP,
    commission: float = 0.0,
) -> dict:
    """The report's whole block: {"table": cost_table rows, "breakeven": breakeven_cost's dict},
    every cost split by engine_costs with the run's `commission`. The bisection reuses the grid's
    rows where it lands on one of their costs (the bracket's ends)."""
    table = cost_table(panel, params, cash, yardstick, grid, commission)
    known = {row["cost_bp"]: row["excess_sharpe"] for row in table}

    def excess_at(bp):
        if bp not in known:
            known[bp] = cost_row(panel, params, cash, bp, yardstick, commission)["excess_sharpe"]
        return known[bp]

    return {"table": table, "breakeven": breakeven_cost(excess_at, bracket, resolution)}


def metrics_fields(block: dict) -> dict:
    """cost_sensitivity's block as metrics.json holds it: `cost_sensitivity` (the table's rows),
    `breakeven_cost_bp` (None unless found in the bracket) and `breakeven_cost` (status, interval,
    resolution, bracket, in words)."""
    found = block["breakeven"]
    return {
        "cost_sensitivity": [dict(row) for row in block["table"]],
        "breakeven_cost_bp": found["bp"],
        "breakeven_cost": {**found, "text": describe_breakeven(found)},
    }


def describe_breakeven(found: dict) -> str:
    """The breakeven in words: '12.38 bp a side (±0.12 bp)', 'below 0 bp: ...', 'above 500 bp: ...'."""
    lo, hi = found["bracket_bp"]
    status = found["status"]
    if status == "found":
        return f"{found['bp']:.2f} bp a side (±{(found['high_bp'] - found['low_bp']) / 2:.2f} bp, bisection)"
    if status == "below_bracket":
        return f"below {lo:g} bp: no excess over the equal-weight yardstick even at {lo:g} bp"
    if status == "above_bracket":
        return f"above {hi:g} bp: the excess survives {hi:g} bp a side"
    return "undefined: the excess Sharpe is not a number at the bracket's ends (no variance)"


def summary_line(table: list[dict], found: dict, turnover) -> str:
    """One line for the printed summary: Sharpe and excess Sharpe at each cost, the breakeven and
    the turnover (a year, traded value / mean equity) that the cost is charged on."""
    cells = ", ".join(
        f"{row['cost_bp']:g} bp {_fmt(row['sharpe'])} ({_fmt(row['excess_sharpe'], signed=True)})" for row in table
    )
    turn = "n/a" if turnover is None or not np.isfinite(turnover) else f"{turnover:.2f}/yr"
    return (
        f"cost a side -> Sharpe (excess over equal-weight): {cells}; breakeven {describe_breakeven(found)}; "
        f"turnover {turn}"
    )


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _finite_or_none(value):
    return float(value) if value is not None and math.isfinite(value) else None


def _fmt(value, signed=False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.2f}"
