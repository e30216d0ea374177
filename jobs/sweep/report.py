"""What a sweep writes and prints: comparison.csv / comparison.md (every variant's metrics per
period, best selection Sharpe first), equity_curves.png, and the printed summary."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from core.io import atomic_dir, atomic_path, write_text
from jobs.store import resolve_out_dir
from jobs.sweep.spec import YARDSTICK, YARDSTICK_WHY, Periods, Variant
from strategies.cost_sensitivity import summary_line

COMPARISON_METRICS = (
    "sharpe",
    "total_return",
    "cagr",
    "volatility",
    "max_drawdown",
    "sortino",
    "n_trades",
    "win_rate",
    "exposure",
    "turnover",
    "final_value",
)


# ----------------------------------------------------------------------------- writing
def comparison_rows(
    variants: list[Variant], outcomes: dict, selection_outcomes: dict | None = None, report=None
) -> list[dict]:
    """One row per variant: variant, status, error, params, then (analyzers.selection_report.
    comparison_columns) selection_sharpe, holdout_sharpe, selection_rank, holdout_rank, chosen and
    every other metric per period as selection_<key> / holdout_<key>. Best selection rank first,
    broken variants last. `outcomes`: the holdout period's."""
    from analyzers.selection_report import comparison_columns

    by_name = {v.name: v for v in variants}
    rows = []
    if report is not None:
        ok = list(report.table["name"])
        columns = comparison_columns(
            report, {n: selection_outcomes[n].metrics for n in ok}, {n: outcomes[n].metrics for n in ok}
        )
        for record in columns.to_dict(orient="records"):
            name = record.pop("name")
            record.pop("params")
            rows.append(
                {
                    "variant": name,
                    "status": "ok",
                    "error": "",
                    "params": by_name[name].params_text(),
                    **{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()},
                }
            )
    ranked = {r["variant"] for r in rows}
    for v in variants:
        if v.name not in ranked:
            error = outcomes[v.name].error or "not ranked"
            rows.append({"variant": v.name, "status": "error", "error": error, "params": v.params_text()})
    return rows


def write_sweep(
    out_dir: Path,
    variants: list[Variant],
    outcomes: dict,
    data,
    returns=None,
    confirmed=(),
    cash: float = 100_000.0,
    selection_outcomes: dict | None = None,
    report=None,
    periods: Periods | None = None,
    engine: str = "vector",
) -> tuple[list[dict], list[str]]:
    """The sweep's whole folder, built under a temporary name beside `out_dir` and swapped in at
    once (core.io.atomic_dir), so a reader (or a run killed at any point) finds the earlier sweep's
    folder whole or this one whole, never a mix: per-variant folders (the holdout run's files; a
    Cerebro sweep's selection run in <variant>/selection/; a vector sweep writes only the variants
    replayed in Cerebro and the broken ones), comparison.csv / .md of every variant, selection.json
    / .png (only when a variant worked), equity_curves.png (holdout).
    Returns (comparison rows, the names of the files written at the top of the folder)."""
    with atomic_dir(out_dir) as tmp:
        write_variant_folders(tmp, variants, outcomes, selection_outcomes or {})
        rows = comparison_rows(variants, outcomes, selection_outcomes, report)
        write_text(tmp / "comparison.csv", pd.DataFrame(rows).to_csv(index=False))
        write_text(tmp / "comparison.md", comparison_markdown(rows, data, report, periods, engine, confirmed))
        if report is not None:
            from analyzers.selection_report import write_selection

            report.summary["engine"] = engine
            report.summary["confirmed_in_cerebro"] = {"period": "holdout", "variants": list(confirmed)}
            write_selection(tmp, report)
        write_sweep_curves(tmp / "equity_curves.png", outcomes, data, returns, cash)
        written = sorted(p.name for p in tmp.iterdir() if p.is_file())
    return rows, written


def write_variant_folders(folder: Path, variants: list[Variant], outcomes: dict, selection_outcomes: dict) -> None:
    """<variant>/ for each variant with files (Cerebro runs) or an error (error.txt)."""
    for v in variants:
        o = outcomes[v.name]
        if not o.files and not o.error:
            continue  # screened in memory: its row in comparison.csv is its record
        where = resolve_out_dir(folder, v.name)
        where.mkdir()
        if o.error:
            (where / "error.txt").write_text(o.error + "\n")
        for file_name, content in o.files.items():
            (where / file_name).write_bytes(content)
        selection = selection_outcomes.get(v.name)
        if selection is not None and selection.files:
            (where / "selection").mkdir()
            for file_name, content in selection.files.items():
                (where / "selection" / file_name).write_bytes(content)


