"""Portfolio metrics: pure functions on pandas objects, and the analyzer that feeds them.

The definitions follow QuantStats 0.0.86 so that the numbers in metrics.json, in the tearsheet and
in Backtrader's own analyzers agree (the tests check all three):

- daily return r_t = V_t / V_{t-1} - 1, the first one against the starting cash when it is known;
- Sharpe = mean(r) / std(r, ddof=1) * sqrt(periods_per_year), after subtracting the per-period
  risk-free rate (``bt.analyzers.SharpeRatio`` gives the same with ``timeframe=Days,
  annualize=True, stddev_sample=True, riskfreerate=0``);
- max drawdown = min over t of V_t / max_{s<=t} V_s - 1, a negative fraction, the starting cash
  counting as the first peak (``bt.analyzers.DrawDown`` reports ``-100 x`` this);
- CAGR = (V_end / V_start) ** (periods_per_year / number of returns) - 1, QuantStats' convention
  (years counted in trading periods, not calendar days).
"""

from __future__ import annotations

import math
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd

from analyzers.selection import probabilistic_sharpe
from core.errors import ConfigError
from core.io import json_safe, write_json, write_text

METRIC_KEYS = (
    "final_value",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "psr",
    "sortino",
    "max_drawdown",
    "n_trades",
    "win_rate",
    "exposure",
    "turnover",
    "benchmark_total_return",
    "benchmark_cagr",
    "benchmark_volatility",
    "benchmark_sharpe",
    "benchmark_max_drawdown",
    "start",
    "end",
    "days",
)


# --------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------
def daily_returns(values: pd.Series, initial_value: float | None = None) -> pd.Series:
    """Simple returns of an equity curve, one per date of `values`.

    r_t = V_t / V_{t-1} - 1. With `initial_value` (the starting cash) the first date gets
    V_0 / initial_value - 1, as Backtrader's TimeReturn does; without it the first date has no
    return and is dropped.
    """
    values = pd.Series(values, dtype="float64")
    if initial_value is None:
        return values.pct_change(fill_method=None).iloc[1:].rename("returns")
    previous = values.shift(1)
    previous.iloc[:1] = float(initial_value)
    return (values / previous - 1.0).rename("returns")


def sharpe_ratio(returns: pd.Series, periods_per_year: int = 252, risk_free: float = 0.0) -> float:
    """mean(r - rf_p) / std(r - rf_p, ddof=1) * sqrt(periods_per_year), rf_p the per-period rate.

    `risk_free` is an annual rate, turned into a per-period one geometrically, as Backtrader's
    SharpeRatio (convertrate=True) does. NaN when fewer than two returns or zero variance.
    """
    excess = _excess(returns, periods_per_year, risk_free)
    std = excess.std(ddof=1)
    if len(excess) < 2 or not std > 0:
        return float("nan")
    return float(excess.mean() / std * math.sqrt(periods_per_year))


def sortino_ratio(returns: pd.Series, periods_per_year: int = 252, risk_free: float = 0.0) -> float:
    """mean(r - rf_p) / downside deviation * sqrt(periods_per_year), QuantStats' definition.

    Downside deviation = sqrt(sum(min(r, 0)^2) / n) over all n returns.
    """
    excess = _excess(returns, periods_per_year, risk_free)
    downside = math.sqrt(float((excess.clip(upper=0.0) ** 2).sum()) / max(len(excess), 1))
    if not downside > 0:
        return float("nan")
    return float(excess.mean() / downside * math.sqrt(periods_per_year))


def max_drawdown(values: pd.Series, initial_value: float | None = None) -> float:
    """Largest fall from a running peak, as a negative fraction (0.0 when the curve never falls).

    min_t V_t / max_{s<=t} V_s - 1; `initial_value`, when given, is the first peak.
    """
    curve = np.asarray(values, dtype="float64")
    if initial_value is not None:
        curve = np.concatenate([[float(initial_value)], curve])
    if curve.size == 0:
        return float("nan")
    peaks = np.maximum.accumulate(curve)
    return float(min((curve / peaks).min() - 1.0, 0.0))


def cagr(total_return: float, n_periods: int, periods_per_year: int = 252) -> float:
    """(1 + total_return) ** (periods_per_year / n_periods) - 1 (QuantStats: years = count / 252)."""
    if n_periods <= 0 or total_return <= -1.0:
        return float("nan")
    return float((1.0 + total_return) ** (periods_per_year / n_periods) - 1.0)


