"""A sweep's selection report: rank on the selection period, judge on the holdout, say what the
choice cost. Engine-independent: it takes days x variants matrices of daily returns, whoever made them.

    report = selection_report(variants, selection_returns, holdout_returns,
                              selection_period=("2013-01-01", "2016-12-31"),
                              holdout_period=("2017-01-01", "2022-12-31"))
    report.table          # one row per variant: Sharpe per period, both ranks, chosen
    report.summary        # selection.json's content
    report.verdict        # one plain sentence
    selection_markdown(report)                     # a section for comparison.md
    comparison_columns(report, sel_metrics, hold_metrics)   # columns for comparison.csv
    write_selection(out_dir, report)               # selection.json + selection.png, atomically

Units: tables and sentences show annualised Sharpe ratios (daily x sqrt(252), as metrics.json);
the statistics (variance of the trials' Sharpes, expected maximum, DSR, PBO) are computed on
per-period (daily) Sharpe ratios, as their formulas require, and selection.json names the unit
of every number. Everything but write_selection is pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analyzers.collect import json_safe
from analyzers.selection import (
    deflated_sharpe,
    expected_max_sharpe,
    first_bad,
    pbo,
    probabilistic_sharpe,
    return_moments,
    sharpe_columns,
)
from core.errors import ConfigError
from core.io import atomic_path, write_json

PERIODS_PER_YEAR = 252
DSR_BAR = 0.95  # the usual confidence bar (Bailey & López de Prado 2014)
DSR_WEAK = 0.50


# ----------------------------------------------------------------------------- inputs
def _names(variants) -> tuple[list[str], list[str]]:
    """(names, params texts) from a DataFrame with 'name' (and optional 'params') or a list of names."""
    if isinstance(variants, pd.DataFrame):
        if "name" not in variants:
            raise ConfigError(f"variants table has columns {list(variants.columns)}; it needs a 'name' column")
        names = [str(n) for n in variants["name"]]
        params = [str(p) for p in variants["params"]] if "params" in variants else [""] * len(names)
    else:
        names, params = [str(n) for n in variants], [""] * len(list(variants))
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"variants table names {dup} more than once; every variant needs its own name")
    if not names:
        raise ConfigError("variants table is empty: a selection needs at least one variant")
    return names, params


def _matrix(returns, names: list[str], arg: str) -> np.ndarray:
    """A days x variants array in the order of `names` (a DataFrame is matched by column). An
    array (float32, or a np.memmap of a sweep's 100,000 variants) is checked in column blocks and
    returned as it is, not copied: the statistics read it in blocks (analyzers.selection.column_blocks)."""
    if isinstance(returns, pd.DataFrame):
        missing = [n for n in names if n not in returns.columns]
        if missing:
            raise ConfigError(f"{arg} has no column for variant(s) {missing[:5]}; give one column per variant")
        returns = returns[names].to_numpy(dtype="float64")
    x = returns if isinstance(returns, np.ndarray) else np.asarray(returns, dtype="float64")
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ConfigError(f"{arg} must be days x variants with {len(names)} columns, got shape {x.shape}")
    if x.shape[0] < 2:
        raise ConfigError(f"{arg} has {x.shape[0]} day(s); a Sharpe ratio needs at least 2")
    bad = first_bad(x)
    if bad is not None:
        count, row, col = bad
        raise ConfigError(
            f"{arg} has {count} NaN or infinite value(s) (first: variant {names[col]!r}, "
            f"day {row}); a day without a position returns 0.0"
        )
    return x


def _column(matrix: np.ndarray, col: int) -> np.ndarray:
    return np.asarray(matrix[:, col], dtype="float64")


def _period(period, arg: str) -> list[str] | None:
    if period is None:
        return None
    start, end = (str(pd.Timestamp(p).date()) for p in period)
    if start > end:
        raise ConfigError(f"{arg} = {start} .. {end}: the start comes after the end")
    return [start, end]


# ----------------------------------------------------------------------------- pure pieces
def rank_correlation(a, b) -> float:
    """Spearman rank correlation (ties averaged); NaN with fewer than 3 variants or a constant side."""
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def rank_variants(
    names, selection_daily_sharpe, holdout_daily_sharpe, params=None, periods_per_year: int = PERIODS_PER_YEAR
) -> pd.DataFrame:
    """One row per variant, best selection Sharpe first: rank 1 = best; ties keep the table's
    order. `chosen` marks the top of the selection ranking; the holdout rank only reports."""
    table = pd.DataFrame(
        {
            "name": list(names),
            "params": list(params) if params is not None else [""] * len(names),
            "selection_sharpe": np.asarray(selection_daily_sharpe) * math.sqrt(periods_per_year),
            "holdout_sharpe": np.asarray(holdout_daily_sharpe) * math.sqrt(periods_per_year),
            "selection_sharpe_daily": np.asarray(selection_daily_sharpe, dtype="float64"),
            "holdout_sharpe_daily": np.asarray(holdout_daily_sharpe, dtype="float64"),
        }
    )
    table["selection_rank"] = table["selection_sharpe_daily"].rank(ascending=False, method="first").astype(int)
    table["holdout_rank"] = table["holdout_sharpe_daily"].rank(ascending=False, method="first").astype(int)
    table["chosen"] = table["selection_rank"] == 1
    return table.sort_values("selection_rank", kind="stable").reset_index(drop=True)


def verdict(
    n_trials: int,
    chosen: str,
    dsr: float,
    holdout_sharpe: float,
    over: str | None = None,
    holdout_excess_sharpe: float | None = None,
) -> str:
    """One plain sentence from the chosen variant's deflated Sharpe (thresholds 0.95 and 0.5) and
    its holdout Sharpe (annualised), the honest estimate of what it will do. Without `over` the
    DSR is about its Sharpe above zero (a long-only book in a rising market clears that without
    any skill); with `over` (a benchmark's name) `dsr` must be the DSR of its returns in excess
    of that benchmark, and the sentence speaks of its edge over it."""
    who = f"the only variant ({chosen})" if n_trials == 1 else f"the best of {n_trials} variants ({chosen})"
    stat = "probabilistic Sharpe" if n_trials == 1 else "deflated Sharpe"
    luck = "luck" if n_trials == 1 else "selection luck"
    what = f"its edge over the {over}" if over else "its Sharpe above zero"
    measured = f"{stat} of {dsr:.2f}" + (f" on its returns over the {over}" if over else "")
    if not math.isfinite(dsr):
        judged = f"{who} has no defined {stat}"
    elif dsr >= DSR_BAR:
        judged = f"{who} has a {measured}: {what} is unlikely to be {luck} alone (the 0.95 bar is met)"
    elif dsr >= DSR_WEAK:
        judged = f"{who} has a {measured}: weak evidence, below the 0.95 bar, that {what} is more than {luck}"
    else:
        judged = f"{who} has a {measured}: no evidence that {what} is more than {luck}"
    hold = "n/a" if not math.isfinite(holdout_sharpe) else f"{holdout_sharpe:.2f}"
    if over and holdout_excess_sharpe is not None and math.isfinite(holdout_excess_sharpe):
        hold += f" ({holdout_excess_sharpe:.2f} over the {over})"
    return f"{judged}; its holdout Sharpe, the honest estimate, is {hold}."


@dataclass
class SelectionReport:
    table: pd.DataFrame  # rank_variants(...) output
    summary: dict  # selection.json content (JSON-safe)
    verdict: str
    pbo_result: object | None  # analyzers.selection.PBOResult, or None when PBO cannot be computed

    @property
    def chosen(self) -> str:
        return str(self.table.loc[self.table["chosen"], "name"].iloc[0])


def selection_report(
    variants,
    selection_returns,
    holdout_returns,
    selection_period=None,
    holdout_period=None,
    n_splits: int = 16,
    periods_per_year: int = PERIODS_PER_YEAR,
    benchmark=None,
    benchmark_name: str = "benchmark",
) -> SelectionReport:
    """Rank the variants on the selection period only, judge the chosen one on the holdout.

    variants: a DataFrame with 'name' (and optionally 'params') or a list of names.
    selection_returns, holdout_returns: days x variants daily returns (DataFrames with one column
    per variant name, or arrays in the table's order; float32 is fine). The periods are labels for
    the report, e.g. ("2013-01-01", "2016-12-31").
    benchmark: optional (selection, holdout) pair of daily return series of a yardstick on the
    same days (e.g. the equal-weighted universe): the summary then also gives the chosen variant's
    deflated Sharpe of its returns in excess of it (the trials' variance taken over their excess
    Sharpes), and the verdict judges that edge instead of the Sharpe above zero."""
    names, params = _names(variants)
    sel = _matrix(selection_returns, names, "selection_returns")
    hold = _matrix(holdout_returns, names, "holdout_returns")
    sel_period, hold_period = _separate_periods(selection_period, holdout_period)
    sel_sr, hold_sr = sharpe_columns(sel), sharpe_columns(hold)
    table = rank_variants(names, sel_sr, hold_sr, params, periods_per_year)
    n = len(names)
    variance = float(np.var(sel_sr, ddof=1)) if n > 1 else 0.0
    chosen = str(table["name"].iloc[0])
    col = names.index(chosen)
    chosen_sel, chosen_hold = _column(sel, col), _column(hold, col)
    moments = return_moments(chosen_sel)
    dsr = deflated_sharpe(chosen_sel, n, variance)
    annual = math.sqrt(periods_per_year)
    hold_sharpe = float(hold_sr[col]) * annual
    pbo_result, pbo_note = _pbo_or_why_not(sel, n_splits)
    rho = rank_correlation(sel_sr, hold_sr)
    excess = None
    if benchmark is not None:
        excess = _excess_block(sel, hold, benchmark, col, n, annual, benchmark_name)
        sentence = verdict(
            n,
            chosen,
            excess["chosen"]["deflated_sharpe"],
            hold_sharpe,
            benchmark_name,
            excess["chosen"]["holdout_sharpe"],
        )
    else:
        sentence = verdict(n, chosen, dsr, hold_sharpe)
    chosen_row = table.iloc[0]
    summary = json_safe(
        {
            "periods": {
                "selection": sel_period,
                "holdout": hold_period,
                "selection_days": int(sel.shape[0]),
                "holdout_days": int(hold.shape[0]),
            },
            "n_trials": n,
            "sharpe_units": {"annualised": f"daily Sharpe x sqrt({periods_per_year})", "daily": "mean / std (ddof=1)"},
            "selection_sharpe_variance_daily": variance,
            "selection_sharpe_variance_annualised": variance * periods_per_year,
            "expected_max_sharpe_daily": expected_max_sharpe(n, variance),
            "expected_max_sharpe_annualised": expected_max_sharpe(n, variance) * annual,
            "chosen": {
                "name": chosen,
                "params": chosen_row["params"],
                "selection_sharpe": float(chosen_row["selection_sharpe"]),
                "selection_sharpe_daily": float(chosen_row["selection_sharpe_daily"]),
                "selection_days": moments["n_obs"],
                "selection_skew": moments["skew"],
                "selection_kurtosis": moments["kurtosis"],
                "selection_psr": probabilistic_sharpe(chosen_sel),
                "deflated_sharpe": dsr,
                "holdout_sharpe": hold_sharpe,
                "holdout_rank": int(chosen_row["holdout_rank"]),
                "holdout_psr": probabilistic_sharpe(chosen_hold),
            },
            "excess": excess,
            "rank_correlation_spearman": rho,
            "pbo": pbo_result.summary() if pbo_result is not None else None,
            "pbo_note": pbo_note,
            "verdict": sentence,
            "variants": table[
                ["name", "params", "selection_sharpe", "holdout_sharpe", "selection_rank", "holdout_rank"]
            ].to_dict(orient="records"),
        }
    )
    return SelectionReport(table, summary, sentence, pbo_result)


def _separate_periods(selection_period, holdout_period) -> tuple:
    """The two periods as labels; ConfigError when they share a day (a holdout chooses nothing)."""
    sel_period, hold_period = _period(selection_period, "selection_period"), _period(holdout_period, "holdout_period")
    if sel_period and hold_period and sel_period[1] >= hold_period[0] and hold_period[1] >= sel_period[0]:
        raise ConfigError(
            f"selection_period {sel_period[0]} .. {sel_period[1]} overlaps holdout_period "
            f"{hold_period[0]} .. {hold_period[1]}: a holdout chooses nothing, so it must not share days "
            "with the selection; move one of them"
        )
    return sel_period, hold_period


def _pbo_or_why_not(sel: np.ndarray, n_splits: int) -> tuple:
    """(PBO result, None), or (None, why it cannot be computed) for one variant or too few days."""
    if sel.shape[1] < 2:
        return None, "one variant: nothing was chosen, so nothing can be overfitted by the choice"
    if sel.shape[0] < 2 * n_splits:
        return None, f"{sel.shape[0]} selection days are too few for {n_splits} blocks"
    return pbo(sel, n_splits=n_splits), None


def _excess_block(sel: np.ndarray, hold: np.ndarray, benchmark, col: int, n: int, annual: float, name: str) -> dict:
    """The chosen variant judged on its returns in excess of a benchmark, per period."""
    if not isinstance(benchmark, (tuple, list)) or len(benchmark) != 2:
        raise ConfigError(
            "benchmark must be a (selection, holdout) pair of daily return series on the same days "
            "as the return matrices"
        )
    pair = []
    for label, matrix, series in (("selection", sel, benchmark[0]), ("holdout", hold, benchmark[1])):
        b = np.asarray(series, dtype="float64").ravel()
        if len(b) != matrix.shape[0] or not np.isfinite(b).all():
            raise ConfigError(
                f"benchmark's {label} series has {len(b)} values (finite: {bool(np.isfinite(b).all())}); "
                f"it needs one finite daily return per {label} day ({matrix.shape[0]})"
            )
        pair.append(b)
    b_sel, b_hold = pair
    ex_sr, ex_hold_sr = sharpe_columns(sel, minus=b_sel), sharpe_columns(hold, minus=b_hold)
    ex_sel, ex_hold = _column(sel, col) - b_sel, _column(hold, col) - b_hold  # the chosen variant's
    variance = float(np.var(ex_sr, ddof=1)) if n > 1 else 0.0
    return {
        "over": name,
        "sharpe_variance_daily": variance,
        "expected_max_sharpe_annualised": expected_max_sharpe(n, variance) * annual,
        "chosen": {
            "selection_sharpe": float(ex_sr[col]) * annual,
            "selection_psr": probabilistic_sharpe(ex_sel),
            "deflated_sharpe": deflated_sharpe(ex_sel, n, variance),
            "holdout_sharpe": float(ex_hold_sr[col]) * annual,
            "holdout_psr": probabilistic_sharpe(ex_hold),
        },
    }


def comparison_columns(report: SelectionReport, selection_metrics=None, holdout_metrics=None) -> pd.DataFrame:
    """The comparison.csv columns of the selection: name, params, selection_sharpe, holdout_sharpe,
    selection_rank, holdout_rank, chosen, then every other per-period metric as selection_<key> /
    holdout_<key>. *_metrics: {variant name: metrics dict} or a DataFrame indexed by name."""
    out = report.table[
        ["name", "params", "selection_sharpe", "holdout_sharpe", "selection_rank", "holdout_rank", "chosen"]
    ].copy()
    for prefix, metrics in (("selection", selection_metrics), ("holdout", holdout_metrics)):
        if metrics is None:
            continue
        frame = metrics if isinstance(metrics, pd.DataFrame) else pd.DataFrame.from_dict(metrics, orient="index")
        frame = frame.drop(columns=[c for c in ("sharpe",) if c in frame]).add_prefix(f"{prefix}_")
        out = out.join(frame, on="name")
    return out


def _fmt(x, digits=2):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def selection_markdown(report: SelectionReport, top: int = 10) -> str:
    """A '## Selection' section for comparison.md."""
    s = report.summary
    c = s["chosen"]
    periods = s["periods"]
    sel = " .. ".join(periods["selection"]) if periods["selection"] else "selection period"
    hold = " .. ".join(periods["holdout"]) if periods["holdout"] else "holdout period"
    lines = [
        "## Selection: chosen on the selection period, judged on the holdout",
        "",
        f"**{report.verdict[0].upper() + report.verdict[1:]}**",
        "",
        (
            f"- Ranked on {sel} ({periods['selection_days']} days) only; {hold} ({periods['holdout_days']} days) "
            "is held out: the chosen variant's holdout Sharpe is the honest estimate, the others' are context."
        ),
        (
            f"- Trials: {s['n_trials']}; variance of their selection Sharpes "
            f"{_fmt(s['selection_sharpe_variance_annualised'], 4)} annualised "
            f"({s['selection_sharpe_variance_daily']:.3g} daily); best Sharpe expected from luck alone "
            f"{_fmt(s['expected_max_sharpe_annualised'])} annualised."
        ),
        (
            f"- Chosen: `{c['name']}`: selection Sharpe {_fmt(c['selection_sharpe'])}, deflated Sharpe "
            f"{_fmt(c['deflated_sharpe'])}, holdout Sharpe {_fmt(c['holdout_sharpe'])} "
            f"(holdout rank {c['holdout_rank']} of {s['n_trials']})."
        ),
        (
            f"- Spearman rank correlation of selection and holdout Sharpe across variants: "
            f"{_fmt(s['rank_correlation_spearman'])}."
        ),
    ]
    if s.get("excess"):
        e = s["excess"]
        lines.append(
            f"- Over the {e['over']}: the chosen variant's excess Sharpe "
            f"{_fmt(e['chosen']['selection_sharpe'])} on selection, deflated Sharpe "
            f"{_fmt(e['chosen']['deflated_sharpe'])}, holdout excess Sharpe "
            f"{_fmt(e['chosen']['holdout_sharpe'])}."
        )
    if s["pbo"]:
        p = s["pbo"]
        lines.append(
            f"- PBO (CSCV, {p['n_splits']} blocks, {p['n_combinations']} splits of the selection period): "
            f"{_fmt(p['pbo'])}; the in-sample best lost out of sample in "
            f"{_fmt(100 * p['prob_oos_loss'], 0)} % of splits; slope of OOS on IS Sharpe {_fmt(p['slope'])}."
        )
    else:
        lines.append(f"- PBO: not computed ({s['pbo_note']}).")
    lines += [
        "",
        "| selection rank | variant | selection Sharpe | holdout Sharpe | holdout rank |",
        "|---:|---|---:|---:|---:|",
    ]
    for row in report.table.head(top).itertuples():
        mark = " (chosen)" if row.chosen else ""
        lines.append(
            f"| {row.selection_rank} | `{row.name}`{mark} | {_fmt(row.selection_sharpe)} | "
            f"{_fmt(row.holdout_sharpe)} | {row.holdout_rank} |"
        )
    if len(report.table) > top:
        lines.append(f"\n({len(report.table) - top} more in comparison.csv and selection.json.)")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the writer (I/O)
def selection_png(report: SelectionReport, path) -> Path:
    """Selection against holdout Sharpe (annualised), one point per variant, the chosen one marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = report.table
    fig, ax = plt.subplots(figsize=(6.5, 5))
    ax.scatter(t["selection_sharpe"], t["holdout_sharpe"], s=14, alpha=0.6, color="tab:blue", label="variant")
    chosen = t[t["chosen"]]
    ax.scatter(
        chosen["selection_sharpe"],
        chosen["holdout_sharpe"],
        s=120,
        marker="*",
        color="tab:red",
        zorder=3,
        label=f"chosen: {report.chosen}"[:60],
    )
    lo = float(np.nanmin([t["selection_sharpe"].min(), t["holdout_sharpe"].min(), 0.0]))
    hi = float(np.nanmax([t["selection_sharpe"].max(), t["holdout_sharpe"].max(), 0.0]))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="holdout = selection")
    ax.axhline(0, color="black", lw=0.5)
    ax.axvline(0, color="black", lw=0.5)
    s = report.summary
    periods = s["periods"]
    ax.set_xlabel(
        "selection Sharpe (annualised)"
        + (f", {periods['selection'][0][:4]}–{periods['selection'][1][:4]}" if periods["selection"] else "")
    )
    ax.set_ylabel(
        "holdout Sharpe (annualised)"
        + (f", {periods['holdout'][0][:4]}–{periods['holdout'][1][:4]}" if periods["holdout"] else "")
    )
    pbo_text = _fmt(s["pbo"]["pbo"]) if s["pbo"] else "n/a"
    dsr_text = _fmt(s["chosen"]["deflated_sharpe"])
    if s.get("excess"):
        dsr_text += f" ({_fmt(s['excess']['chosen']['deflated_sharpe'])} over the {s['excess']['over']})"
    ax.set_title(
        f"{s['n_trials']} variants: Spearman {_fmt(s['rank_correlation_spearman'])}, DSR {dsr_text}, PBO {pbo_text}",
        fontsize=10,
    )
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def write_selection(out_dir, report: SelectionReport) -> dict:
    """selection.json and selection.png in `out_dir`, each written atomically; returns their paths."""
    out_dir = Path(out_dir)
    return {
        "json": str(write_json(out_dir / "selection.json", report.summary)),
        "png": str(selection_png(report, out_dir / "selection.png")),
    }
