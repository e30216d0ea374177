"""The vectorized engine: AlphaRankStrategy's rules over a score panel, in a compiled day loop.

    result = simulate(prices, scores, dict(top_k=5), cash=100_000, commission=0.0005)
    result.trades    # trades.csv's columns (analyzers.tradelog.COLUMNS)
    result.equity    # the daily broker value, as equity.csv
    result.metrics   # metrics.json's keys (analyzers.metrics.compute_metrics)

It trades exactly as Cerebro with AlphaRankStrategy + ScoreAlpha + LeanBroker on the same scores,
prices and params (tests/test_vector.py compares them trade for trade): the same timeline (decide
after the close of t on bar t's scores, value the book at the open of t+1, sells before buys,
whole shares, buys capped by the cash with AlphaRankStrategy's ``affordable_shares`` rule), the
same float operations as the broker for cash, commission and value. It exists to screen many
variants: ``prepare`` builds the variant-independent arrays once (calendar, opens, closes, scores,
the day's ranks among the universe's members, the order of the day's candidates), and
``simulate_prepared`` runs one variant on them in the numba-compiled loop of
``strategies/vector_nb.py`` (numpy arrays and scalars only; ``cache=True``: compiled once per
machine). Nothing here imports models/: scores are a plain frame, as for ScoreAlpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzers.metrics import compute_metrics, json_safe_metrics
from analyzers.tradelog import COLUMNS, fill_row
from analyzers.tradelog import Book as _Book
from core.errors import ConfigError, DataError
from feeds.arraydata import feed_frame
from strategies.alpha_rank import AlphaRankStrategy
from strategies.alpha_rank import check_number as _check_number
from strategies.alpha_rank import daynum_of as _daynum
from strategies.scores import PreparedScores as _PreparedScores
from strategies.scores import day_numbers
from strategies.vector_nb import day_loop

REASONS = ("entry", "review_exit", "end")
PARAM_KEYS = (
    "top_k",
    "entry_threshold",
    "exit_threshold",
    "position_pct",
    "review_days",
    "review_in",
    "min_cash",
    "cross_section",
    "start",
    "close_at_end",
    "max_volume_pct",
)
DEFAULTS = {name: value for name, value in AlphaRankStrategy.params._getitems() if name in PARAM_KEYS}


# ------------------------------------------------------------------------------ the shared arrays
@dataclass
class Panel:
    """Everything a variant's day loop reads, computed once and shared by every variant.

    [days, stocks] arrays on the calendar of the Cerebro run (every day any fed data has a bar)."""

    dates: pd.DatetimeIndex
    tickers: list
    daynum: np.ndarray  # int64 [T]: Backtrader's day numbers (calendar-day arithmetic for reviews)
    open: np.ndarray  # float64 [T, N]: the open, NaN without a bar that day
    close: np.ndarray  # float64 [T, N]: the last close on or before the day (NaN before the first bar)
    has_bar: np.ndarray  # bool [T, N]
    prev_volume: np.ndarray  # float64 [T, N]: the volume of the stock's last bar before the day (0 without)
    has_volume: np.ndarray  # bool [N]: some bar of the stock has a volume > 0 (max_volume_pct needs it)
    raw: np.ndarray  # float64 [T, N]: the score of a ready stock (bar and finite score), else NaN
    rank: np.ndarray  # float64 [T, N]: rank in [-1, 1] among the day's members, NaN elsewhere
    member: np.ndarray  # bool [T, N]: ready and a member of the universe that day
    order: np.ndarray  # int32 [T, N]: the day's members, best score first (ties: ticker order)
    n_order: np.ndarray  # int32 [T]: how many of `order` are used
    barcount: np.ndarray  # int32 [T, N]: the stock's bars so far (len(data) in Cerebro)
    ends_next: np.ndarray  # bool [T, N]: the stock's next bar is the backtest's last (close_at_end)
    benchmark: pd.Series | None = None


def prepare(prices, scores: pd.DataFrame, start=None, end=None, universe=None, benchmark=None) -> Panel:
    """The variant-independent arrays of a backtest of `prices` (ticker -> OHLC frame, or a
    PricePanel) on `scores` (dates x tickers, ScoreAlpha's format) over [start, end].

    As Cerebro is fed: each stock's bars within [start, end]; the calendar is every day any stock
    (or the `benchmark` Series, when given: it is a data of the Cerebro run) has a bar. The score
    on a bar is the frame's value on the bar's own date (ScoreAlpha, asof=False)."""
    lo = pd.Timestamp(start) if start is not None else None
    hi = pd.Timestamp(end) if end is not None else None
    frames = {}
    for ticker, frame in prices.items():
        bars = feed_frame(frame, ticker).loc[lo:hi]
        bars = bars[bars["close"].notna()]
        frames[str(ticker)] = bars
    if not frames:
        raise DataError("vector engine: no stock prices were given; pass a PricePanel or {ticker: frame}")
    calendars = [f.index for f in frames.values()]
    if benchmark is not None:
        calendars.append(pd.Series(benchmark).dropna().loc[lo:hi].index)
    dates = calendars[0]
    for more in calendars[1:]:
        dates = dates.union(more)
    dates = pd.DatetimeIndex(dates)
    if len(dates) == 0:
        raise DataError(f"vector engine: no prices between {lo} and {hi}; widen the period")
    tickers = list(frames)
    t_count, n = len(dates), len(tickers)
    daynum = day_numbers(dates).astype(np.int64)
    open_ = np.full((t_count, n), np.nan)
    close = np.full((t_count, n), np.nan)
    has_bar = np.zeros((t_count, n), dtype=bool)
    ends_next = np.zeros((t_count, n), dtype=bool)
    final_day = daynum[-1]
    for j, bars in enumerate(frames.values()):
        rows = dates.get_indexer(bars.index)
        open_[rows, j] = bars["open"].to_numpy()
        close[rows, j] = bars["close"].to_numpy()
        has_bar[rows, j] = True
        # AlphaRankStrategy._ends_next_bar: len(d) == buflen - 1 and its last bar is the final day
        if len(rows) >= 2 and daynum[rows[-1]] >= final_day:
            ends_next[rows[-2] : rows[-1], j] = True
    close = pd.DataFrame(close).ffill().to_numpy()  # a stock without a bar is held at its last close
    prev_volume = _previous_bar_volume(frames, dates)
    has_volume = np.array([bool((bars["volume"].to_numpy() > 0).any()) for bars in frames.values()], dtype=bool)
    barcount = np.cumsum(has_bar, axis=0, dtype=np.int32)

    prepared = _PreparedScores(scores)
    raw = np.full((t_count, n), np.nan)
    for j, ticker in enumerate(tickers):
        raw[:, j] = prepared.lookup(ticker, daynum, asof=False)
    raw[~has_bar | ~np.isfinite(raw)] = np.nan
    member = np.isfinite(raw) & _membership(universe, dates, tickers)
    rank = day_ranks(np.where(member, raw, np.nan))
    masked = np.where(member, -raw, np.nan)  # argsort puts NaN (non-members) last
    order = np.ascontiguousarray(np.argsort(masked, axis=1, kind="stable").astype(np.int32))
    n_order = member.sum(axis=1).astype(np.int32)
    return Panel(
        dates,
        tickers,
        daynum,
        np.ascontiguousarray(open_),
        np.ascontiguousarray(close),
        has_bar,
        prev_volume,
        has_volume,
        raw,
        rank,
        member,
        order,
        n_order,
        barcount,
        ends_next,
        None if benchmark is None else pd.Series(benchmark).loc[:hi],
    )


def _previous_bar_volume(frames: dict, dates: pd.DatetimeIndex) -> np.ndarray:
    """[T, N]: each stock's volume on its last bar before the day (what is known at the close the
    decision was made), 0 before its second bar. feed_frame has made a missing volume 0."""
    volume = np.full((len(dates), len(frames)), np.nan)
    for j, bars in enumerate(frames.values()):
        volume[dates.get_indexer(bars.index), j] = bars["volume"].to_numpy()
    known = pd.DataFrame(volume).ffill().shift(1).fillna(0.0).to_numpy()
    return np.ascontiguousarray(known)


def _membership(universe, dates, tickers) -> np.ndarray:
    if universe is None:
        return np.ones((len(dates), len(tickers)), dtype=bool)
    if hasattr(universe, "mask"):  # feeds.Membership: one vectorized pass
        return universe.mask(dates, tickers).to_numpy(dtype=bool)
    if not callable(getattr(universe, "is_member", None)):
        raise ConfigError(
            "vector engine param 'universe' must have a method is_member(ticker, date) -> bool, or be None"
        )
    return np.array([[bool(universe.is_member(t, d)) for t in tickers] for d in dates], dtype=bool).reshape(
        len(dates), len(tickers)
    )


def day_ranks(values: np.ndarray) -> np.ndarray:
    """Each row's finite values as rank_to_unit maps them (2*(rank-1)/(n-1) - 1, ties averaged, a
    lone value 0), NaN elsewhere: all days at once. The average ranks are exact half-integers, so
    the result is bit for bit rank_to_unit's (tested)."""
    ranks = pd.DataFrame(values).rank(axis=1, method="average").to_numpy()
    n = np.isfinite(values).sum(axis=1, keepdims=True).astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 2.0 * (ranks - 1.0) / (n - 1.0) - 1.0
    out[(n[:, 0] == 1)[:, None] & np.isfinite(values)] = 0.0
    return out


