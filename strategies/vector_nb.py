"""The vector engine's compiled kernels: numpy arrays and scalars in, numbers out.

As vectorbt's ``portfolio/nb.py``: nothing here knows pandas, tickers or params dicts;
``strategies/vector.py`` prepares the arrays, calls ``day_loop`` and builds the result. Every
function is ``njit(cache=True)`` (compiled once per machine) and mirrors a step of
``strategies/alpha_rank.AlphaRankStrategy`` with the broker's float operations in their order, so
that tests/test_vector.py can compare the two engines to the last bit.

One run's state lives in per-stock arrays (index j = the stock's column) that the helpers update in
place, and a few counters that they return:

- ``size`` (int64): shares held; ``entry_price``: the broker's position price (the buy's fill);
  ``entry_avg``: TradeLog's average entry price (for PnL_Pct); ``review_day`` / ``review_bar``:
  the review clock; ``in_book``; ``flagged`` / ``flag_reason`` / ``flag_score``: a planned sale;
  ``sold_now``: fully sold at this open; ``traded_ever``: the stock has a broker position.
- lists as an array plus a count: ``book`` (holdings in buying order, the strategy's ``_book``),
  ``sells`` (flagged holdings in flagging order, ``_to_sell``), ``buys`` / ``buy_score`` (tonight's
  plan, best first, ``_to_buy``), ``ever`` (stocks in the order first traded, ``broker.positions``).
- the fills: ``fills`` int64 [capacity, 4] (day, stock, signed size, reason) and ``values``
  float64 [capacity, 5] (price, commission, score, rank, pnl); ``count`` may run past capacity
  (then nothing more is written and the caller runs again with room).

Costs: ``c`` the commission fraction a side; ``slip`` the slippage fraction a side (a buy fills at
open * (1 + slip), a sell at open * (1 - slip), never capped at the bar's high/low: Backtrader's
``slip_out=True``); ``vol_pct`` > 0 caps each order at int(vol_pct * the stock's volume on its
previous bar) shares (0 = no cap); the unsold rest of a sale is sold at the next bar.

The helpers allocate nothing, so they are compiled with ``_nrt=False`` (numba's flag that turns
its reference counting off): otherwise every call increfs and decrefs each of its 20-odd array
arguments, which made the split loop about 20 % slower than the single function it replaced
(bench.bench_vector); with it the two run equally fast. ``day_loop`` allocates the state, so it
keeps the runtime. No call passes more than 30 arguments (Python then packs them as *args).
"""

from __future__ import annotations

import numpy as np
from numba import njit

REASON_ENTRY, REASON_REVIEW, REASON_END = 0, 1, 2


@njit(cache=True, _nrt=False)
def affordable(cash, price, c):
    """strategies.alpha_rank.affordable_shares with the broker's percentage commission `c`."""
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


@njit(cache=True, _nrt=False)
def volume_cap(vol_pct, volume):
    """strategies.alpha_rank.volume_cap: the most shares one order may trade."""
    if not (volume > 0):
        return 0
    return int(vol_pct * volume)


@njit(cache=True, _nrt=False)
def score_of(t, j, raw, used, member, rank_mode):
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


@njit(cache=True, _nrt=False)
def record_fill(fills, values, count, t, j, signed, reason, price, comm, score, rank, pnl):
    """Write one fill at row `count` (if there is room); return the next row."""
    if count < fills.shape[0]:
        fills[count, 0] = t
        fills[count, 1] = j
        fills[count, 2] = signed
        fills[count, 3] = reason
        values[count, 0] = price
        values[count, 1] = comm
        values[count, 2] = score
        values[count, 3] = rank
        values[count, 4] = pnl
    return count + 1


@njit(cache=True, _nrt=False)
def value_at_open(t, cash, open_, close, has_bar, size, ever, n_ever):
    """The book valued at the open of t (a stock without a bar at its last close), summed in the
    order stocks were first traded, as AlphaRankStrategy.next_open sums broker.positions."""
    value = cash
    for b in range(n_ever):
        j = ever[b]
        if size[j] != 0:
            value += size[j] * (open_[t, j] if has_bar[t, j] else close[t, j])
    return value


