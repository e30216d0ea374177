"""AlphaRankStrategy: a long-only top-k strategy driven by any alpha indicator with a `score` line.

Timeline of one day (no look-ahead):
  - after the close of day t (``next``): read each stock's score of bar t, cross-section them,
    decide which holdings to sell (weekly review) and which stocks to buy (ranked, top_k slots);
  - at the open of day t+1 (``next_open``, Backtrader's cheat-on-open hook): size the orders at
    the known open price of t+1 with the book valued at that open, submit sells before buys, and
    cap every buy (commission included) by the cash then, so that no order is ever rejected for
    lack of cash. The broker fills them at that same open.

The strategy turns cheat-on-open on for its Cerebro (it is the same as bt.Cerebro(cheat_on_open=True));
without it a buy sized at the close of t is rejected (Margin) whenever the stock gaps up and cash
is short. Nothing here imports models/: the alpha is a param.
"""

from __future__ import annotations

import datetime as _dt
import math

import backtrader as bt
import numpy as np
import pandas as pd
from backtrader.lineiterator import LineIterator

from core.dates import EPOCH_DAYNUM
from core.errors import ConfigError, DataError
from core.lean import follows_clock, moving_indicators

REVIEW_UNITS = ("calendar", "bars")
CROSS_SECTIONS = ("rank", "none")
ONCEPOST_VERSION = "1.9.78.123"  # the Backtrader whose Strategy._oncepost AlphaRankStrategy mirrors


def rank_to_unit(scores) -> np.ndarray:
    """Percentile rank of each score mapped to [-1, 1]: 2*(rank-1)/(n-1) - 1, ties averaged.

    The lowest score maps to -1, the highest to +1, the median to 0; a single score maps to 0.
    """
    values = np.asarray(scores, dtype="float64")
    n = len(values)
    if n == 0:
        return values
    if n == 1:
        return np.zeros(1)
    ranks = average_ranks(values)
    return 2.0 * (ranks - 1.0) / (n - 1.0) - 1.0


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged, as scipy.stats.rankdata(method="average") (10x faster on
    the few hundred values of one day, which matters once per bar)."""
    n = len(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    new_group[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], n)
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(n)
    ranks[order] = mean_rank[np.cumsum(new_group) - 1]
    return ranks


def rank_among(members: np.ndarray, value: float) -> float:
    """``rank_to_unit(np.append(members, value))[-1]`` without sorting: the rank of one extra score
    among the day's members, as if it were one more of them (ties averaged, the same float ops)."""
    m = len(members)
    if m == 0:
        return 0.0
    less = int(np.count_nonzero(members < value))
    equal = int(np.count_nonzero(members == value))
    mean_rank = (2 * less + equal + 2) / 2.0  # (start + end + 1) / 2 of its tie group, as average_ranks
    return 2.0 * (mean_rank - 1.0) / float(m) - 1.0


def cross_section(scores: dict, method: str) -> dict:
    """One day's scores (ticker -> score) as the strategy uses them: ranked ("rank") or as given."""
    if method == "none" or not scores:
        return dict(scores)
    names = list(scores)
    ranked = rank_to_unit([scores[name] for name in names])
    return dict(zip(names, ranked.tolist()))