def write_sweep_curves(path: Path, outcomes: dict, data, returns, cash: float) -> None:
    """equity_curves.png: the Cerebro runs' curves and the range of every screened variant (none: no file)."""
    curves = {
        o.name: equity_from_csv(o.files["equity.csv"])
        for o in outcomes.values()
        if not o.error and "equity.csv" in o.files
    }
    band = equity_band(returns, cash) if returns is not None and len(returns.names) else None
    if curves or band is not None:
        write_equity_curves_png(
            curves,
            data.benchmark,
            path,
            data.benchmark_name,
            band=band,
            n_variants=len(returns.names) if returns is not None else len(curves),
        )


def equity_band(returns, cash: float) -> pd.DataFrame:
    """The lowest and highest equity of all variants each day (a variant's missing day counts as
    no change), read in column blocks: a 100,000-variant matrix is never copied whole."""
    from analyzers.selection import column_blocks

    low = np.full(len(returns.dates), np.inf)
    high = np.full(len(returns.dates), -np.inf)
    for _, x in column_blocks(returns.values):
        growth = np.nancumprod(1.0 + x, axis=0) * cash
        np.minimum(low, growth.min(axis=1), out=low)
        np.maximum(high, growth.max(axis=1), out=high)
    return pd.DataFrame({"low": low, "high": high}, index=returns.dates)