# ------------------------------------------------------------------------------ one variant
@dataclass
class VectorResult:
    trades: pd.DataFrame | None  # trades.csv's columns (None when not asked for)
    trade_rows: list | None  # the same rows as dicts (TradeLog's rows: analyzers.tradelog.trade_rows_csv)
    equity: pd.Series  # the broker's value at each day's close
    metrics: dict  # metrics.json's keys
    positions: np.ndarray  # open positions at each close
    traded: np.ndarray  # traded value (shares x price, buys and sells) each day
    rejected_orders: int = 0  # orders the broker would refuse: always 0 (the sizing rule), as Cerebro


def check_params(params: dict) -> dict:
    """AlphaRankStrategy's params with its defaults; ConfigError for an unknown or invalid one."""
    unknown = set(params) - set(PARAM_KEYS)
    if unknown:
        raise ConfigError(f"vector engine: unknown strategy param(s) {sorted(unknown)}; valid: {', '.join(PARAM_KEYS)}")
    p = {**DEFAULTS, **params}
    _check_number("top_k", p["top_k"], integer=True, low=1)
    _check_number("entry_threshold", p["entry_threshold"], low=-1.0, high=1.0)
    _check_number("exit_threshold", p["exit_threshold"], low=-1.0, high=1.0)
    _check_number("position_pct", p["position_pct"], low=0.0, high=1.0, low_open=True)
    _check_number("review_days", p["review_days"], integer=True, low=1)
    _check_number("min_cash", p["min_cash"], low=0.0)
    if p["max_volume_pct"] is not None:
        _check_number("max_volume_pct", p["max_volume_pct"], low=0.0, high=1.0, low_open=True)
    if p["review_in"] not in ("calendar", "bars"):
        raise ConfigError(f"vector engine param 'review_in' is {p['review_in']!r}; valid: 'calendar' or 'bars'")
    if p["cross_section"] not in ("rank", "none"):
        raise ConfigError(f"vector engine param 'cross_section' is {p['cross_section']!r}; valid: 'rank' or 'none'")
    return p


