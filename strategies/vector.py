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
``simulate_prepared`` runs one variant on them in a numba-compiled loop (``cache=True``: compiled
once per machine). Nothing here imports models/: scores are a plain frame, as for ScoreAlpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

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
        raw,
        rank,
        member,
        order,
        n_order,
        barcount,
        ends_next,
        None if benchmark is None else pd.Series(benchmark).loc[:hi],
    )


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
) -> VectorResult:
    """One variant: ``prepare`` then ``simulate_prepared`` (see both). `params` are
    AlphaRankStrategy's (its ``start`` param is the warm-up: no decision before that date)."""
    return simulate_prepared(prepare(prices, scores, start, end, universe, benchmark), params, cash, commission)


def simulate_prepared(
    panel: Panel,
    params: dict,
    cash: float = 100_000.0,
    commission: float = 0.0,
    trade_log: bool = True,
    benchmark_metrics: dict | None = None,
) -> VectorResult:
    """One variant on shared arrays. trade_log=False skips the trades frame (metrics still count
    the trades): what a sweep of thousands of variants wants. `benchmark_metrics`: the benchmark_*
    metrics of the panel's calendar when already computed (``panel_benchmark_metrics``); they do
    not depend on the variant."""
    out = run_arrays(panel, params, cash, commission)
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


def panel_benchmark_metrics(panel: Panel) -> dict:
    """The benchmark_* metrics over the panel's calendar: the same for every variant."""
    flat = pd.Series(1.0, index=panel.dates)
    return {
        k: v
        for k, v in compute_metrics(flat, benchmark=panel.benchmark, initial_value=1.0).items()
        if k.startswith("benchmark_")
    }


