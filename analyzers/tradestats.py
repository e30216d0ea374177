"""Trade statistics from a trade log: ours (`TradeLog`'s trades.csv) or the seed's published one.

Both logs have the columns Date, Action, Ticker, Price, Shares, ..., PnL_Pct, Days, one row per
fill. A *closed trade* is a row that closes (part of) a position, i.e. one with PnL_Pct set: the
SELL rows of a long-only log. BUY rows and positions still open at the end are not trades yet.

Units differ between the two logs and are normalised here:
- PnL_Pct: our TradeLog writes percent (15.6 = +15.6 %); the seed wrote a fraction under that name
  (0.156; e.g. REGN bought 678.35, sold 558.25, PnL_Pct −0.177). `pnl_unit="auto"` decides by
  re-deriving the return from the log's own BUY prices (see `detect_pnl_unit`).
- Days: as logged (ours: calendar days; the seed: trading days).
All statistics below are reported in percent; `win_rate` is a fraction in [0, 1].

Realised PnL curve (`realized_pnl`): the dollar PnL a closed trade realised is
Shares × (exit − entry) = Shares × Price × r / (1 + r), with r the trade's return as a fraction,
because entry = Price / (1 + r). Summed cumulatively by exit date, this is the realised part of
the account's PnL (before commissions, open positions excluded), needs no guess about position
weights, and is the quantity the seed plotted as "cumulative realised PnL".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import DataError
from core.io import atomic_path

REQUIRED = ("Date", "Action", "Ticker", "Price", "Shares", "PnL_Pct")


def read_trade_log(path) -> pd.DataFrame:
    """Read a trades.csv (ours or the seed's; the seed's has an unnamed index column); DataError
    naming the file when it is missing or not a CSV."""
    hint = "give a trades.csv written by a run (results/<name>/trades.csv) or the seed's backtest_trades.csv"
    try:
        log = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; {hint}") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a file; {hint}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (not even a header); {hint}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV ({str(error).strip()[:120]}); {hint}") from None
    return log.drop(columns=[c for c in log.columns if str(c).startswith("Unnamed")])


def _check(log: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in log.columns]
    if missing:
        raise DataError(
            f"trade log lacks column(s) {missing}; it has {list(log.columns)}. "
            f"Expected a TradeLog trades.csv or the seed's backtest_trades.csv."
        )
    log = log.copy()
    dates = pd.to_datetime(log["Date"], errors="coerce")
    if dates.isna().any():
        row = int(dates.isna().to_numpy().argmax())
        raise DataError(f"trade log, row {row + 1}, column Date: {log['Date'].iloc[row]!r} is not a date (YYYY-MM-DD)")
    log["Date"] = dates
    for c in ("Price", "Shares", "PnL_Pct", "Days"):
        if c in log.columns:
            log[c] = pd.to_numeric(log[c], errors="coerce")
    log["Action"] = log["Action"].astype(str).str.upper()
    return log


def detect_pnl_unit(log: pd.DataFrame) -> str:
    """'percent' or 'fraction': which one makes PnL_Pct agree with the log's own prices.

    Replays the log per ticker (average entry price of the open long position) and compares each
    closing row's PnL_Pct with exit / entry − 1 and with 100 × that. Falls back, when no closing
    row can be matched to its buys, to 'fraction' if every |PnL_Pct| ≤ 1 (the seed), else 'percent'.
    """
    log = _check(log)
    errs = {"fraction": [], "percent": []}
    book = {}  # ticker -> (shares, average entry price)
    for row in log.sort_values("Date", kind="stable").itertuples(index=False):
        shares, avg = book.get(row.Ticker, (0.0, 0.0))
        if row.Action == "BUY":
            new = shares + row.Shares
            book[row.Ticker] = (new, (shares * avg + row.Shares * row.Price) / new)
        elif row.Action == "SELL":
            if shares > 0 and avg > 0 and np.isfinite(row.PnL_Pct):
                r = row.Price / avg - 1.0
                errs["fraction"].append(abs(row.PnL_Pct - r))
                errs["percent"].append(abs(row.PnL_Pct - 100.0 * r))
            left = shares - row.Shares
            book[row.Ticker] = (left, avg) if left > 0 else (0.0, 0.0)
    if errs["fraction"]:
        return min(errs, key=lambda k: float(np.median(errs[k])))
    pnl = closed_trades(log, pnl_unit="percent")["PnL_Pct"].abs()
    return "fraction" if len(pnl) and pnl.max() <= 1.0 else "percent"


def closed_trades(log: pd.DataFrame, pnl_unit: str = "auto") -> pd.DataFrame:
    """The closing rows (PnL_Pct set), with PnL_Pct in percent and a `pnl_frac` column added."""
    log = _check(log)
    if pnl_unit == "auto":
        pnl_unit = detect_pnl_unit(log)
    if pnl_unit not in ("percent", "fraction"):
        raise DataError(f"pnl_unit={pnl_unit!r}: use 'auto', 'percent' or 'fraction'.")
    closed = log[log["PnL_Pct"].notna()].copy()
    if pnl_unit == "fraction":
        closed["PnL_Pct"] = closed["PnL_Pct"] * 100.0
    closed["pnl_frac"] = closed["PnL_Pct"] / 100.0
    return closed.reset_index(drop=True)


def trade_stats(log: pd.DataFrame, pnl_unit: str = "auto") -> dict:
    """count, win_rate, mean / median / best / worst / avg win / avg loss PnL (%), profit factor
    (sum of % wins / |sum of % losses|, the seed's definition: equal-weighted, not dollars),
    avg_holding_days (as logged). A win is PnL > 0; a zero trade is neither win nor loss."""
    pnl = closed_trades(log, pnl_unit)
    p = pnl["PnL_Pct"].to_numpy(dtype=float)
    wins, losses = p[p > 0], p[p < 0]
    nan = float("nan")
    days = pnl["Days"].dropna() if "Days" in pnl.columns else pd.Series(dtype=float)
    return {
        "count": int(len(p)),
        "win_rate": float(len(wins) / len(p)) if len(p) else nan,
        "mean_pnl_pct": float(p.mean()) if len(p) else nan,
        "median_pnl_pct": float(np.median(p)) if len(p) else nan,
        "best_pnl_pct": float(p.max()) if len(p) else nan,
        "worst_pnl_pct": float(p.min()) if len(p) else nan,
        "avg_win_pct": float(wins.mean()) if len(wins) else nan,
        "avg_loss_pct": float(losses.mean()) if len(losses) else nan,
        "profit_factor": (
            float(wins.sum() / abs(losses.sum())) if len(losses) else (float("inf") if len(wins) else nan)
        ),
        "avg_holding_days": float(days.mean()) if len(days) else nan,
        "open_positions_at_end": int(_open_at_end(_check(log))),
    }


def _open_at_end(log: pd.DataFrame) -> int:
    signed = np.where(log["Action"] == "BUY", log["Shares"], -log["Shares"])
    net = pd.Series(signed, index=log.index).groupby(log["Ticker"]).sum()
    return int((net.abs() > 1e-9).sum())


def realized_pnl(log: pd.DataFrame, pnl_unit: str = "auto") -> pd.Series:
    """Cumulative realised dollar PnL by exit date: Σ Shares × Price × r / (1 + r) (see module)."""
    closed = closed_trades(log, pnl_unit)
    r = closed["pnl_frac"]
    dollars = closed["Shares"] * closed["Price"] * r / (1.0 + r)
    return dollars.groupby(closed["Date"]).sum().cumsum().rename("realized_pnl")


def trade_histogram_png(log: pd.DataFrame, path, pnl_unit: str = "auto", bins: int = 30) -> Path:
    """Histogram of closed-trade returns (%), mean and zero marked."""
    p = closed_trades(log, pnl_unit)["PnL_Pct"]
    fig, ax = _figure()
    ax.hist(p, bins=bins, color="#4477aa", edgecolor="white")
    ax.axvline(0, color="black", lw=0.8)
    ax.axvline(p.mean(), color="#cc3311", ls="--", label=f"mean {p.mean():.2f} %")
    ax.set(xlabel="closed-trade return (%)", ylabel="trades", title=f"Closed-trade returns ({len(p)} trades)")
    ax.legend()
    return _save(fig, path)


def realized_pnl_png(log: pd.DataFrame, path, pnl_unit: str = "auto") -> Path:
    """Step plot of cumulative realised dollar PnL (closed trades only, before commissions)."""
    curve = realized_pnl(log, pnl_unit)
    start = _check(log)["Date"].min()
    if len(curve) and start < curve.index[0]:  # the curve starts at 0 on the first fill
        curve = pd.concat([pd.Series([0.0], index=[start]), curve])
    fig, ax = _figure()
    ax.step(curve.index, curve.to_numpy(), where="post", color="#228833")
    ax.axhline(0, color="black", lw=0.8)
    ax.set(
        ylabel="cumulative realised PnL ($)",
        title="Realised PnL of closed trades (open positions and commissions excluded)",
    )
    fig.autofmt_xdate()
    return _save(fig, path)


def _figure(figsize=(9, 4.5)):
    # A bare Figure renders with Agg whatever backend pyplot uses: headless, no global state.
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def _save(fig, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    with atomic_path(path, suffix=path.suffix or ".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
