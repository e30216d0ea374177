"""What a run could not compute, and why, as sentences for the summary, metrics.json and run.json.

A run that never trades is a result, not an error: its folder is written, and these notes say
"0 trades" and the reason (AlphaRankStrategy.entry_summary -> no_trade_reason), which reports
were skipped and which metrics are undefined (null in metrics.json).
"""

from __future__ import annotations

# metrics that are undefined, not zero, without varying returns or without a closed trade
_NEEDS_RETURNS = ("sharpe", "psr", "sortino")
_NEEDS_TRADES = ("win_rate",)


def run_notes(metrics: dict, no_trade_reason: str | None = None, skipped: tuple = ()) -> list[str]:
    """The notes of a run: "0 trades: <reason>" when it closed no trade, each skipped report (a
    sentence naming the file), and the metrics left null because they cannot be computed."""
    notes = []
    if metrics.get("n_trades") == 0:
        notes.append(f"0 trades: {no_trade_reason or 'the strategy placed no order'}")
    notes += [s for s in skipped if s]
    flat = [k for k in _NEEDS_RETURNS if k in metrics and metrics[k] is None]
    if flat:
        notes.append(f"{', '.join(flat)} not computed (null): the daily returns do not vary")
    untraded = [k for k in _NEEDS_TRADES if k in metrics and metrics[k] is None and metrics.get("n_trades") == 0]
    if untraded:
        notes.append(f"{', '.join(untraded)} not computed (null): no closed trade")
    return notes


def trade_histogram_skip(n_trades: int) -> str | None:
    """Why trade_returns.png is not written (no closed trade), or None."""
    return "trade_returns.png not written: no closed trade to plot" if not n_trades else None
