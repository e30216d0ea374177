"""LeanBroker: Backtrader's BackBroker whose portfolio valuation skips flat positions.

A strategy that calls ``getposition(d)`` on every data leaves a (flat) Position per data in the
broker, and the stock ``_get_value`` runs two commission-info calls per position per bar to add
zeros. On 500 feeds that is a visible share of the run. This broker skips a flat position when its
close is finite (its contribution is then exactly 0); everything else is the stock code of
backtrader 1.9.78.123 ``BackBroker._get_value``, and tests/test_arraydata.py checks values and
fills against the stock broker.

Usage: ``cerebro.broker = LeanBroker(cash=100_000)`` (params are BackBroker's).

``set_slippage(broker, s)`` is the project's slippage rule on any BackBroker (LeanBroker or the
stock one): Backtrader's own ``set_slippage_perc`` with the fill not capped at the bar's high/low.
"""

from __future__ import annotations

import math

import backtrader as bt

from core.errors import ConfigError


def set_slippage(broker, slippage: float) -> None:
    """A buy fills at open * (1 + s), a sell at open * (1 - s): ``broker.set_slippage_perc(s,
    slip_open=True, slip_match=True, slip_out=True)``; s = 0 leaves the broker as it is.

    ``slip_out=True`` on every data, not only close-only data (open = high = low = close, where
    Backtrader's default cap at the bar's high/low would cancel every slip): the fill is then
    exactly the price AlphaRankStrategy sized the order at, with no read of the day's high or low
    (unknown at the open), so its cash cap holds to the last bit, and the vector engine applies the
    same one multiplication (strategies/vector_nb.py)."""
    if not (isinstance(slippage, (int, float)) and 0 <= slippage < 1):
        raise ConfigError(f"slippage {slippage!r} must be a fraction a side in [0, 1), e.g. 0.0005 for 5 bp")
    if slippage:
        broker.set_slippage_perc(float(slippage), slip_open=True, slip_limit=True, slip_match=True, slip_out=True)


class LeanBroker(bt.brokers.BackBroker):
    def start(self):
        super().start()
        self._always_finite = {}  # data -> its close is finite on every bar (a lean ArrayData knows)

    def _open_positions(self) -> list:
        """(data, position) of the non-flat positions: the only ones the stock loops act on."""
        return [(d, p) for d, p in self.positions.items() if p.size]

    def _valued_positions(self) -> list:
        """(data, position) the valuation must visit: the open positions, and the flat ones whose
        close may be NaN today (the stock code adds 0 * NaN = NaN for them)."""
        finite = self._always_finite
        if len(finite) != len(self.positions):  # positions are only ever added
            for d in self.positions.keys() - finite.keys():
                finite[d] = bool(getattr(d, "close_always_finite", False))
        return [(d, p) for d, p in self.positions.items() if p.size or not finite[d]]

    def next(self):
        """BackBroker.next with its two loops over every position limited to the open ones (the
        stock loops skip flat positions with ``if pos:``, a Python call each on 500 feeds).

        Long because: it mirrors Backtrader 1.9.78.123's own method line by line (so that a reader
        can diff the two), changing only the position loops."""
        while self._toactivate:
            self._toactivate.popleft().activate()

        if self.p.checksubmit:
            self.check_submitted()

        # Discount any cash for positions hold
        credit = 0.0
        held = self._open_positions()
        for data, pos in held:
            comminfo = self.getcommissioninfo(data)
            dt0 = data.datetime.datetime()
            dcredit = comminfo.get_credit_interest(data, pos, dt0)
            self.d_credit[data] += dcredit
            credit += dcredit
            pos.datetime = dt0  # mark last credit operation

        self.cash -= credit

        self._process_order_history()
        quiet = not self.pending  # no order to execute: no position changes before the last loop

        # Iterate once over all elements of the pending queue
        self.pending.append(None)
        while True:
            order = self.pending.popleft()
            if order is None:
                break

            if order.expire():
                self.notify(order)
                self._ococheck(order)
                self._bracketize(order, cancel=True)

            elif not order.active():
                self.pending.append(order)  # cannot yet be processed

            else:
                self._try_exec(order)
                if order.alive():
                    self.pending.append(order)

                elif order.status == bt.Order.Completed:
                    # a bracket parent order may have been executed
                    self._bracketize(order)

        # Operations have been executed ... adjust cash end of bar
        for data, pos in held if quiet else self._open_positions():
            # futures change cash every bar
            comminfo = self.getcommissioninfo(data)
            self.cash += comminfo.cashadjust(pos.size, pos.adjbase, data.close[0])
            # record the last adjustment price
            pos.adjbase = data.close[0]

        self._get_value()  # update value

    def _get_value(self, datas=None, lever=False):
        """BackBroker._get_value with flat positions skipped.

        Long because: it mirrors Backtrader 1.9.78.123's own method line by line (so that a reader
        can diff the two), changing only the loop over positions."""
        if datas:  # a single data's value, or an explicit list: the stock code
            return super()._get_value(datas=datas, lever=lever)

        pos_value = 0.0
        pos_value_unlever = 0.0
        unrealized = 0.0

        while self._cash_addition:
            c = self._cash_addition.popleft()
            self._fundshares += c / self._fundval
            self.cash += c

        isfinite = math.isfinite
        for data, position in self._valued_positions():
            if not position.size and isfinite(data.close[0]):
                continue  # flat: value 0, unrealized 0, as the stock code would add
            comminfo = self.getcommissioninfo(data)
            if not self.p.shortcash:
                dvalue = comminfo.getvalue(position, data.close[0])
            else:
                dvalue = comminfo.getvaluesize(position.size, data.close[0])

            dunrealized = comminfo.profitandloss(position.size, position.price, data.close[0])

            if not self.p.shortcash:
                dvalue = abs(dvalue)  # short selling adds value in this case

            pos_value += dvalue
            unrealized += dunrealized

            if dvalue > 0:  # long position - unlever
                dvalue -= dunrealized
                pos_value_unlever += dvalue / comminfo.get_leverage()
                pos_value_unlever += dunrealized
            else:
                pos_value_unlever += dvalue

        if not self._fundhist:
            self._value = self.cash + pos_value_unlever
            self._fundval = self._value / self._fundshares  # update fundvalue
        else:
            fval, fvalue = self._process_fund_history()

            self._value = fvalue
            self.cash = fvalue - pos_value_unlever
            self._fundval = fval
            self._fundshares = fvalue / fval
            lev = pos_value / (pos_value_unlever or 1.0)

            pos_value_unlever = fvalue
            pos_value = fvalue * lev

        self._valuemkt = pos_value_unlever

        self._valuelever = self.cash + pos_value
        self._valuemktlever = pos_value

        self._leverage = pos_value / (pos_value_unlever or 1.0)
        self._unrealized = unrealized

        return self._value if not lever else self._valuelever