def simulate(
    prices,
    scores,
    params: dict,
    cash: float = 100_000.0,
    commission: float = 0.0,
    start=None,
    end=None,
    universe=None,
    benchmark=None,
    slippage: float = 0.0,
) -> VectorResult:
    """One variant: ``prepare`` then ``simulate_prepared`` (see both). `params` are
    AlphaRankStrategy's (its ``start`` param is the warm-up: no decision before that date)."""
    panel = prepare(prices, scores, start, end, universe, benchmark)
    return simulate_prepared(panel, params, cash, commission, slippage=slippage)


def simulate_prepared(
    panel: Panel,
    params: dict,
    cash: float = 100_000.0,
    commission: float = 0.0,
    trade_log: bool = True,
    benchmark_metrics: dict | None = None,
    slippage: float = 0.0,
) -> VectorResult:
    """One variant on shared arrays. trade_log=False skips the trades frame (metrics still count
    the trades): what a sweep of thousands of variants wants. `benchmark_metrics`: the benchmark_*
    metrics of the panel's calendar when already computed (``panel_benchmark_metrics``); they do
    not depend on the variant. `slippage`: a fraction a side, as ``feeds.broker.set_slippage`` sets
    it on a Cerebro broker (a buy fills at open * (1 + s), a sell at open * (1 - s), never capped)."""
    out = run_arrays(panel, params, cash, commission, slippage)
    equity = pd.Series(out["equity"], index=panel.dates, name="value")
    rows = trade_rows(panel, out) if trade_log else None
    closing = pd.DataFrame({"PnL_Pct": out["pnl"][out["size"] < 0]})
    benchmark = panel.benchmark if benchmark_metrics is None else None
    metrics = compute_metrics(
        equity,
        benchmark=benchmark,
        trades=closing,
        exposure=pd.Series(out["positions"], index=panel.dates),
        turnover=pd.Series(out["traded"], index=panel.dates),
        initial_value=float(cash),
    )
    if benchmark_metrics is not None:
        metrics.update(benchmark_metrics)
    trades = None if rows is None else rows_frame(rows)
    return VectorResult(trades, rows, equity, json_safe_metrics(metrics), out["positions"], out["traded"])


def entry_summary(panel: Panel, params: dict) -> dict:
    """AlphaRankStrategy.entry_summary() of the same run, from the panel's arrays (no day loop):
    what no_trade_reason needs to say why a variant bought nothing."""
    p = check_params(params)
    days = np.ones(len(panel.dates), dtype=bool) if p["start"] is None else panel.daynum >= _daynum(p["start"])
    member = panel.member[days]
    used = (panel.rank if p["cross_section"] == "rank" else panel.raw)[days]
    return {
        "decision_days": int(days.sum()),
        "most_eligible": int(member.sum(axis=1).max(initial=0)),
        "best_score": float(used[member].max()) if member.any() else None,
        "entry_threshold": float(p["entry_threshold"]),
        "cross_section": p["cross_section"],
    }