def format_number(value, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if pct:
        return f"{100 * value:+.1f}%"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def comparison_markdown(
    rows: list[dict], data, report=None, periods: Periods | None = None, engine: str = "vector", confirmed=()
) -> str:
    from analyzers.selection_report import selection_markdown

    ok = [r for r in rows if r["status"] == "ok"]
    broken = [r for r in rows if r["status"] != "ok"]
    lines = ["# Variant comparison", ""]
    if periods is not None:
        lines += [
            f"Ranked on the selection period {periods.text('selection')} only; the holdout period "
            f"{periods.text('holdout')} chose nothing (its numbers are reported after the fact). "
            f"Engine: {engine}.",
            "",
        ]
    if ok:
        first = ok[0]
        lines += [
            f"Benchmark {data.benchmark_name} over the holdout: total return "
            f"{format_number(first.get('holdout_benchmark_total_return'), True)}, Sharpe "
            f"{format_number(first.get('holdout_benchmark_sharpe'))}; equal-weight universe: total return "
            f"{format_number(first.get('holdout_universe_ew_total_return'), True)}, Sharpe "
            f"{format_number(first.get('holdout_universe_ew_sharpe'))}.",
            "",
            YARDSTICK_WHY,
            "",
        ]
        if engine == "vector":
            lines += [
                f"Replayed in Cerebro on the holdout period with every report (same metrics as the vector "
                f"engine): {', '.join(confirmed) or 'none'}.",
                "",
            ]
        cols = [
            ("selection_sharpe", "selection Sharpe", False),
            ("holdout_sharpe", "holdout Sharpe", False),
            ("holdout_rank", "holdout rank", False),
            ("holdout_total_return", "holdout return", True),
            ("holdout_max_drawdown", "holdout max DD", True),
            ("holdout_n_trades", "holdout trades", False),
        ]
        lines.append("| selection rank | variant | params | " + " | ".join(c[1] for c in cols) + " |")
        lines.append("|---:|---|---|" + "---:|" * len(cols))
        for r in ok:
            mark = " (chosen)" if r.get("chosen") else ""
            cells = [format_number(r.get(key), pct) for key, _, pct in cols]
            lines.append(
                f"| {r['selection_rank']} | {r['variant']}{mark} | {r['params']} | " + " | ".join(cells) + " |"
            )
    if report is not None:
        lines += ["", selection_markdown(report).rstrip()]
    if broken:
        lines += ["", "## Broken variants", ""]
        lines += [f"- **{r['variant']}** ({r['params']}): {r['error']}" for r in broken]
    lines += ["", *[f"Caveat: {c}" for c in data.caveats]]
    return "\n".join(lines) + "\n"


def equity_from_csv(content: bytes) -> pd.Series:
    frame = pd.read_csv(io.BytesIO(content), parse_dates=["date"], index_col="date")
    return frame["value"]


def write_equity_curves_png(
    curves: dict, benchmark: pd.Series, path: Path, bench_name: str, band=None, n_variants: int = 0
) -> None:
    """The curves of `curves` (the confirmed variants, or every variant of a Cerebro sweep) and the
    benchmark; `band` (low/high per day) draws every screened variant as a faint envelope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analyzers import align_benchmark

    fig, ax = plt.subplots(figsize=(11, 5.5))
    if band is not None:
        ax.fill_between(
            band.index,
            band["low"].values,
            band["high"].values,
            color="tab:blue",
            alpha=0.12,
            linewidth=0,
            label=f"all {n_variants} variants (range)",
        )
    for name, equity in curves.items():
        ax.plot(equity.index, equity.values, label=name, linewidth=1.0)
    first = next(iter(curves.values())) if curves else pd.Series(band["high"].values, index=band.index)
    bench = align_benchmark(benchmark, first.index, base=float(first.iloc[0]))
    ax.plot(bench.index, bench.values, label=f"{bench_name} (rebased)", color="black", linewidth=1.6, linestyle="--")
    ax.set_ylabel("portfolio value")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, ncol=2 if len(curves) > 8 else 1)
    fig.autofmt_xdate()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def chosen_cost_line(result) -> str | None:
    """The chosen variant's cost line (strategies.cost_sensitivity.summary_line) from the
    metrics.json of its holdout run in Cerebro, or None when it has none (not replayed)."""
    if result.report is None:
        return None
    outcome = result.outcomes.get(result.report.summary["chosen"]["name"])
    raw = outcome.files.get("metrics.json") if outcome is not None else None
    metrics = json.loads(raw) if raw else {}
    if "cost_sensitivity" not in metrics:
        return None
    return summary_line(metrics["cost_sensitivity"], metrics["breakeven_cost"], metrics.get("turnover"))


def print_comparison(result) -> None:
    """The sweep's summary on the console (a sweep.SweepResult)."""
    print()
    print(
        f"Sweep results in {result.out_dir} ({len(result.rows)} variants, {result.models} model(s), "
        f"{result.inference_runs} inference run(s), engine {result.engine}; {result.seconds['total']:.1f}s)"
    )
    print("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items() if k != "total"))
    if result.periods is not None:
        print(
            f"  ranked on the selection period {result.periods.text('selection')}; "
            f"holdout {result.periods.text('holdout')} (chooses nothing)"
        )
    if result.engine == "vector":
        print(
            f"  confirmed in Cerebro on the holdout (same metrics as the vector engine): "
            f"{', '.join(result.confirmed) or 'none'}"
        )
    shown = 0
    print(f"  {'variant':32} {'sel. Sharpe':>11} {'holdout Sharpe':>14} {'holdout return':>14} {'trades':>7}")
    for r in result.rows:
        if r["status"] == "ok" and shown >= 20:
            continue  # comparison.csv / .md list every variant
        shown += r["status"] == "ok"
        if r["status"] == "ok":
            print(
                f"  {r['variant'][:32]:32} {format_number(r.get('selection_sharpe')):>11} "
                f"{format_number(r.get('holdout_sharpe')):>14} "
                f"{format_number(r.get('holdout_total_return'), True):>14} "
                f"{format_number(r.get('holdout_n_trades')):>7}"
            )
        else:
            print(f"  {r['variant'][:32]:32} BROKEN: {r['error']}")
    if result.report is not None:
        s = result.report.summary
        chosen = s["chosen"]
        excess = s["excess"]["chosen"] if s.get("excess") else {}
        print(
            f"  chosen: {chosen['name']} (selection rank 1 of {s['n_trials']}): deflated Sharpe "
            f"{format_number(chosen['deflated_sharpe'])} "
            f"({format_number(excess.get('deflated_sharpe'))} over the {YARDSTICK}), "
            f"holdout Sharpe {format_number(chosen['holdout_sharpe'])}, "
            f"PBO {format_number((s.get('pbo') or {}).get('pbo'))}"
        )
        print(f"  verdict: {result.report.verdict}")
        costs = chosen_cost_line(result)
        print(
            f"  chosen, holdout: {costs}"
            if costs
            else "  chosen: no cost table (it was not replayed in Cerebro: --confirm 0)"
        )
    print(f"  wrote {', '.join(result.files) or 'nothing'} in {result.out_dir}")
    if result.report is None:
        print("  no variant worked, so there is no selection report (selection.json, selection.png)")