@njit(cache=True, _nrt=False)
def fill_sells(
    t,
    cash,
    c,
    slip,
    vol_pct,
    open_,
    has_bar,
    prev_volume,
    size,
    entry_price,
    entry_avg,
    flagged,
    flag_reason,
    flag_score,
    sold_now,
    sells,
    n_sells,
    fills,
    values,
    count,
):
    """The planned sales at the open of t, in flagging order. A stock without a bar, or one whose
    volume cap leaves part unsold, stays in `sells` (it keeps its slot). Returns (cash, the
    strategy's cash estimate, traded value, sales left, full sales, count)."""
    est = cash
    traded = 0.0
    keep = 0
    n_sold = 0
    for s in range(n_sells):
        j = sells[s]
        q = size[j]
        if has_bar[t, j] and vol_pct > 0:
            q = min(q, volume_cap(vol_pct, prev_volume[t, j]))
        if not has_bar[t, j] or q < 1:
            sells[keep] = j  # sold at its next bar
            keep += 1
            continue
        price = open_[t, j] * (1.0 - slip)
        comm = (q * c) * price
        est += q * price - comm
        ep = entry_price[j]
        cash += q * ep + q * (price - ep) * 1.0  # the broker: closed value + pnl, then commission
        cash -= comm
        logged = (q * price) / q  # order.executed.price: Backtrader's running average of one fill
        traded += q * logged
        pnl = (logged / entry_avg[j] - 1.0) * 100.0  # TradeLog's PnL_Pct
        count = record_fill(fills, values, count, t, j, -q, flag_reason[j], logged, comm, flag_score[j], np.nan, pnl)
        size[j] -= q
        if size[j] > 0:
            sells[keep] = j  # the rest is sold at the next bar
            keep += 1
            continue
        flagged[j] = False
        sold_now[j] = True
        n_sold += 1
    return cash, est, traded, keep, n_sold, count


