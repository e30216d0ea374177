"""TradeLog: one row per completed order, in the seed project's trade-log columns.

Columns: Date, Action, Ticker, Price, Shares, Score, Amount, Rank, Reason, PnL_Pct, Days,
Commission. Works on any Cerebro; Score / Rank / Reason are read from ``order.info``, which a
strategy fills with ``order.addinfo(score=..., rank=..., reason=...)``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import backtrader as bt
import pandas as pd

from core.io import write_text

COLUMNS = (
    "Date",
    "Action",
    "Ticker",
    "Price",
    "Shares",
    "Score",
    "Amount",
    "Rank",
    "Reason",
    "PnL_Pct",
    "Days",
    "Commission",
)
INFO_KEYS = {"Score": "score", "Rank": "rank", "Reason": "reason"}


@dataclass
class Book:
    """fill_row's position record: what the log needs to know about one ticker's open position
    (public: the vector engine keeps one per ticker as TradeLog does)."""

    size: float = 0.0  # signed: > 0 long, < 0 short
    avg_price: float = 0.0  # average entry price of the open size (fill prices, no commission)
    opened: object = None  # date of the first fill of the open position


def fill_row(book: Book, when, action: str, price: float, shares: float) -> tuple[dict, Book]:
    """PnL_Pct / Days of one fill against the position `book`, and the book after the fill.

    A fill that reduces the position (a SELL of a long, a BUY covering a short) gets
    PnL_Pct = (price / average entry - 1) * 100 (sign flipped for a short) and Days = calendar days
    since the position's first fill; a fill that opens or adds gets None for both. Adding averages
    the entry price; a fill through zero closes the old position and opens the rest at `price`.
    """
    signed = shares if action == "BUY" else -shares
    reduces = book.size != 0 and (book.size > 0) != (signed > 0)
    if not reduces:
        new_size = book.size + signed
        avg = (abs(book.size) * book.avg_price + shares * price) / abs(new_size)
        return {"PnL_Pct": None, "Days": None}, Book(new_size, avg, book.opened if book.size else when)

    ratio = price / book.avg_price - 1.0
    pnl = (ratio if book.size > 0 else -ratio) * 100.0
    row = {"PnL_Pct": pnl, "Days": (when - book.opened).days}
    new_size = book.size + signed
    if new_size == 0:
        return row, Book()
    if (new_size > 0) == (book.size > 0):  # partly closed: entry price and date stay
        return row, Book(new_size, book.avg_price, book.opened)
    return row, Book(new_size, price, when)  # flipped through zero


class TradeLog(bt.Analyzer):
    """One row per completed order: the day it filled, BUY/SELL, ticker, fill price, shares, the
    strategy's score / rank / reason, amount, PnL % and holding days of reducing fills, commission.

    Params:
      - path: when set, trades.csv is written there (atomically) at stop.

    get_analysis() -> {"trades": [row dict, ...]}; to_frame() -> DataFrame with COLUMNS;
    write_csv(path) writes the CSV (empty cells for missing values).
    """

    params = (("path", None),)

    def start(self):
        self._rows: list[dict] = []
        self._books: dict[object, Book] = {}

    def notify_order(self, order):
        if order.status != order.Completed or not order.executed.size:
            return
        when = bt.num2date(order.executed.dt).date()
        action = "BUY" if order.isbuy() else "SELL"
        price = float(order.executed.price)
        shares = abs(float(order.executed.size))
        shares = int(shares) if shares.is_integer() else shares
        book = self._books.get(order.data, Book())
        outcome, self._books[order.data] = fill_row(book, when, action, price, shares)
        info = order.info
        row = {
            "Date": when.isoformat(),
            "Action": action,
            "Ticker": order.data._name,
            "Price": price,
            "Shares": shares,
            "Score": _plain(info.get(INFO_KEYS["Score"])),
            "Amount": price * shares,
            "Rank": _plain(info.get(INFO_KEYS["Rank"])),
            "Reason": _plain(info.get(INFO_KEYS["Reason"])),
            "Commission": float(order.executed.comm),
        }
        row.update(outcome)
        self._rows.append({c: row[c] for c in COLUMNS})

    def stop(self):
        if self.p.path is not None:
            self.write_csv(self.p.path)

    def get_analysis(self) -> dict:
        return {"trades": [dict(r) for r in self._rows]}

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self._rows, columns=list(COLUMNS))
        for column in ("Price", "Amount", "PnL_Pct", "Days", "Commission"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        return frame

    def write_csv(self, path):
        """Write the log to `path` (atomic), missing values as empty cells; return the path."""
        return write_text(path, trade_rows_csv(self._rows))


def trade_rows_csv(rows) -> str:
    """trades.csv's text of row dicts with COLUMNS (None as an empty cell)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def _plain(value):
    # order.info values may be numpy scalars; keep the log plain and JSON-friendly.
    if value is None:
        return None
    return value.item() if hasattr(value, "item") else value