def run_arrays(panel: Panel, params: dict, cash: float, commission: float) -> dict:
    """The compiled day loop for one variant: equity, positions, traded per day and the fills."""
    p = check_params(params)
    if not (cash > 0):
        raise ConfigError(f"vector engine: cash {cash!r} must be positive")
    if not (0 <= commission < 1):
        raise ConfigError(f"vector engine: commission {commission!r} must be a fraction in [0, 1)")
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
        count = _day_loop(
            panel.daynum,
            panel.open,
            panel.close,
            panel.has_bar,
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


# ------------------------------------------------------------------------------ the compiled loop
@njit(cache=True)
def _affordable(cash, price, c):
    # strategies.alpha_rank.affordable_shares with the broker's percentage commission
    if not (cash > 0 and price > 0):
        return 0
    budget = cash * (1.0 - 1e-9)
    per_share = price + 1.0 * c * price
    shares = int(budget // per_share) if per_share > 0 else 0
    while shares > 0 and shares * price + (shares * c) * price > budget:
        shares -= 1
    while (shares + 1) * price + ((shares + 1) * c) * price <= budget:
        shares += 1
    return shares


@njit(cache=True)
def _score_of(t, j, raw, used, member, rank_mode):
    """The cross-sectioned score of a ready stock; a non-member is ranked as one more member."""
    if member[t, j] or not rank_mode:
        return used[t, j]
    value = raw[t, j]
    m = 0
    less = 0
    equal = 0
    for k in range(raw.shape[1]):
        if member[t, k]:
            m += 1
            if raw[t, k] < value:
                less += 1
            elif raw[t, k] == value:
                equal += 1
    if m == 0:
        return 0.0
    mean_rank = (2 * less + equal + 2) / 2.0
    return 2.0 * (mean_rank - 1.0) / float(m) - 1.0


@njit(cache=True)
def _day_loop(
    daynum,
    open_,
    close,
    has_bar,
    raw,
    used,
    member,
    order,
    n_order,
    barcount,
    ends_next,
    top_k,
    entry,
    exit_,
    pct,
    review_days,
    review_bars,
    min_cash,
    rank_mode,
    close_at_end,
    start_idx,
    cash,
    c,
    equity,
    positions,
    traded,
    fills,
    values,
):
    """The compiled day loop: AlphaRankStrategy's next (decide at the close) and next_open (size and
    fill at the open) for every bar, in the strategy's order of operations.

    Long because: it is one numba-compiled loop whose steps mirror the strategy's methods in order
    (exits, entries, sells, buys, valuation); split into jitted calls it is harder to hold side by
    side with strategies/alpha_rank.py, which is what the property test compares it with."""
    n = open_.shape[1]
    t_count = open_.shape[0]
    capacity = fills.shape[0]
    size = np.zeros(n, dtype=np.int64)
    entry_price = np.zeros(n)
    entry_logged = np.zeros(n)
    review_day = np.zeros(n, dtype=np.int64)
    review_bar = np.zeros(n, dtype=np.int64)
    in_book = np.zeros(n, dtype=np.bool_)
    flagged = np.zeros(n, dtype=np.bool_)
    flag_reason = np.zeros(n, dtype=np.int64)
    flag_score = np.zeros(n)
    book = np.empty(n, dtype=np.int64)  # holdings in the order they were bought (the strategy's _book)
    n_book = 0
    sells = np.empty(n, dtype=np.int64)  # flagged holdings in the order flagged (the strategy's _to_sell)
    n_sells = 0
    buys = np.empty(n, dtype=np.int64)  # tonight's plan, best first (the strategy's _to_buy)
    buy_score = np.empty(n)
    n_buys = 0
    sold_now = np.zeros(n, dtype=np.bool_)
    traded_ever = np.zeros(n, dtype=np.bool_)
    ever = np.empty(n, dtype=np.int64)  # stocks in the order first traded (the broker's positions dict)
    n_ever = 0
    count = 0
    for t in range(t_count):
        traded_today = 0.0
        # ---- the open of t: the plan of t-1's close (AlphaRankStrategy.next_open)
        if n_sells > 0 or n_buys > 0:
            value = cash
            for b in range(n_ever):  # broker.positions' order: the order stocks were first traded
                j = ever[b]
                if size[j] != 0:
                    value += size[j] * (open_[t, j] if has_bar[t, j] else close[t, j])
            est = cash
            keep = 0
            n_sold = 0
            for s in range(n_sells):
                j = sells[s]
                if not has_bar[t, j]:
                    sells[keep] = j  # no bar today: sold at its next open, keeps its slot
                    keep += 1
                    continue
                flagged[j] = False
                q = size[j]
                price = open_[t, j]
                comm = (q * c) * price
                est += q * price - comm
                ep = entry_price[j]
                cash += q * ep + q * (price - ep) * 1.0  # the broker: closed value + pnl, then commission
                cash -= comm
                logged = (q * price) / q  # order.executed.price: Backtrader's running average of one fill
                traded_today += q * logged
                if count < capacity:
                    fills[count, 0] = t
                    fills[count, 1] = j
                    fills[count, 2] = -q
                    fills[count, 3] = flag_reason[j]
                    values[count, 0] = logged
                    values[count, 1] = comm
                    values[count, 2] = flag_score[j]
                    values[count, 3] = np.nan
                    values[count, 4] = (logged / ((0.0 + q * entry_logged[j]) / q) - 1.0) * 100.0  # TradeLog's PnL_Pct
                count += 1
                size[j] = 0
                sold_now[j] = True
                n_sold += 1
            n_sells = keep
            occupied = n_book - n_sold
            target = pct * value
            for b in range(n_buys):
                if occupied >= top_k:
                    break
                j = buys[b]
                if not has_bar[t, j]:
                    continue
                price = open_[t, j]
                if not (price > 0 and np.isfinite(price)):
                    continue
                q = int(target // price)
                if q * price + (q * c) * price > est:
                    if est <= min_cash:
                        continue
                    q = _affordable(est, price, c)
                if q < 1:
                    continue
                comm = (q * c) * price
                est -= q * price + comm
                cash -= q * price
                cash -= comm
                logged = (q * price) / q
                traded_today += q * logged
                occupied += 1
                if count < capacity:
                    fills[count, 0] = t
                    fills[count, 1] = j
                    fills[count, 2] = q
                    fills[count, 3] = 0
                    values[count, 0] = logged
                    values[count, 1] = comm
                    values[count, 2] = buy_score[b]
                    values[count, 3] = b + 1
                    values[count, 4] = np.nan
                count += 1
                size[j] = q
                entry_price[j] = price
                entry_logged[j] = logged
                review_day[j] = daynum[t]
                review_bar[j] = barcount[t, j]
                in_book[j] = True
                if not traded_ever[j]:
                    traded_ever[j] = True
                    ever[n_ever] = j
                    n_ever += 1
                book[n_book] = j
                n_book += 1
            if n_sold > 0:  # sold holdings leave the book (its order is kept)
                keep = 0
                for b in range(n_book):
                    j = book[b]
                    if sold_now[j]:
                        sold_now[j] = False
                        in_book[j] = False
                    else:
                        book[keep] = j
                        keep += 1
                n_book = keep
        n_buys = 0
        # ---- the close of t: the broker's value (LeanBroker._get_value's operations)
        pos_value = 0.0
        for b in range(n_ever):
            j = ever[b]
            if size[j] == 0:
                continue
            dvalue = size[j] * close[t, j]
            unrealized = size[j] * (close[t, j] - entry_price[j]) * 1.0
            pos_value += (dvalue - unrealized) / 1.0
            pos_value += unrealized
        equity[t] = cash + pos_value
        positions[t] = n_book
        traded[t] = traded_today
        if t < start_idx:
            continue
        # ---- exits (AlphaRankStrategy._decide_exits)
        for b in range(n_book):
            j = book[b]
            if flagged[j]:
                continue
            ready = not np.isnan(raw[t, j])
            if close_at_end and ends_next[t, j]:
                flagged[j] = True
                flag_reason[j] = 2
                flag_score[j] = _score_of(t, j, raw, used, member, rank_mode) if ready else np.nan
                sells[n_sells] = j
                n_sells += 1
                continue
            if not ready:
                continue
            if review_bars:
                due = barcount[t, j] - review_bar[j] >= review_days
            else:
                due = daynum[t] - review_day[j] >= review_days
            if not due:
                continue
            review_day[j] = daynum[t]
            review_bar[j] = barcount[t, j]
            score = _score_of(t, j, raw, used, member, rank_mode)
            if score < exit_:
                flagged[j] = True
                flag_reason[j] = 1
                flag_score[j] = score
                sells[n_sells] = j
                n_sells += 1
        # ---- entries (AlphaRankStrategy._decide_entries): the day's members, best first
        free = top_k - (n_book - n_sells)
        if free <= 0:
            continue
        for k in range(n_order[t]):
            j = order[t, k]
            score = used[t, j]
            if not score > entry:
                break
            if in_book[j]:
                continue
            if close_at_end and ends_next[t, j]:
                continue
            buys[n_buys] = j
            buy_score[n_buys] = score
            n_buys += 1
            if n_buys == free:
                break
    return count