def align_benchmark(benchmark: pd.Series, dates: pd.DatetimeIndex, base: float = 1.0) -> pd.Series:
    """The benchmark's level as of each date (last value on or before it), rebased to `base`.

    Dates before the benchmark's first value are dropped. The result is rebased on its first
    aligned value, so it starts at `base` on the first date it covers.
    """
    bench = _naive_sorted(pd.Series(benchmark, dtype="float64")).dropna()
    dates = _naive_index(pd.DatetimeIndex(dates))
    positions = bench.index.searchsorted(dates, side="right") - 1
    covered = positions >= 0
    levels = pd.Series(bench.to_numpy()[positions[covered]], index=dates[covered], name=bench.name)
    if levels.empty:
        return levels
    return levels / levels.iloc[0] * base


def trade_stats(trades: pd.DataFrame | None) -> dict:
    """n_trades and win_rate from a trade log's closing rows (a win is PnL_Pct > 0).

    Closing rows are those with PnL_Pct set: for a long-only strategy exactly the SELL rows (a
    short's covering BUY also closes). A partial sell counts as one trade, as in the seed's stats.
    """
    if trades is None or len(trades) == 0 or "PnL_Pct" not in trades:
        return {"n_trades": 0, "win_rate": float("nan")}
    pnl = pd.to_numeric(trades["PnL_Pct"], errors="coerce").dropna()
    return {"n_trades": int(len(pnl)), "win_rate": float((pnl > 0).mean()) if len(pnl) else float("nan")}


def compute_metrics(
    equity: pd.Series,
    benchmark: pd.Series | None = None,
    trades: pd.DataFrame | None = None,
    exposure: pd.Series | None = None,
    turnover: pd.Series | None = None,
    periods_per_year: int = 252,
    risk_free: float = 0.0,
    initial_value: float | None = None,
) -> dict:
    """Headline metrics of an equity curve (index = dates, values = portfolio value).

    - final_value: last value; total_return: final / start - 1, start = `initial_value` (the
      starting cash) if given, else the first value.
    - cagr: (1 + total_return) ** (periods_per_year / n returns) - 1.
    - volatility: std(daily r, ddof=1) * sqrt(periods_per_year).
    - sharpe: mean(r - rf_p) / std(r - rf_p, ddof=1) * sqrt(periods_per_year) (QuantStats; equal
      to bt.analyzers.SharpeRatio(timeframe=Days, annualize=True, stddev_sample=True)).
    - psr: the probabilistic Sharpe ratio (Bailey & López de Prado 2012), the probability that the
      true Sharpe of the excess returns is above 0 given their daily Sharpe, count, skew and
      kurtosis (analyzers.selection.probabilistic_sharpe).
    - sortino: mean(r - rf_p) / sqrt(mean(min(r - rf_p, 0)^2)) * sqrt(periods_per_year).
    - max_drawdown: min V_t / running peak - 1, negative fraction, starting cash = first peak.
    - n_trades, win_rate: closing rows of the trade log `trades` (PnL_Pct set; for a
      long-only strategy the SELL rows), win = PnL_Pct > 0.
    - exposure: share of days with at least one open position (`exposure` = positions count per
      date, or booleans).
    - turnover: annualised traded value / average equity = sum(traded) / mean(V) *
      periods_per_year / days; buys and sells both count, so a full switch of the book is 2.
    - benchmark_total_return, benchmark_cagr: buy and hold of the benchmark (levels, taken as of
      the equity dates) over the strategy's period: from the last level before the first date
      when `initial_value` is given (the strategy's first return is against cash held the day
      before; the benchmark's first date if it has no earlier level), else from the first date;
      the CAGR uses the same number of periods as the strategy's.
    - start, end: first and last date (ISO); days: number of equity dates (bars).
    NaN where a metric cannot be computed (no benchmark, no trade log, ...).
    """
    equity = _naive_sorted(pd.Series(equity, dtype="float64")).dropna()
    if equity.empty:
        raise ConfigError("compute_metrics: the equity series is empty; run the backtest over at least one bar.")
    returns = daily_returns(equity, initial_value)
    start_value = float(initial_value) if initial_value is not None else float(equity.iloc[0])
    total = float(equity.iloc[-1] / start_value - 1.0)
    days = int(len(equity))

    out = {
        "final_value": float(equity.iloc[-1]),
        "total_return": total,
        "cagr": cagr(total, len(returns), periods_per_year),
        "volatility": float(returns.std(ddof=1) * math.sqrt(periods_per_year)) if len(returns) > 1 else float("nan"),
        "sharpe": sharpe_ratio(returns, periods_per_year, risk_free),
        "psr": _psr(returns, periods_per_year, risk_free),
        "sortino": sortino_ratio(returns, periods_per_year, risk_free),
        "max_drawdown": max_drawdown(equity, initial_value),
    }
    out.update(trade_stats(trades))
    out["exposure"] = _exposure(exposure, equity.index)
    out["turnover"] = _turnover(turnover, equity, periods_per_year)
    out.update(_benchmark_metrics(benchmark, equity.index, periods_per_year, initial_value is not None))
    out["start"] = equity.index[0].date().isoformat()
    out["end"] = equity.index[-1].date().isoformat()
    out["days"] = days
    return out