@njit(cache=True, _nrt=False)
def fill_buys(
    t,
    cash,
    est,
    traded,
    target,
    occupied,
    top_k,
    min_cash,
    c,
    slip,
    vol_pct,
    open_,
    has_bar,
    prev_volume,
    buys,
    buy_score,
    n_buys,
    bought,
    fills,
    values,
    count,
):
    """Tonight's plan at the open of t, best first, into the free slots: `target` (position_pct of
    the book at the open) in whole shares, capped by the cash estimate (AlphaRankStrategy's
    buy_shares) and by the volume cap. Writes the shares of each plan entry into `bought` (0: not
    bought) for ``open_positions``. `traded`: the value traded so far today, to which the buys add.
    Returns (cash, traded, count)."""
    for b in range(n_buys):
        bought[b] = 0
        if occupied >= top_k:
            continue
        j = buys[b]
        if not has_bar[t, j]:
            continue
        price = open_[t, j] * (1.0 + slip)
        if not (price > 0 and np.isfinite(price)):
            continue
        q = int(target // price)
        if q * price + (q * c) * price > est:
            if est <= min_cash:
                continue
            q = affordable(est, price, c)
        if vol_pct > 0:
            q = min(q, volume_cap(vol_pct, prev_volume[t, j]))
        if q < 1:
            continue
        comm = (q * c) * price
        est -= q * price + comm
        cash -= q * price
        cash -= comm
        logged = (q * price) / q  # order.executed.price
        traded += q * logged
        occupied += 1
        bought[b] = q
        count = record_fill(fills, values, count, t, j, q, REASON_ENTRY, logged, comm, buy_score[b], b + 1, np.nan)
    return cash, traded, count


@njit(cache=True, _nrt=False)
def open_positions(
    t,
    slip,
    daynum,
    open_,
    barcount,
    buys,
    bought,
    n_buys,
    size,
    entry_price,
    entry_avg,
    review_day,
    review_bar,
    in_book,
    traded_ever,
    ever,
    n_ever,
    book,
    n_book,
):
    """The buys ``fill_buys`` made at the open of t join the book (in plan order) with the
    broker's position price and TradeLog's average entry; their review clocks start. Returns
    (n_ever, n_book)."""
    for b in range(n_buys):
        q = bought[b]
        if q < 1:
            continue
        j = buys[b]
        price = open_[t, j] * (1.0 + slip)
        size[j] = q
        entry_price[j] = price
        entry_avg[j] = (0.0 + q * ((q * price) / q)) / q  # TradeLog's average of one fill
        review_day[j] = daynum[t]
        review_bar[j] = barcount[t, j]
        in_book[j] = True
        if not traded_ever[j]:
            traded_ever[j] = True
            ever[n_ever] = j
            n_ever += 1
        book[n_book] = j
        n_book += 1
    return n_ever, n_book


@njit(cache=True, _nrt=False)
def drop_sold(book, n_book, sold_now, in_book):
    """Fully sold holdings leave the book; the others keep their order. Returns the new count."""
    keep = 0
    for b in range(n_book):
        j = book[b]
        if sold_now[j]:
            sold_now[j] = False
            in_book[j] = False
        else:
            book[keep] = j
            keep += 1
    return keep


@njit(cache=True, _nrt=False)
def value_at_close(t, cash, close, size, entry_price, ever, n_ever):
    """The broker's value at the close of t, with LeanBroker._get_value's operations in its order."""
    pos_value = 0.0
    for b in range(n_ever):
        j = ever[b]
        if size[j] == 0:
            continue
        dvalue = size[j] * close[t, j]
        unrealized = size[j] * (close[t, j] - entry_price[j]) * 1.0
        pos_value += (dvalue - unrealized) / 1.0
        pos_value += unrealized
    return cash + pos_value


@njit(cache=True, _nrt=False)
def decide_sells(
    t,
    exit_,
    review_days,
    review_bars,
    close_at_end,
    rank_mode,
    daynum,
    raw,
    used,
    member,
    barcount,
    ends_next,
    book,
    n_book,
    review_day,
    review_bar,
    flagged,
    flag_reason,
    flag_score,
    sells,
    n_sells,
):
    """AlphaRankStrategy._decide_exits after the close of t: flag the holdings whose review finds
    a score below `exit_`, and every holding when the backtest ends at the next bar. Returns the
    new count of `sells`."""
    for b in range(n_book):
        j = book[b]
        if flagged[j]:
            continue
        ready = not np.isnan(raw[t, j])
        if close_at_end and ends_next[t, j]:
            flagged[j] = True
            flag_reason[j] = REASON_END
            flag_score[j] = score_of(t, j, raw, used, member, rank_mode) if ready else np.nan
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
        score = score_of(t, j, raw, used, member, rank_mode)
        if score < exit_:
            flagged[j] = True
            flag_reason[j] = REASON_REVIEW
            flag_score[j] = score
            sells[n_sells] = j
            n_sells += 1
    return n_sells


@njit(cache=True, _nrt=False)
def decide_buys(t, free, entry, close_at_end, used, order, n_order, ends_next, in_book, buys, buy_score):
    """AlphaRankStrategy._decide_entries after the close of t: the day's members above `entry`,
    best first, not held, up to `free` of them. Returns how many."""
    n_buys = 0
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
    return n_buys


@njit(cache=True)
def day_loop(
    daynum,
    open_,
    close,
    has_bar,
    prev_volume,
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
    slip,
    vol_pct,
    equity,
    positions,
    traded,
    fills,
    values,
):
    """AlphaRankStrategy's next_open (size and fill at the open) and next (decide at the close) for
    every bar, in the strategy's order. Writes equity, positions and traded per day and the fills;
    returns the count of fills (more than fills' rows: run again with room)."""
    n = open_.shape[1]
    size = np.zeros(n, dtype=np.int64)
    entry_price = np.zeros(n)
    entry_avg = np.zeros(n)
    review_day = np.zeros(n, dtype=np.int64)
    review_bar = np.zeros(n, dtype=np.int64)
    in_book = np.zeros(n, dtype=np.bool_)
    flagged = np.zeros(n, dtype=np.bool_)
    flag_reason = np.zeros(n, dtype=np.int64)
    flag_score = np.zeros(n)
    sold_now = np.zeros(n, dtype=np.bool_)
    traded_ever = np.zeros(n, dtype=np.bool_)
    book = np.empty(n, dtype=np.int64)
    sells = np.empty(n, dtype=np.int64)
    buys = np.empty(n, dtype=np.int64)
    buy_score = np.empty(n)
    bought = np.empty(n, dtype=np.int64)
    ever = np.empty(n, dtype=np.int64)
    n_book = n_sells = n_buys = n_ever = count = 0
    for t in range(open_.shape[0]):
        traded_today = 0.0
        if n_sells > 0 or n_buys > 0:  # the open of t: the plan of t-1's close
            value = value_at_open(t, cash, open_, close, has_bar, size, ever, n_ever)
            cash, est, traded_today, n_sells, n_sold, count = fill_sells(
                t, cash, c, slip, vol_pct, open_, has_bar, prev_volume, size, entry_price, entry_avg, flagged,
                flag_reason, flag_score, sold_now, sells, n_sells, fills, values, count,
            )  # fmt: skip
            cash, traded_today, count = fill_buys(
                t, cash, est, traded_today, pct * value, n_book - n_sold, top_k, min_cash, c, slip, vol_pct, open_,
                has_bar, prev_volume, buys, buy_score, n_buys, bought, fills, values, count,
            )  # fmt: skip
            n_ever, n_book = open_positions(
                t, slip, daynum, open_, barcount, buys, bought, n_buys, size, entry_price, entry_avg, review_day,
                review_bar, in_book, traded_ever, ever, n_ever, book, n_book,
            )  # fmt: skip
            if n_sold > 0:
                n_book = drop_sold(book, n_book, sold_now, in_book)
        n_buys = 0
        equity[t] = value_at_close(t, cash, close, size, entry_price, ever, n_ever)
        positions[t] = n_book
        traded[t] = traded_today
        if t < start_idx:
            continue
        n_sells = decide_sells(
            t, exit_, review_days, review_bars, close_at_end, rank_mode, daynum, raw, used, member, barcount,
            ends_next, book, n_book, review_day, review_bar, flagged, flag_reason, flag_score, sells, n_sells,
        )  # fmt: skip
        free = top_k - (n_book - n_sells)
        if free > 0:
            n_buys = decide_buys(
                t, free, entry, close_at_end, used, order, n_order, ends_next, in_book, buys, buy_score
            )
    return count
