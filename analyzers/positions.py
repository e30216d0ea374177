"""Multi-asset pyfolio inputs from any Cerebro, and a pyfolio tear sheet saved as PNGs.

Backtrader's own `PyFolio` analyzer keeps only the last data's positions: its `get_pf_items()`
builds the positions frame from `v[-2:]` of each `PositionsValue` row, i.e. the last data and
cash (backtrader/analyzers/pyfolio.py). `PyFolioPositions` records every data instead.

Formats (pyfolio-reloaded 0.10.1):
- returns: Series of daily simple returns of the broker value, index = dates at midnight, UTC
  (pyfolio compares against UTC timestamps, e.g. its interesting periods).
- positions: DataFrame, same index, one column per data name (dollar value = size × close) and
  'cash'; the row sum is the broker value of that day.
- transactions: DataFrame, index = fill date (midnight UTC), columns amount (shares, + buy,
  − sell), price, symbol, value = −amount × price (pyfolio's `txn_dollars` sign: a buy spends cash);
  one row per execution.
- gross_lev: Series, sum of |position values| / broker value.
Daily data is assumed (the index is the bar's date); with intraday bars the last bar of a day wins.
"""

from __future__ import annotations

from pathlib import Path

import backtrader as bt
import pandas as pd

from core.io import atomic_path


class PyFolioPositions(bt.Analyzer):
    """Record daily returns, positions of every data plus cash, and every execution, for pyfolio."""

    params = (("cash_column", "cash"),)

    def start(self):
        self._names = [d._name or f"data{i}" for i, d in enumerate(self.datas)]
        self._start_value = self.strategy.broker.getvalue()
        self._rows = {}  # date -> list of position values (one per data) + [cash, value]
        self._txns = []  # [date, amount, price, symbol, value]

    def notify_order(self, order):
        if order.status not in (order.Partial, order.Completed):
            return
        name = order.data._name or f"data{self.datas.index(order.data)}"
        # Each notification carries only the executions that are new since the last one.
        for exbit in order.executed.iterpending():
            if exbit is None:
                break
            day = _day(bt.num2date(exbit.dt))
            self._txns.append([day, exbit.size, exbit.price, name, -exbit.size * exbit.price])

    def next(self):
        broker = self.strategy.broker
        # get_value([d]) = size × close[0]; a data that has not started has no position, and its
        # close[0] (with preload, the series' last value) must not be read.
        values = [broker.get_value([d]) if len(d) else 0.0 for d in self.datas]
        self._rows[_day(self.strategy.datetime.datetime())] = values + [broker.get_cash(), broker.getvalue()]

    def stop(self):
        returns, positions, transactions, gross_lev = self.get_pf_items()
        self.rets["returns"] = {k.date().isoformat(): float(v) for k, v in returns.items()}
        self.rets["positions"] = {k.date().isoformat(): row.to_dict() for k, row in positions.iterrows()}
        self.rets["transactions"] = (
            transactions.reset_index().assign(date=lambda f: f["date"].dt.date.astype(str)).to_dict("records")
        )
        self.rets["gross_lev"] = {k.date().isoformat(): float(v) for k, v in gross_lev.items()}

    def get_pf_items(self):
        """Return (returns, positions, transactions, gross_lev) in pyfolio's formats."""
        columns = self._names + [self.p.cash_column, "_value"]
        table = pd.DataFrame.from_dict(self._rows, orient="index", columns=columns).sort_index()
        table.index = pd.DatetimeIndex(table.index, name="date")
        value = table.pop("_value")
        positions = table
        prev = value.shift(1)
        prev.iloc[:1] = self._start_value
        returns = (value / prev - 1.0).rename("return")
        gross_lev = positions.drop(columns=self.p.cash_column).abs().sum(axis=1) / value
        transactions = pd.DataFrame(self._txns, columns=["date", "amount", "price", "symbol", "value"])
        transactions = transactions.set_index(pd.DatetimeIndex(transactions.pop("date"), name="date"))
        if transactions.index.tz is None:
            transactions.index = transactions.index.tz_localize("UTC")
        return returns, positions, transactions, gross_lev.rename("gross_lev")


def _day(dt) -> pd.Timestamp:
    """Backtrader datetimes are naive UTC; pyfolio wants midnight-UTC dates."""
    return pd.Timestamp(dt.date()).tz_localize("UTC")


def _to_utc(obj):
    obj = obj.copy()
    obj.index = pd.DatetimeIndex(obj.index)
    obj.index = (obj.index.tz_localize("UTC") if obj.index.tz is None else obj.index.tz_convert("UTC")).normalize()
    return obj


def write_pyfolio_tearsheet(
    returns, positions=None, transactions=None, benchmark_returns=None, path_png="pyfolio.png", round_trips=True
) -> list[Path]:
    """Save pyfolio-reloaded's tear sheets as PNGs; return the paths written.

    `create_full_tear_sheet` returns no figure, so the sheets it is made of are called one by one
    with `return_fig=True`: returns (`<stem>_returns.png`), positions, transactions and round trips
    (each only when its inputs are given; transactions and round trips only with a transaction;
    pyfolio skips round trips under 5 closed trades).
    `benchmark_returns` are daily returns (not prices) on the same calendar; tz-naive indexes are
    taken as UTC. Printed tables pyfolio shows in a notebook are not saved.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyfolio as pf

    returns = _to_utc(returns)
    if benchmark_returns is not None:
        benchmark_returns = _to_utc(benchmark_returns).reindex(returns.index).fillna(0.0)
    if positions is not None:
        positions = _to_utc(positions)
    if transactions is not None:
        transactions = _to_utc(transactions)
    path_png = Path(path_png)
    stem, suffix = path_png.with_suffix(""), path_png.suffix or ".png"

    sheets = [
        (
            "returns",
            lambda: pf.create_returns_tear_sheet(
                returns,
                positions=positions,
                transactions=transactions,
                benchmark_rets=benchmark_returns,
                return_fig=True,
            ),
        )
    ]
    if positions is not None:
        sheets.append(
            (
                "positions",
                lambda: pf.create_position_tear_sheet(returns, positions, estimate_intraday=False, return_fig=True),
            )
        )
        if transactions is not None and len(transactions):  # pyfolio cannot plot no transaction
            sheets.append(
                (
                    "transactions",
                    lambda: pf.create_txn_tear_sheet(
                        returns, positions, transactions, estimate_intraday=False, return_fig=True
                    ),
                )
            )
            if round_trips:
                sheets.append(
                    (
                        "round_trips",
                        lambda: pf.create_round_trip_tear_sheet(
                            returns, positions, transactions, estimate_intraday=False, return_fig=True
                        ),
                    )
                )
    written = []
    for name, make in sheets:
        fig = make()
        if fig is None:  # e.g. fewer than 5 round trips: pyfolio warns and draws nothing
            continue
        target = Path(f"{stem}_{name}{suffix}")
        with atomic_path(target, suffix=suffix) as tmp:
            fig.savefig(tmp, dpi=80, bbox_inches="tight")
        plt.close(fig)
        written.append(target)
    plt.close("all")
    return written
