"""The alpha report's files: alpha.json (the report without its daily series), alpha.html (tables
with the plot inlined), alpha.png (cumulative rank IC) and the daily rank IC as CSV. The numbers
come from analyzers/ic.py."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from analyzers.ic import DAILY_KEYS
from core.io import atomic_path, json_safe, write_json, write_text


def write_alpha_report(report: dict, out_dir) -> dict:
    """Write alpha.json, alpha.html (self-contained tables + the plot inlined), alpha.png and
    alpha_daily_rank_ic.csv into `out_dir`; return {name: path}."""
    out = Path(out_dir)
    paths = {}
    plain = {k: v for k, v in report.items() if k not in DAILY_KEYS}
    paths["json"] = write_json(out / "alpha.json", json_safe(plain))
    daily = report.get("daily_rank_ic")
    png_b64 = None
    if isinstance(daily, pd.DataFrame) and len(daily):
        paths["csv"] = write_text(out / "alpha_daily_rank_ic.csv", daily_ic_frame(report).to_csv(index_label="date"))
        paths["png"], png_b64 = _plot(report, out / "alpha.png")
    paths["html"] = write_text(out / "alpha.html", _html(plain, png_b64))
    return paths


def daily_ic_frame(report: dict) -> pd.DataFrame:
    """alpha_daily_rank_ic.csv's table: the signal rank IC per horizon (columns "1", "5", ...) and
    the tradeable rank IC, from the fill day, beside it ("tradeable_1", "tradeable_5", ...)."""
    signal = report["daily_rank_ic"]
    frame = signal.rename(columns=str)
    tradeable = report.get("daily_tradeable_rank_ic")
    if isinstance(tradeable, pd.DataFrame):
        frame = frame.join(tradeable.rename(columns=lambda h: f"tradeable_{h}"), how="outer")
    return frame


def _plot(report, path):
    import base64

    from matplotlib.figure import Figure

    daily = report["daily_rank_ic"]
    fig = Figure(figsize=(11, 4.5))
    ax_ic, ax_q = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    for h in daily.columns:
        ax_ic.plot(daily.index, daily[h].fillna(0.0).cumsum(), label=f"{h} d")
    ax_ic.axhline(0, color="black", lw=0.8)
    ax_ic.set(title="Cumulative daily rank IC", ylabel="Σ rank IC")
    ax_ic.legend(title="horizon")
    for label in ax_ic.get_xticklabels():
        label.set_rotation(30)
    hs = list(report["horizons"])
    width = 0.8 / max(len(hs), 1)
    for j, h in enumerate(hs):
        q = report["horizons"][h]["quintile_mean_fwd_excess"]
        ax_q.bar(
            np.arange(1, len(q) + 1) + (j - (len(hs) - 1) / 2) * width,
            [100 * v for v in q.values()],
            width=width,
            label=f"{h} d",
        )
    ax_q.axhline(0, color="black", lw=0.8)
    ax_q.set(title="Mean forward excess return by score quintile", xlabel="quintile (5 = top)", ylabel="%")
    ax_q.legend(title="horizon")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    return Path(path), base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _fmt(v, pct=False):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{100 * v:.3f} %" if pct else f"{v:.4f}"
    return html.escape(str(v))


def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(report, png_b64=None) -> str:
    hs = report["horizons"]
    summary_rows = []
    for h, r in hs.items():
        trade = r.get("tradeable_rank_ic", {})
        summary_rows.append(
            [
                h,
                _fmt(trade.get("mean")),
                _fmt(trade.get("se")),
                _fmt(trade.get("t_stat")),
                _fmt(r["ic"]["mean"]),
                _fmt(r["rank_ic"]["mean"]),
                _fmt(r["rank_ic"].get("se")),
                _fmt(r["rank_ic"]["icir"]),
                _fmt(r["rank_ic"]["t_stat"]),
                _fmt(r["rank_ic"].get("mean_nonoverlap")),
                _fmt(r["rank_ic"].get("t_stat_nonoverlap")),
                _fmt(r["rank_ic"]["n_independent_days"]),
                _fmt(r["rank_ic"]["t_stat_naive"]),
                _fmt(r["hit_rate"], True),
                _fmt(r["top_minus_bottom"], True),
            ]
        )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Alpha quality</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#eee}</style></head><body>",
        "<h1>Alpha quality</h1>",
        f"<p>{_fmt(report.get('n_stocks'))} stocks, {_fmt(report.get('n_days'))} days with a score, "
        f"{_fmt(report.get('start'))} to {_fmt(report.get('end'))}. Forward returns are in excess "
        "of the benchmark. Each t and standard error (se) is of the mean beside it, over the same days: "
        "Newey–West (HAC, Bartlett kernel, h − 1 lags) over all days; the non-overlapping columns "
        "take every h-th day, with their own mean; the naive t over all days without lags is shown "
        "for comparison and overstates significance for h &gt; 1. "
        "The tradeable rank IC measures the forward return from the fill day (one bar after the "
        "score: the next close on close-only data); the signal IC and rank IC from the score's own "
        "close.</p>",
        "<h2>Summary</h2>",
        _table(
            [
                "horizon (days)",
                "tradeable rank IC",
                "tradeable se (HAC)",
                "tradeable t (HAC)",
                "signal IC",
                "signal rank IC",
                "signal rank se (HAC)",
                "rank ICIR",
                "rank IC t (HAC)",
                "rank IC, non-overlapping days",
                "its t",
                "non-overlapping days",
                "rank IC t (naive)",
                "hit rate",
                "Q5 − Q1",
            ],
            summary_rows,
        ),
    ]
    if png_b64:
        parts.append(
            f"<img alt='cumulative rank IC and quintile returns' "
            f"src='data:image/png;base64,{png_b64}' style='max-width:100%'>"
        )
    parts.append("<h2>Quintile mean forward excess return</h2>")
    q_header = ["horizon"] + [f"Q{q}" for q in next(iter(hs.values()))["quintile_mean_fwd_excess"]] if hs else []
    parts.append(
        _table(q_header, [[h] + [_fmt(v, True) for v in r["quintile_mean_fwd_excess"].values()] for h, r in hs.items()])
    )
    parts.append("<h2>Calibration (p = (score + 1) / 2)</h2>")
    for h, r in hs.items():
        parts.append(f"<h3>{html.escape(h)}-day horizon</h3>")
        parts.append(
            _table(
                ["bin", "p range", "stock-days", "mean p", "realised P(excess &gt; 0)"],
                [
                    [
                        c["bin"],
                        f"{c['p_low']:.3f}–{c['p_high']:.3f}",
                        c["count"],
                        _fmt(c["mean_p"]),
                        _fmt(c["realised"]),
                    ]
                    for c in r["calibration"]
                ],
            )
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)