def affordable_shares(cash: float, price: float, commission) -> int:
    """Largest whole number of shares whose cost plus commission fits in `cash`.

    `commission(size, price)` is the broker's commission for buying `size` shares at `price`.
    A relative margin of 1e-9 keeps float rounding in the broker's own cash check on our side.
    """
    if not (cash > 0 and price > 0):
        return 0
    budget = cash * (1.0 - 1e-9)
    per_share = price + commission(1, price)
    shares = int(budget // per_share) if per_share > 0 else 0
    # commission schemes that are not linear in size (fixed fee per order): step down until it fits
    while shares > 0 and shares * price + commission(shares, price) > budget:
        shares -= 1
    # ... or up, when the per-share estimate was pessimistic (a fixed fee counted once per share)
    while (shares + 1) * price + commission(shares + 1, price) <= budget:
        shares += 1
    return shares


def volume_cap(max_volume_pct: float, volume: float) -> int:
    """The most shares one order may trade: int(max_volume_pct * volume), volume being the stock's
    last bar before the fill (known at the close the decision was made); 0 without volume."""
    if not (volume > 0):
        return 0
    return int(max_volume_pct * volume)


def buy_shares(target: float, price: float, cash: float, min_cash: float, commission) -> int:
    """Whole shares of one buy: `target` (position_pct of the book) // price; when that, commission
    included, is more than the cash, what the cash affords if it is above `min_cash`, else 0."""
    shares = int(target // price)
    if shares * price + commission(shares, price) > cash:
        return 0 if cash <= min_cash else affordable_shares(cash, price, commission)
    return shares


class AlphaRankStrategy(bt.Strategy):
    """Buy the top-ranked stocks by alpha score, hold them, review them every `review_days`.

    Params:
      - ``alpha``: an indicator class taking the data, or a callable ``make(data)`` returning an
        indicator; either way the indicator must have a ``score`` line in [-1, 1] (NaN = no score)
      - ``top_k`` (5): at most this many holdings; a holding flagged for sale keeps its slot until its
        sale fills (a stock with no bar at the open is sold at its next bar, and no buy takes its slot)
      - ``entry_threshold`` (0.2): buy only stocks whose score is above it
      - ``exit_threshold`` (0.0): at a review, sell a holding whose score is below it
      - ``position_pct`` (0.20): each buy is this fraction of total portfolio value at the open
      - ``review_days`` (7) and ``review_in`` ("calendar" or "bars"): a holding is reviewed when at
        least this many calendar days (or this stock's trading bars) have passed since its entry
        fill or its last review
      - ``min_cash`` (1000): when cash is short for a full buy, the rest of the cash is used if it is
        above this, else the buy is skipped
      - ``cross_section`` ("rank" or "none"): "rank" maps each day's scores of the ready stocks to
        their percentile rank in [-1, 1] before the thresholds apply; "none" uses them as given
      - ``benchmark`` (None): name of a data that is a benchmark: never traded, no alpha made for it
      - ``universe`` (None): an object with ``is_member(ticker, date) -> bool`` (date a pd.Timestamp);
        a stock is bought only on days it is a member, and with ``cross_section="rank"`` the day's ranks
        are computed among that day's members only; a holding that is not a member is still reviewed,
        on its rank as if it were one more member that day
      - ``start`` (None): no order is decided before this date (warm-up); first fills the bar after
      - ``max_volume_pct`` (None): cap every order at this fraction of the stock's volume on its
        last bar before the fill (the decision day's, known at the close), in whole shares; what a
        sale leaves unsold is sold at the next bar (the holding keeps its slot). The datas need
        volume: a preloaded data without any is refused
      - ``close_at_end`` (True): sell each holding at the open of the backtest's last bar, reason
        "end", so every trade is closed in the trade log; a stock is not bought on the bar before
        the last. Only the end of the whole backtest (a date the user chose) counts: a stock whose
        data stops earlier (a delisting) is not known in advance and stays held at its last price.
        Needs preloaded datas (the default)
      - ``verbose`` (False): print every decision

    Every order carries ``order.info``: score (the cross-sectioned score used), rank (1-based among
    that day's buy candidates, None for sells), reason ("entry", "review_exit" or "end").
    ``self.alphas`` maps ticker -> indicator, ``self.cross_scores`` holds the last day's
    cross-sectioned scores of the ready stocks (``self.raw_scores`` the scores before it), and
    ``self.rejected_orders`` counts orders the broker refused (should stay 0).
    """

    params = (
        ("alpha", None),
        ("top_k", 5),
        ("entry_threshold", 0.2),
        ("exit_threshold", 0.0),
        ("position_pct", 0.20),
        ("review_days", 7),
        ("review_in", "calendar"),
        ("min_cash", 1000.0),
        ("cross_section", "rank"),
        ("benchmark", None),
        ("universe", None),
        ("start", None),
        ("close_at_end", True),
        ("max_volume_pct", None),
        ("verbose", False),
    )

    # ------------------------------------------------------------------ set-up
    def __init__(self):
        self._validate_params()
        names = [d._name for d in self.datas]
        if self.p.benchmark is not None and self.p.benchmark not in names:
            raise ConfigError(
                f"AlphaRankStrategy param 'benchmark': no data named {self.p.benchmark!r} "
                f"(data names: {', '.join(map(repr, names))}); add it with "
                f"cerebro.adddata(feed, name={self.p.benchmark!r}) or set benchmark=None"
            )
        self.stocks = [d for d in self.datas if self.p.benchmark is None or d._name != self.p.benchmark]
        if not self.stocks:
            raise ConfigError(
                "AlphaRankStrategy: no tradable data (only the benchmark was added); "
                "add stock feeds with cerebro.adddata(feed, name=ticker)"
            )
        seen = set()
        for d in self.stocks:
            if not d._name:
                raise ConfigError(
                    "AlphaRankStrategy: every data needs a name (the ticker); add feeds "
                    "with cerebro.adddata(feed, name='TICKER')"
                )
            if d._name in seen:
                raise ConfigError(f"AlphaRankStrategy: two datas are named {d._name!r}; tickers must be unique")
            seen.add(d._name)

        self.alphas = {}
        for d in self.stocks:
            indicator = self.p.alpha(d)
            if not hasattr(getattr(indicator, "lines", None), "score"):
                raise ConfigError(
                    f"AlphaRankStrategy param 'alpha': what it made for {d._name!r} "
                    f"({type(indicator).__name__}) has no 'score' line; the alpha must be "
                    f"an indicator with lines = ('score',)"
                )
            self.alphas[d._name] = indicator
        self._columns = {d: i for i, d in enumerate(self.stocks)}  # data -> its column in the day's arrays
        # (data, its datetime line, its alpha's score line): the daily loop reads the lines directly
        self._watch = [(d, d.lines.datetime, self.alphas[d._name].lines.score) for d in self.stocks]
        self._grid = None  # built at the first bar: see _score_grid
        self._grid_row = self._member_grid = None
        self._open_days = None  # the day of each step's open, when known in advance: see _open_day
        # today's ready stocks as arrays: their columns in self.stocks, raw and cross-sectioned scores
        self._day_columns, self._day_raw, self._day_used = np.empty(0, np.int64), np.empty(0), np.empty(0)

        self._start_day = None if self.p.start is None else daynum_of(self.p.start)
        self.rejected_orders = 0
        # holdings this strategy opened, in buying order: data -> {"entry": day}; their review clocks
        # (day and len(data) of the entry fill or the last review) by column, as arrays
        self._book: dict = {}
        self._review_day = np.zeros(len(self.stocks), dtype=np.int64)
        self._review_bar = np.zeros(len(self.stocks), dtype=np.int64)
        self._pending: dict = {}  # data -> live order
        self._to_sell: dict = {}  # data -> (reason, score), sold at the next open with a bar
        self._to_buy: list = []  # [(data, score, rank)], decided at the close, sized at the open
        # what the entry rule saw, to say why a run bought nothing: see entry_summary()
        self._entry_days, self._most_members, self._best_entry = 0, 0, -math.inf

    def _validate_params(self):
        p = self.p
        if p.alpha is None or not callable(p.alpha):
            raise ConfigError(
                "AlphaRankStrategy param 'alpha' is required: an indicator class with a "
                "'score' line, or a callable make(data) returning one "
                "(e.g. ScoreAlpha.factory(scores))"
            )
        check_number("top_k", p.top_k, integer=True, low=1)
        check_number("entry_threshold", p.entry_threshold, low=-1.0, high=1.0)
        check_number("exit_threshold", p.exit_threshold, low=-1.0, high=1.0)
        check_number("position_pct", p.position_pct, low=0.0, high=1.0, low_open=True)
        check_number("review_days", p.review_days, integer=True, low=1)
        check_number("min_cash", p.min_cash, low=0.0)
        if p.max_volume_pct is not None:
            check_number("max_volume_pct", p.max_volume_pct, low=0.0, high=1.0, low_open=True)
        if p.review_in not in REVIEW_UNITS:
            raise ConfigError(
                f"AlphaRankStrategy param 'review_in' is {p.review_in!r}; valid values: "
                f"'calendar' (calendar days) or 'bars' (the stock's trading bars)"
            )
        if p.cross_section not in CROSS_SECTIONS:
            raise ConfigError(
                f"AlphaRankStrategy param 'cross_section' is {p.cross_section!r}; valid "
                f"values: 'rank' (percentile rank in [-1, 1]) or 'none' (scores as given)"
            )
        if p.universe is not None and not callable(getattr(p.universe, "is_member", None)):
            raise ConfigError(
                "AlphaRankStrategy param 'universe' must have a method is_member(ticker, date) -> bool, or be None"
            )
        if p.start is not None:
            daynum_of(p.start)  # raises ConfigError when it is not a date

    def start(self):
        # Orders are sized in next_open at the known open; the broker must fill them at that open.
        broker = self.broker
        if not hasattr(broker, "set_coo"):
            raise ConfigError(
                f"AlphaRankStrategy needs a broker with cheat-on-open (set_coo); "
                f"{type(broker).__name__} has none. Use Backtrader's BackBroker"
            )
        self.env.p.cheat_on_open = True
        broker.set_coo(True)
        self._check_costs(broker)
        # the backtest's last day: the end the user chose, the only end known in advance
        self._final_day = max((int(d.datetime.array[-1]) for d in self.datas if len(d.datetime.array)), default=0)

    def _check_costs(self, broker):
        """Refuse what would let an order miss this open (it would fill later at a price nobody
        sized), and a volume cap on data without volume (it would silently block every order)."""
        bp = broker.p
        slips = getattr(bp, "slip_open", False) and (getattr(bp, "slip_perc", 0) or getattr(bp, "slip_fixed", 0))
        if slips and not (getattr(bp, "slip_match", True) or getattr(bp, "slip_out", False)):
            raise ConfigError(
                "AlphaRankStrategy: the broker's slippage has slip_match=False and slip_out=False, so a "
                "slipped market order past the bar's high/low would not fill at this open; set "
                "slip_match=True or slip_out=True (feeds.broker.set_slippage sets slip_out=True)"
            )
        if self.p.max_volume_pct is None:
            return
        for d in self.stocks:
            volume = np.asarray(d.volume.array, dtype=float)
            if len(volume) and not (volume > 0).any():
                raise DataError(
                    f"AlphaRankStrategy param 'max_volume_pct' is {self.p.max_volume_pct!r}, but data "
                    f"{d._name!r} has no volume (every bar 0 or missing); feed OHLCV data or set "
                    f"max_volume_pct=None"
                )

    # ------------------------------------------------------------------ runonce bookkeeping
    if bt.__version__ == ONCEPOST_VERSION:

        def _oncepost(self, dt):
            """Backtrader 1.9.78.123's Strategy._oncepost (runonce's per-bar call), line by line,
            with its first loop over the indicators that still move on their own: an alpha whose
            lines follow its clock (core.lean) is never behind it, so the stock loop's two len()
            calls per stock per bar find nothing to do. tests/test_strategy_lean.py compares it with
            the stock method. Another Backtrader version gets the stock method.

            Long because: it mirrors the stock method statement by statement."""
            moving = self.__dict__.get("_moving")
            if moving is None:
                moving = self._moving = list(self._lineiterators[LineIterator.IndType])
            followed = False
            for indicator in moving:
                if len(indicator._clock) > len(indicator):
                    indicator.advance()
                    followed = followed or follows_clock(indicator)
            if followed:  # an alpha has just started following its clock: it leaves the loop
                self._moving = moving_indicators(moving)

            if self._oldsync:
                self.advance()
            else:
                self.forward()

            self.lines.datetime[0] = dt
            self._notify()

            minperstatus = self._minperstatus
            if minperstatus >= 0:
                minperstatus = self._runonce_minperstatus()
            if minperstatus < 0:
                self.next()
            elif minperstatus == 0:
                self.nextstart()  # only called for the 1st value
            else:
                self.prenext()

            self._next_analyzers(minperstatus, once=True)
            self._next_observers(minperstatus, once=True)

            self.clear()

    def _runonce_minperstatus(self) -> int:
        """Strategy._getminperstatus, max(minperiod - len(data)) over the datas, counting only the
        datas still short of their minimum period: datas only advance in runonce, so a data past
        it stays past it, and its term, below 0, cannot be the max while another one waits. Once
        none waits, the stock method gives the (negative) status once; it is then kept (_oncepost)."""
        waiting = self.__dict__.get("_waiting")
        if waiting is None:
            waiting = list(zip(self._minperiods, self.datas))
        terms = [(minperiod - len(d), minperiod, d) for minperiod, d in waiting]
        self._waiting = [(minperiod, d) for term, minperiod, d in terms if term >= 0]
        if not self._waiting:
            return self._getminperstatus()
        self._minperstatus = status = max(term for term, _, _ in terms)
        return status

    # ------------------------------------------------------------------ after the close of t
    def prenext(self):
        # datas start on different dates: decide every day, readiness is tested per data
        self.next()

    def next(self):
        # The day as arrays over today's ready stocks (columns into self.stocks): no per-stock
        # Python call; only the holdings and the few best candidates are visited one by one.
        today = int(self.datetime[0])
        columns, values = self._ready_today(today)
        member = self._members_today(today, columns)
        used = self._cross_section(values, member)
        self._day_columns, self._day_raw, self._day_used = columns, values, used
        self._to_buy = []
        if self._start_day is not None and today < self._start_day:
            return
        self._note_entry_day(used, member)
        self._decide_exits(today, columns, used)
        self._decide_entries(today, columns, used, member)

    def _note_entry_day(self, used: np.ndarray, member: np.ndarray) -> None:
        self._entry_days += 1
        n = int(np.count_nonzero(member))
        if n:
            self._most_members = max(self._most_members, n)
            self._best_entry = max(self._best_entry, float(used[member].max()))

    @property
    def raw_scores(self) -> dict:
        """ticker -> score of the last day's ready stocks, before the cross-section."""
        return self._scores_by_name(self._day_raw)

    @property
    def cross_scores(self) -> dict:
        """ticker -> the cross-sectioned score the thresholds applied to, on the last day."""
        return self._scores_by_name(self._day_used)

    def _scores_by_name(self, values: np.ndarray) -> dict:
        stocks = self.stocks
        return {stocks[i]._name: v for i, v in zip(self._day_columns.tolist(), values.tolist())}

    def _members_today(self, today: int, columns: np.ndarray) -> np.ndarray:
        """Which ready stocks are members of the universe today (all of them without a universe)."""
        if self.p.universe is None:
            return np.ones(len(columns), dtype=bool)
        if self._grid_row is not None and hasattr(self.p.universe, "mask"):
            # runonce and a vectorized universe (feeds.Membership): one mask for the whole run
            if self._member_grid is None:
                days = self._grid[0]
                dates = pd.to_datetime(days - EPOCH_DAYNUM, unit="D")
                self._member_grid = np.asarray(self.p.universe.mask(dates, [d._name for d in self.stocks]), dtype=bool)
            return self._member_grid[self._grid_row, columns]
        date = pd.Timestamp(bt.num2date(float(today)).date())
        is_member = self.p.universe.is_member
        return np.array([bool(is_member(self.stocks[i]._name, date)) for i in columns.tolist()], dtype=bool)

    def _cross_section(self, values: np.ndarray, member: np.ndarray) -> np.ndarray:
        """The scores the thresholds apply to. "rank": percentile ranks among today's members only;
        a ready non-member (a holding that left the universe) is ranked as one more member."""
        if self.p.cross_section != "rank":
            return values
        if member.all():
            return rank_to_unit(values)
        used = np.empty(len(values))
        used[member] = rank_to_unit(values[member])
        members = values[member]
        for i in np.flatnonzero(~member):
            used[i] = rank_among(members, values[i])
        return used

    def _ready_today(self, today: int) -> tuple[np.ndarray, np.ndarray]:
        """The columns (into self.stocks) of the stocks with a bar dated today and a finite score,
        in the datas' order, and those scores."""
        if self._grid is None:
            self._grid = self._score_grid()
            self._open_days = self._step_days() if self._grid is not False else None
        self._grid_row = None
        if self._grid is not False:  # runonce: one row lookup instead of a loop over every data
            days, grid = self._grid
            row = np.searchsorted(days, today)
            if row == len(days) or days[row] != today:
                return np.empty(0, np.int64), np.empty(0)
            values = grid[row]
            columns = np.flatnonzero(np.isfinite(values))
            self._grid_row = row
            return columns, values[columns]
        columns, values = [], []
        isfinite = math.isfinite
        for i, (_d, dt_line, score_line) in enumerate(self._watch):
            # never read a data that has not started ([0] would be the end of its series), nor one
            # whose last bar is older than today (it has ended, or has no bar today)
            if len(dt_line) and int(dt_line[0]) == today:
                score = score_line[0]
                if isfinite(score):
                    columns.append(i)
                    values.append(score)
        return np.asarray(columns, dtype=np.int64), np.asarray(values, dtype=float)

    def _step_days(self):
        """The day of every step of the run, in order, when each step is one day: Cerebro's runonce
        loop steps through the sorted union of the datas' datetimes, so when no two of them share a
        day (and no data repeats one), step s (len(self) at its open) is day s of that union.
        None otherwise (next_open then asks every data)."""
        stamps = []
        for d in self.datas:
            line = np.asarray(d.lines.datetime.array, dtype=np.float64)
            if len(line) != d.buflen() or (len(line) > 1 and not np.all(np.diff(line) > 0)):
                return None
            stamps.append(line)
        union = np.unique(np.concatenate(stamps)) if stamps else np.empty(0)
        days = np.unique(np.floor(union).astype(np.int64))
        return days if len(days) == len(union) else None

    def _open_day(self) -> int:
        """Today's day number at the open: the newest bar's day among the datas."""
        days, step = self._open_days, len(self)
        if days is not None and step < len(days):
            return int(days[step])
        return max(int(d.datetime[0]) for d in self.datas if len(d))

    def _score_grid(self):
        """(sorted day numbers, [days, stocks] scores) when every alpha is already computed for
        every bar (runonce with preloaded datas), else False (the per-data loop is used).

        Only today's row is ever read; it holds exactly what the loop would read: the score of each
        stock whose bar is dated today, NaN for stocks with no bar today."""
        if not getattr(self.env, "_dopreload", True):
            return False  # live feeds: the buffers hold only the bars delivered so far
        columns = []
        for d, dt_line, score_line in self._watch:
            n = d.buflen()
            if len(dt_line.array) != n or len(score_line.array) != n:
                return False
            columns.append((np.floor(np.asarray(dt_line.array)).astype(np.int64), np.asarray(score_line.array)))
        days = np.unique(np.concatenate([c[0] for c in columns])) if columns else np.empty(0, np.int64)
        grid = np.full((len(days), len(columns)), np.nan)
        for i, (stock_days, scores) in enumerate(columns):
            grid[np.searchsorted(days, stock_days), i] = scores
        return days, grid

    def _decide_exits(self, today, columns: np.ndarray, used: np.ndarray):
        """The reviews as arrays over the holdings free to sell (in buying order): which end at the
        next bar, which are due by their review clocks, which of those are below exit_threshold."""
        p = self.p
        held = [d for d in self._book if d not in self._pending and d not in self._to_sell]
        if not held:
            return
        cols = np.array([self._columns[d] for d in held], dtype=np.int64)
        lens = np.array([len(d) for d in held], dtype=np.int64)
        score_of = np.full(len(self.stocks), math.nan)  # by column; NaN: no bar or no score today
        score_of[columns] = used
        scores = score_of[cols]
        ends = np.array([p.close_at_end and self._ends_next_bar(d) for d in held], dtype=bool)
        since = today - self._review_day[cols] if p.review_in == "calendar" else lens - self._review_bar[cols]
        due = ~ends & ~np.isnan(scores) & (since >= p.review_days)  # no score today: its next ready day
        self._review_day[cols[due]] = today
        self._review_bar[cols[due]] = lens[due]
        for i in np.flatnonzero(ends | (due & (scores < p.exit_threshold))).tolist():
            d, score = held[i], float(scores[i])
            if ends[i]:
                self._to_sell[d] = ("end", score)
                self._log(f"END   {d._name}: the backtest ends at the next bar")
            else:
                self._to_sell[d] = ("review_exit", score)
                self._log(f"EXIT  {d._name}: score {score:+.4f} < {p.exit_threshold}")

    def _decide_entries(self, today, columns: np.ndarray, used: np.ndarray, member: np.ndarray):
        p = self.p
        held = sum(1 for d in self._book if d not in self._to_sell)
        pending_buys = sum(1 for o in self._pending.values() if o.isbuy())
        free = p.top_k - held - pending_buys
        if free <= 0:
            return
        book, pending, threshold = self._book, self._pending, p.entry_threshold
        self._to_buy = []
        # today's members above the threshold, highest first (ties: the datas' order); the walk
        # below stops after `free` buys, so it visits few more than the holdings it skips
        candidates = np.flatnonzero(member & (used > threshold))
        for j in candidates[np.argsort(-used[candidates], kind="stable")].tolist():
            score = float(used[j])
            d = self.stocks[columns[j]]
            if d in book or d in pending:
                continue
            if p.close_at_end and self._ends_next_bar(d):
                continue  # the backtest ends at the next bar: it could not be sold afterwards
            self._to_buy.append((d, score, len(self._to_buy) + 1))
            if len(self._to_buy) == free:
                break
        for d, score, rank in self._to_buy:
            self._log(f"PLAN  {d._name}: score {score:+.4f}, rank {rank}")

    # ------------------------------------------------------------------ at the open of t+1
    def prenext_open(self):
        self.next_open()

    def next_open(self):
        if not self._to_sell and not self._to_buy:
            return
        today = self._open_day()

        def trades_today(d):
            return len(d) > 0 and int(d.datetime[0]) == today

        broker = self.broker
        value = broker.getcash()  # the book valued at today's open (getvalue() is at yesterday's close)
        held = [(d, position.size) for d, position in broker.positions.items() if position.size]
        for d, size in held:  # the broker's order: the same sum, bit for bit
            value += size * (d.open[0] if trades_today(d) else d.close[0])
        cash = broker.getcash()

        for d, (reason, score) in list(self._to_sell.items()):
            if not trades_today(d):
                continue  # no bar today (gap or halt): sell at its next open
            held = broker.getposition(d).size
            size = self._volume_capped(d, held)
            if size >= held:
                del self._to_sell[d]
            if size <= 0:
                continue  # what the volume cap leaves is sold at the next bar, in this slot
            price = self._fill_price(d, buy=False)
            order = self.sell(data=d, size=size)
            order.addinfo(score=score, rank=None, reason=reason)
            self._pending[d] = order
            cash += size * price - broker.getcommissioninfo(d).getcommission(size, price)

        target = self.p.position_pct * value
        # a holding whose sale waits for a bar keeps its slot: buy only into the slots free now
        occupied = sum(1 for d in self._book if d not in self._pending or d in self._to_sell)
        occupied += sum(1 for o in self._pending.values() if o.isbuy())
        for d, score, rank in self._to_buy:
            if occupied >= self.p.top_k:
                break
            if not trades_today(d) or d in self._pending:
                continue  # the decision is made again at tonight's close
            price = self._fill_price(d, buy=True)
            if not (price > 0 and math.isfinite(price)):
                continue
            commission = broker.getcommissioninfo(d).getcommission
            size = self._volume_capped(d, buy_shares(target, price, cash, self.p.min_cash, commission))
            if size < 1:
                self._log(f"SKIP  {d._name}: cash {cash:.2f} buys no share (min_cash {self.p.min_cash})")
                continue
            order = self.buy(data=d, size=size)
            order.addinfo(score=score, rank=rank, reason="entry")
            self._pending[d] = order
            occupied += 1
            cash -= size * price + commission(size, price)
            self._log(f"BUY   {d._name}: {size} @ ~{price:.4f}")
        self._to_buy = []

    def _fill_price(self, d, buy):
        """The price the broker will fill a market order at this open, its slippage included, as
        BackBroker._slip_up / _slip_down compute it. With slip_out=False the broker may cap it at
        the bar's high (low), a better price than this one, so sizing at this one stays safe (and
        does not read the day's high or low, which are not known at the open)."""
        price = d.open[0]
        bp = self.broker.p
        if getattr(bp, "slip_open", False):
            perc, fixed = getattr(bp, "slip_perc", 0.0) or 0.0, getattr(bp, "slip_fixed", 0.0) or 0.0
            if perc:
                price = price * (1 + perc) if buy else price * (1 - perc)
            elif fixed:
                price = price + fixed if buy else price - fixed
        return price

    def _volume_capped(self, d, size: int) -> int:
        """`size` capped by ``max_volume_pct`` of the volume of the data's last bar before today."""
        if self.p.max_volume_pct is None:
            return size
        volume = d.volume[-1] if len(d) > 1 else 0.0
        return min(size, volume_cap(self.p.max_volume_pct, volume))

    # ------------------------------------------------------------------ notifications
    def notify_order(self, order):
        if order.status in (order.Submitted, order.Accepted, order.Partial):
            return
        d = order.data
        pending = self._pending.get(d)
        if pending is not None and pending.ref == order.ref:  # notifications carry clones
            del self._pending[d]
        if order.status == order.Completed:
            if order.isbuy():
                day = int(order.executed.dt)
                self._book[d] = {"entry": day}
                column = self._columns[d]
                self._review_day[column], self._review_bar[column] = day, len(d)
            elif self.getposition(d).size == 0:
                self._book.pop(d, None)
        elif order.status in (order.Margin, order.Rejected):
            self.rejected_orders += 1
            self._log(f"REJECTED {d._name}: {order.getstatusname()}")

    # ------------------------------------------------------------------ read-only state
    def book_state(self) -> dict:
        """The book and the plan for the next open as plain values, after the last bar's close:
        holdings (shares, entry date, last and next review), planned sells and buys (not sized)."""

        def iso(day):
            return bt.num2date(float(day)).date().isoformat()

        holdings = {}
        for d, entry in self._book.items():
            calendar = self.p.review_in == "calendar"
            review_day, review_bar = int(self._review_day[self._columns[d]]), int(self._review_bar[self._columns[d]])
            holdings[d._name] = {
                "shares": self.getposition(d).size,
                "entry": iso(entry["entry"]),
                "last_review": iso(review_day),
                "next_review": iso(review_day + self.p.review_days) if calendar else None,
                "review_in_bars": None if calendar else max(0, self.p.review_days - (len(d) - review_bar)),
            }
        return {
            "date": iso(self.datetime[0]) if len(self) else None,
            "holdings": holdings,
            "sell": [{"ticker": d._name, "reason": r, "score": s} for d, (r, s) in self._to_sell.items()],
            "buy": [{"ticker": d._name, "score": s, "rank": k} for d, s, k in self._to_buy],
        }

    def entry_summary(self) -> dict:
        """What the entry rule saw over the run (from the start date on): decision days, the most
        stocks eligible on one day (ready and a universe member), the highest cross-sectioned score
        among them, and the rule's params; `no_trade_reason` turns it into a sentence."""
        best = self._best_entry
        return {
            "decision_days": self._entry_days,
            "most_eligible": self._most_members,
            "best_score": best if math.isfinite(best) else None,
            "entry_threshold": float(self.p.entry_threshold),
            "cross_section": self.p.cross_section,
        }

    def scores_read(self) -> pd.DataFrame:
        """The scores this strategy read, after a run: a date x ticker frame of each stock's score
        on each of its bars, before the cross-section (NaN where the stock has no bar or no score).
        Read from the score lines, which hold every bar's value once the run is over (unless
        Cerebro was told to drop old bars with exactbars). ScoreAlpha.factory(frame) or the vector
        engine on this frame trade as this run did."""
        columns = {}
        for d, dt_line, score_line in self._watch:
            n = len(d)
            if len(dt_line.array) < n or len(score_line.array) < n:
                raise ConfigError(
                    f"AlphaRankStrategy.scores_read: the lines of {d._name!r} keep only their last bars "
                    "(cerebro exactbars); run without exactbars to keep the scores"
                )
            days = np.floor(np.asarray(dt_line.array[:n], dtype="float64")).astype(np.int64)
            columns[d._name] = pd.Series(np.asarray(score_line.array[:n], dtype="float64"), index=days)
        frame = pd.DataFrame(columns).sort_index()  # the union of the stocks' days
        frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index - EPOCH_DAYNUM, unit="D"), name="date")
        return frame.where(np.isfinite(frame))

    def _log(self, text):
        if self.p.verbose:
            when = self.datetime.date(0) if len(self) else "-"
            print(f"{when} {text}")

    def _ends_next_bar(self, d) -> bool:
        """True when the data's next bar is the backtest's last bar (preloaded datas only). A data
        that stops before the backtest's end is not flagged: its end would be future knowledge."""
        return len(d) == d.buflen() - 1 and int(d.datetime.array[-1]) >= self._final_day