def equity_csv(equity: pd.Series) -> str:
    """equity.csv's text: date,value with the value's full repr."""
    return "date,value\n" + "".join(f"{d.date().isoformat()},{v!r}\n" for d, v in equity.items())


def json_safe_metrics(metrics: dict) -> dict:
    """NaN and infinities as None, as metrics.json holds them."""
    return json_safe(metrics)


def _excess(returns, periods_per_year, risk_free) -> pd.Series:
    returns = pd.Series(returns, dtype="float64").dropna()
    if risk_free:
        returns = returns - ((1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0)
    return returns


def _psr(returns, periods_per_year, risk_free) -> float:
    excess = _excess(returns, periods_per_year, risk_free)
    if len(excess) < 2 or not excess.std(ddof=1) > 0:
        return float("nan")  # no Sharpe (e.g. a run that never traded), so no probability of one
    return probabilistic_sharpe(excess.to_numpy())


def _exposure(exposure, dates) -> float:
    if exposure is None:
        return float("nan")
    held = pd.Series(exposure)
    held.index = _naive_index(pd.DatetimeIndex(held.index))
    held = held.reindex(_naive_index(pd.DatetimeIndex(dates))).fillna(0)
    return float((held.astype("float64") > 0).mean()) if len(held) else float("nan")


def _turnover(traded, equity, periods_per_year) -> float:
    if traded is None or len(equity) == 0:
        return float("nan")
    mean_equity = float(equity.mean())
    if not mean_equity > 0:
        return float("nan")
    return float(pd.Series(traded, dtype="float64").sum() / mean_equity * periods_per_year / len(equity))


def _benchmark_metrics(benchmark, dates, periods_per_year, from_day_before: bool) -> dict:
    """Buy and hold of the benchmark over the strategy's own period.

    With `from_day_before` (the strategy's first return is against its starting cash) the benchmark
    starts at its last level before the first date, if it has one, as the tearsheet does, and the
    CAGR uses as many periods as the strategy has returns.
    """
    empty = {
        k: float("nan")
        for k in (
            "benchmark_total_return",
            "benchmark_cagr",
            "benchmark_volatility",
            "benchmark_sharpe",
            "benchmark_max_drawdown",
        )
    }
    if benchmark is None:
        return empty
    bench = _naive_sorted(pd.Series(benchmark, dtype="float64")).dropna()
    dates = _naive_index(pd.DatetimeIndex(dates))
    levels = align_benchmark(bench, dates, base=1.0)
    if len(levels) < 2:
        return empty
    start_level, n_periods = float(levels.iloc[0]), len(levels) - 1
    if from_day_before:
        n_periods = len(levels)
        earlier = bench[bench.index < levels.index[0]]
        if len(earlier):
            start_level = float(earlier.iloc[-1] / bench.asof(levels.index[0]))
    total = float(levels.iloc[-1] / start_level - 1.0)
    # the same formulas as the strategy's, on the benchmark's buy-and-hold curve
    returns = daily_returns(levels, initial_value=start_level if from_day_before else None)
    return {
        "benchmark_total_return": total,
        "benchmark_cagr": cagr(total, n_periods, periods_per_year),
        "benchmark_volatility": float(returns.std(ddof=1) * np.sqrt(periods_per_year)),
        "benchmark_sharpe": sharpe_ratio(returns, periods_per_year=periods_per_year),
        "benchmark_max_drawdown": max_drawdown(levels, initial_value=start_level if from_day_before else None),
    }


def _naive_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    # Backtrader hands out aware or naive datetimes depending on the feed's tz; compare naive,
    # keeping the local wall-clock date (converting to UTC first could move a bar to the next day).
    return index.tz_localize(None) if index.tz is not None else index


def _naive_sorted(series: pd.Series) -> pd.Series:
    series = series.copy()
    series.index = _naive_index(pd.DatetimeIndex(series.index))
    return series.sort_index()


# --------------------------------------------------------------------------------------------
# The analyzer
# --------------------------------------------------------------------------------------------
class PortfolioMetrics(bt.Analyzer):
    """Records each bar's date, broker value, cash, open positions and traded value; computes
    `compute_metrics` at stop.

    Params:
      - benchmark: a pd.Series of benchmark levels (prices) indexed by date, or None.
      - trades_from: where n_trades / win_rate come from: "auto" (default: the TradeLog attached to
        the same strategy, if any), a TradeLog instance, the name of an attached analyzer, or None.
      - out_dir: folder where metrics.json and equity.csv (date,value) are written at stop, or None.
      - periods_per_year (252), risk_free (annual rate, 0.0).

    get_analysis() -> the metrics dict (NaN as None, so it is JSON-safe); equity() -> Series
    named "value" indexed by date; records() -> DataFrame date, value, cash, positions, traded.
    """

    params = (
        ("benchmark", None),
        ("trades_from", "auto"),
        ("out_dir", None),
        ("periods_per_year", 252),
        ("risk_free", 0.0),
    )

    def start(self):
        if self.p.benchmark is not None and not isinstance(self.p.benchmark, pd.Series):
            raise ConfigError(
                f"PortfolioMetrics: param benchmark must be a pandas Series of prices indexed by date, "
                f"got {type(self.p.benchmark).__name__}; load it first (e.g. feeds.load_embedded()[1])."
            )
        self.initial_value = float(self.strategy.broker.getvalue())
        self._rows: list[tuple] = []
        self._traded_pending = 0.0
        self._traded_by_ref: dict[int, float] = {}
        self._metrics: dict = {}

    def notify_order(self, order):
        if order.status not in (order.Partial, order.Completed):
            return
        # executed.price is the average fill price so far; count only what is new since last time.
        traded = abs(order.executed.size) * order.executed.price
        already = self._traded_by_ref.get(order.ref, 0.0)
        self._traded_pending += traded - already
        self._traded_by_ref[order.ref] = traded
        if order.status == order.Completed:
            self._traded_by_ref.pop(order.ref, None)

    def next(self):
        broker = self.strategy.broker
        self._rows.append(
            (
                self.strategy.datetime.datetime(0),
                float(broker.getvalue()),
                float(broker.getcash()),
                _open_positions(broker, self.strategy.datas),
                self._traded_pending,
            )
        )
        self._traded_pending = 0.0

    def stop(self):
        self._metrics = self._compute()
        if self.p.out_dir is not None:
            self.write(self.p.out_dir)

    def records(self) -> pd.DataFrame:
        frame = pd.DataFrame(self._rows, columns=["date", "value", "cash", "positions", "traded"])
        frame["date"] = pd.to_datetime(frame["date"])
        return frame.set_index("date")

    def equity(self) -> pd.Series:
        return self.records()["value"].rename("value")

    def benchmark_curve(self) -> pd.Series:
        """The benchmark as of each equity date, rebased to the starting cash (for plots)."""
        if self.p.benchmark is None:
            return pd.Series(dtype="float64", name="benchmark")
        return align_benchmark(self.p.benchmark, self.equity().index, base=self.initial_value)

    def get_analysis(self) -> dict:
        return dict(self._metrics)

    def write(self, out_dir) -> dict:
        """Write metrics.json and equity.csv into `out_dir`; return their paths."""
        out_dir = Path(out_dir)
        return {
            "metrics": str(write_json(out_dir / "metrics.json", self._metrics)),
            "equity": str(write_text(out_dir / "equity.csv", equity_csv(self.equity()))),
        }

    def _compute(self) -> dict:
        if not self._rows:
            return {}
        records = self.records()
        source = self._trade_log()
        trades = source.to_frame() if source is not None else None
        metrics = compute_metrics(
            records["value"],
            benchmark=self.p.benchmark,
            trades=trades,
            exposure=records["positions"],
            turnover=records["traded"],
            periods_per_year=self.p.periods_per_year,
            risk_free=self.p.risk_free,
            initial_value=self.initial_value,
        )
        return json_safe(metrics)

    def _trade_log(self):
        source = self.p.trades_from
        if source is None or hasattr(source, "to_frame"):
            return source
        attached = list(self.strategy.analyzers.getitems())
        if source == "auto":
            return next((a for _, a in attached if type(a).__name__ == "TradeLog"), None)
        for name, analyzer in attached:
            if name == source and hasattr(analyzer, "to_frame"):
                return analyzer
        raise ConfigError(
            f"PortfolioMetrics: param trades_from={source!r} names no TradeLog attached to the strategy "
            f"(attached: {[n for n, _ in attached]}); pass None, 'auto' or the TradeLog's _name."
        )


def _open_positions(broker, datas) -> int:
    positions = getattr(broker, "positions", None)
    if positions is not None:  # BackBroker: only the datas that ever traded are in the dict
        return sum(1 for p in positions.values() if p.size)
    return sum(1 for d in datas if broker.getposition(d).size)
