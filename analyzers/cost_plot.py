"""cost_sensitivity.png: the strategy's Sharpe and its excess Sharpe over the equal-weight
yardstick against the cost a side, with the breakeven cost marked. The numbers come from
strategies/cost_sensitivity.py (plain rows, so this module needs nothing of strategies/)."""

from __future__ import annotations

from pathlib import Path

from core.io import atomic_path


def write_cost_png(table: list[dict], breakeven: dict, path, turnover=None, title: str = "") -> Path:
    """Plot the rows of a cost table (cost_bp, sharpe, excess_sharpe) and the breakeven (a
    breakeven_cost dict) into `path`, written atomically. Matplotlib's Agg canvas: no display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    costs = [row["cost_bp"] for row in table]

    def line(key):
        return [float("nan") if row[key] is None else row[key] for row in table]

    fig = Figure(figsize=(6.5, 3.8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(costs, line("sharpe"), marker="o", label="Sharpe", color="tab:blue")
    ax.plot(costs, line("excess_sharpe"), marker="s", label="excess Sharpe over equal-weight", color="tab:orange")
    ax.axhline(0.0, color="black", lw=0.8)
    if breakeven.get("status") == "found":
        ax.axvline(breakeven["bp"], color="tab:red", ls="--", lw=1, label=f"breakeven {breakeven['bp']:.2f} bp")
    elif breakeven.get("status") == "below_bracket":
        ax.text(0.98, 0.05, "no excess even at 0 bp", transform=ax.transAxes, ha="right", color="tab:red")
    elif breakeven.get("status") == "above_bracket":
        ax.text(0.98, 0.05, f"breakeven above {breakeven['low_bp']:g} bp", transform=ax.transAxes, ha="right")
    heading = [title] if title else []
    if turnover is not None:
        heading.append(f"turnover {turnover:.2f}/yr")
    ax.set(xlabel="cost a side (bp, commission + slippage)", ylabel="annualised Sharpe", title="; ".join(heading))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return Path(path)