# ---------------------------------------------------------------------- helpers
def no_trade_reason(summary: dict) -> str:
    """Why a run bought nothing, from AlphaRankStrategy.entry_summary()."""
    threshold, best = summary["entry_threshold"], summary["best_score"]
    if not summary["decision_days"]:
        return "the period has no bar on or after the start date, so no order was ever decided"
    if not summary["most_eligible"]:
        return "no stock was eligible on any day (none had a score and, with --universe, membership)"
    if summary["cross_section"] == "rank" and summary["most_eligible"] < 2:
        return (
            f"fewer eligible stocks than the 2 that cross_section='rank' needs: at most "
            f"{summary['most_eligible']} on any day (scores and --universe membership), and a lone "
            f"stock ranks 0, never above entry_threshold {threshold:g}"
        )
    if best is None or not best > threshold:
        ranked = summary["cross_section"] == "rank"
        tied = " (the day's scores were all tied, e.g. all zero: every rank is 0)" if ranked and best == 0.0 else ""
        rule = "cross-sectioned rank" if ranked else "score"
        return (
            f"no score passed the entry threshold: the highest {rule} of an eligible stock was "
            f"{best:+.4f}{tied}, never above entry_threshold {threshold:g}"
        )
    return (
        f"scores passed entry_threshold {threshold:g} (highest {best:+.4f}) but no buy was filled: "
        f"the cash bought no share (min_cash), or the only candidates came on the bar before the last"
    )


def daynum_of(value) -> int:
    """Backtrader's integer day number of a date-like value (the strategy's `start`, and the vector
    engine's); ConfigError naming 'start' if it is none."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"AlphaRankStrategy param 'start' is {value!r}, not a date; give a date "
            f"such as '2017-01-03' or datetime.date(2017, 1, 3)"
        ) from exc
    if stamp is pd.NaT:
        raise ConfigError(f"AlphaRankStrategy param 'start' is {value!r}, not a date")
    return int(bt.date2num(_dt.datetime(stamp.year, stamp.month, stamp.day)))


def check_number(name, value, low=None, high=None, integer=False, low_open=False):
    """ConfigError naming AlphaRankStrategy param `name` unless `value` is a number (an integer
    with `integer`) within [low, high] (`low_open`: above low); shared with the vector engine."""
    kind = "an integer" if integer else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        bounds.append(f"<= {high}")
    valid = f"{kind} {' and '.join(bounds)}".strip()
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value) == int(value)
    if ok:
        ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        raise ConfigError(f"AlphaRankStrategy param {name!r} is {value!r}; it must be {valid}")