def panel_benchmark_metrics(panel: Panel) -> dict:
    """The benchmark_* metrics over the panel's calendar: the same for every variant."""
    flat = pd.Series(1.0, index=panel.dates)
    return {
        k: v
        for k, v in compute_metrics(flat, benchmark=panel.benchmark, initial_value=1.0).items()
        if k.startswith("benchmark_")
    }


def run_arrays(panel: Panel, params: dict, cash: float, commission: float, slippage: float = 0.0) -> dict:
    """The compiled day loop for one variant: equity, positions, traded per day and the fills."""
    p = check_params(params)
    if not (cash > 0):
        raise ConfigError(f"vector engine: cash {cash!r} must be positive")
    if not (0 <= commission < 1):
        raise ConfigError(f"vector engine: commission {commission!r} must be a fraction in [0, 1)")
    if not (0 <= slippage < 1):
        raise ConfigError(f"vector engine: slippage {slippage!r} must be a fraction a side in [0, 1)")
    if p["max_volume_pct"] is not None and not panel.has_volume.all():
        missing = [t for t, ok in zip(panel.tickers, panel.has_volume) if not ok]
        raise DataError(
            f"vector engine param 'max_volume_pct' is {p['max_volume_pct']!r}, but {len(missing)} stock(s) have "
            f"no volume (every bar 0 or missing): {', '.join(map(repr, missing[:10]))}; give OHLCV data or "
            f"set max_volume_pct to None"
        )
    start_idx = 0
    if p["start"] is not None:
        start_idx = int(np.searchsorted(panel.daynum, _daynum(p["start"])))
    rank_mode = p["cross_section"] == "rank"
    used = panel.rank if rank_mode else panel.raw
    t_count = panel.open.shape[0]
    capacity = max(1024, 4 * t_count)  # fills rarely exceed 4 a day; if they do, the loop runs again
    while True:
        equity = np.empty(t_count)
        positions = np.empty(t_count, dtype=np.int32)
        traded = np.empty(t_count)
        fills = np.empty((capacity, 4), dtype=np.int64)  # day, stock, signed size, reason
        values = np.empty((capacity, 5))  # price, commission, score, rank, pnl
        count = day_loop(
            panel.daynum,
            panel.open,
            panel.close,
            panel.has_bar,
            panel.prev_volume,
            panel.raw,
            used,
            panel.member,
            panel.order,
            panel.n_order,
            panel.barcount,
            panel.ends_next,
            int(p["top_k"]),
            float(p["entry_threshold"]),
            float(p["exit_threshold"]),
            float(p["position_pct"]),
            int(p["review_days"]),
            p["review_in"] == "bars",
            float(p["min_cash"]),
            rank_mode,
            bool(p["close_at_end"]),
            start_idx,
            float(cash),
            float(commission),
            float(slippage),
            float(p["max_volume_pct"] or 0.0),
            equity,
            positions,
            traded,
            fills,
            values,
        )
        if count <= capacity:
            break
        capacity = count  # the loop counted past the end: run again with room for every fill
    return {
        "equity": equity,
        "positions": positions,
        "traded": traded,
        "day": fills[:count, 0],
        "stock": fills[:count, 1],
        "size": fills[:count, 2],
        "reason": fills[:count, 3],
        "price": values[:count, 0],
        "commission": values[:count, 1],
        "score": values[:count, 2],
        "rank": values[:count, 3],
        "pnl": values[:count, 4],
    }


def trade_rows(panel: Panel, out: dict) -> list[dict]:
    """The fills as trades.csv rows, PnL_Pct and Days by TradeLog's own fill_row."""
    rows, books = [], {}
    for day, stock, size, reason, price, comm, score, rank in zip(
        out["day"], out["stock"], out["size"], out["reason"], out["price"], out["commission"], out["score"], out["rank"]
    ):
        when = panel.dates[day].date()
        ticker = panel.tickers[stock]
        action = "BUY" if size > 0 else "SELL"
        shares = int(abs(size))
        outcome, books[ticker] = fill_row(books.get(ticker, _Book()), when, action, float(price), shares)
        row = {
            "Date": when.isoformat(),
            "Action": action,
            "Ticker": ticker,
            "Price": float(price),
            "Shares": shares,
            "Score": float(score),
            "Amount": float(price) * shares,
            "Rank": int(rank) if size > 0 else None,
            "Reason": REASONS[reason],
            "Commission": float(comm),
            **outcome,
        }
        rows.append({c: row[c] for c in COLUMNS})
    return rows


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """TradeLog.to_frame of the rows."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("Price", "Amount", "PnL_Pct", "Days", "Commission"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
