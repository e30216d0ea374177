"""The sweep's selection report on synthetic return matrices, against hand computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analyzers.selection import deflated_sharpe_from_stats, pbo
from analyzers.selection_report import (
    comparison_columns,
    rank_correlation,
    selection_markdown,
    selection_report,
    verdict,
    write_selection,
)
from core.errors import ConfigError

SEL = ("2013-01-01", "2016-12-31")
HOLD = ("2017-01-01", "2022-12-31")


def _frames(seed=0, n_var=12, sel_days=504, hold_days=756, sel_edge=None, hold_edge=None):
    rng = np.random.default_rng(seed)
    names = [f"v{i:02d}" for i in range(n_var)]
    sel = pd.DataFrame(rng.normal(0, 0.01, (sel_days, n_var)), columns=names)
    hold = pd.DataFrame(rng.normal(0, 0.01, (hold_days, n_var)), columns=names)
    for name, edge in (sel_edge or {}).items():
        sel[name] += edge
    for name, edge in (hold_edge or {}).items():
        hold[name] += edge
    table = pd.DataFrame({"name": names, "params": [f"top_k={i}" for i in range(n_var)]})
    return table, sel, hold


def _sharpe(x):
    return x.mean() / x.std(ddof=1) * math.sqrt(252)


def test_ranked_on_the_selection_period_only():
    # v03 is best on selection, v09 on the holdout: the choice is v03 and its holdout is reported
    table, sel, hold = _frames(sel_edge={"v03": 0.002}, hold_edge={"v09": 0.003})
    report = selection_report(table, sel, hold, SEL, HOLD)
    assert report.chosen == "v03"
    row = report.table.iloc[0]
    assert (row["name"], row["selection_rank"], bool(row["chosen"])) == ("v03", 1, True)
    assert row["selection_sharpe"] == pytest.approx(_sharpe(sel["v03"].to_numpy()), rel=1e-12)
    assert row["holdout_sharpe"] == pytest.approx(_sharpe(hold["v03"].to_numpy()), rel=1e-12)
    by_hand = sorted(table["name"], key=lambda n: -_sharpe(hold[n].to_numpy()))
    assert report.table.set_index("name").loc[by_hand, "holdout_rank"].tolist() == list(range(1, 13))
    assert report.summary["chosen"]["holdout_sharpe"] == pytest.approx(row["holdout_sharpe"])
    assert report.summary["chosen"]["holdout_rank"] == by_hand.index("v03") + 1
    # the holdout cannot change the choice
    other = selection_report(table, sel, hold * -1.0, SEL, HOLD)
    assert other.chosen == "v03"


def test_statistics_by_hand():
    table, sel, hold = _frames(seed=1, sel_edge={"v05": 0.0015})
    report = selection_report(table, sel, hold, SEL, HOLD, n_splits=8)
    s = report.summary
    daily = sel.mean() / sel.std(ddof=1)
    assert s["n_trials"] == 12
    assert s["selection_sharpe_variance_daily"] == pytest.approx(daily.var(ddof=1), rel=1e-12)
    assert s["selection_sharpe_variance_annualised"] == pytest.approx(daily.var(ddof=1) * 252, rel=1e-12)
    assert report.chosen == daily.idxmax()
    x = sel[report.chosen].to_numpy()
    d = x - x.mean()
    skew, kurt = np.mean(d**3) / np.mean(d**2) ** 1.5, np.mean(d**4) / np.mean(d**2) ** 2
    expected = deflated_sharpe_from_stats(x.mean() / x.std(ddof=1), len(x), skew, kurt, 12, daily.var(ddof=1))
    assert s["chosen"]["deflated_sharpe"] == pytest.approx(expected, rel=1e-12)
    assert s["pbo"]["pbo"] == pbo(sel.to_numpy(), n_splits=8).pbo
    # Spearman = Pearson correlation of the ranks
    h = hold.mean() / hold.std(ddof=1)
    assert s["rank_correlation_spearman"] == pytest.approx(np.corrcoef(daily.rank(), h.rank())[0, 1], rel=1e-12)
    assert s["periods"] == {"selection": list(SEL), "holdout": list(HOLD), "selection_days": 504, "holdout_days": 756}


def test_rank_correlation_of_a_reversed_order_is_minus_one():
    assert rank_correlation([1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)
    assert math.isnan(rank_correlation([1, 2], [2, 1]))


def test_verdict_thresholds():
    assert "no evidence that its Sharpe above zero is more than selection luck" in verdict(240, "x", 0.31, 0.2)
    assert verdict(240, "x", 0.31, 0.2).startswith("the best of 240 variants (x) has a deflated Sharpe of 0.31")
    assert "weak evidence" in verdict(240, "x", 0.7, 0.2)
    assert "0.95 bar is met" in verdict(240, "x", 0.95, 0.2)
    assert "probabilistic Sharpe" in verdict(1, "x", 0.99, 0.5)
    assert verdict(8, "x", 0.2, 0.456).endswith("its holdout Sharpe, the honest estimate, is 0.46.")
    over = verdict(240, "x", 0.31, 0.8, "equal-weight universe", 0.05)
    assert "deflated Sharpe of 0.31 on its returns over the equal-weight universe" in over
    assert "no evidence that its edge over the equal-weight universe is more than selection luck" in over
    assert over.endswith("is 0.80 (0.05 over the equal-weight universe).")


def test_a_common_market_drift_passes_zero_but_not_the_yardstick():
    """Long-only variants in a rising market: every Sharpe is above zero (raw DSR high), but over
    the equal-weighted universe they share, nothing is left (excess DSR low)."""
    rng = np.random.default_rng(12)
    names = [f"v{i}" for i in range(40)]
    market = [rng.normal(0.0012, 0.01, days) for days in (504, 756)]
    sel, hold = (pd.DataFrame(m[:, None] + rng.normal(0, 0.003, (len(m), 40)), columns=names) for m in market)
    raw = selection_report(names, sel, hold, SEL, HOLD)
    assert raw.summary["chosen"]["deflated_sharpe"] > 0.95 and "its Sharpe above zero is unlikely" in raw.verdict
    rep = selection_report(names, sel, hold, SEL, HOLD, benchmark=market, benchmark_name="equal-weight universe")
    e = rep.summary["excess"]
    x = sel[rep.chosen].to_numpy() - market[0]
    ex_daily = sel.sub(market[0], axis=0).mean() / sel.sub(market[0], axis=0).std(ddof=1)
    d = x - x.mean()
    by_hand = deflated_sharpe_from_stats(
        x.mean() / x.std(ddof=1),
        len(x),
        np.mean(d**3) / np.mean(d**2) ** 1.5,
        np.mean(d**4) / np.mean(d**2) ** 2,
        40,
        ex_daily.var(ddof=1),
    )
    assert e["chosen"]["deflated_sharpe"] == pytest.approx(by_hand, rel=1e-12) and by_hand < 0.95
    assert e["chosen"]["holdout_sharpe"] == pytest.approx(_sharpe(hold[rep.chosen].to_numpy() - market[1]))
    assert "over the equal-weight universe" in rep.verdict and "0.95 bar is met" not in rep.verdict
    assert "Over the equal-weight universe" in selection_markdown(rep)
    with pytest.raises(ConfigError, match="benchmark's holdout series"):
        selection_report(names, sel, hold, benchmark=(market[0], market[1][:-1]))


def test_a_real_edge_passes_and_noise_does_not():
    table, sel, hold = _frames(seed=2, n_var=200, sel_edge={"v07": 0.003}, hold_edge={"v07": 0.003})
    strong = selection_report(table, sel, hold, SEL, HOLD)
    assert strong.chosen == "v07" and strong.summary["chosen"]["deflated_sharpe"] >= 0.95
    assert "0.95 bar is met" in strong.verdict
    assert strong.summary["pbo"]["pbo"] < 0.05
    table, sel, hold = _frames(seed=3, n_var=200)
    noise = selection_report(table, sel, hold, SEL, HOLD)
    assert noise.summary["chosen"]["deflated_sharpe"] < 0.95
    # the best of 200 noise strategies looks good on selection, as the expected maximum predicts
    assert noise.summary["chosen"]["selection_sharpe_daily"] == pytest.approx(
        noise.summary["expected_max_sharpe_daily"], rel=0.35
    )


def test_float32_arrays_and_name_lists_work():
    table, sel, hold = _frames(seed=4)
    a = selection_report(list(table["name"]), sel.to_numpy(np.float32), hold.to_numpy(np.float32))
    b = selection_report(table, sel.astype(np.float32), hold.astype(np.float32))
    assert a.chosen == b.chosen
    assert a.summary["chosen"]["deflated_sharpe"] == pytest.approx(b.summary["chosen"]["deflated_sharpe"])


def test_one_variant_and_short_periods():
    table, sel, hold = _frames(seed=5, n_var=1)
    one = selection_report(table, sel, hold)
    assert one.summary["pbo"] is None and "one variant" in one.summary["pbo_note"]
    assert one.summary["rank_correlation_spearman"] is None  # NaN becomes null in selection.json
    json.dumps(one.summary, allow_nan=False)
    assert one.summary["chosen"]["deflated_sharpe"] == pytest.approx(one.summary["chosen"]["selection_psr"])
    table, sel, hold = _frames(seed=5, n_var=3, sel_days=20)
    short = selection_report(table, sel, hold)
    assert short.summary["pbo"] is None and "too few" in short.summary["pbo_note"]


def test_comparison_columns_and_markdown():
    table, sel, hold = _frames(seed=6)
    report = selection_report(table, sel, hold, SEL, HOLD)
    metrics = {n: {"sharpe": 9.0, "cagr": i / 100, "max_drawdown": -i / 10} for i, n in enumerate(table["name"])}
    cols = comparison_columns(report, metrics, pd.DataFrame.from_dict(metrics, orient="index"))
    assert list(cols.columns[:7]) == [
        "name",
        "params",
        "selection_sharpe",
        "holdout_sharpe",
        "selection_rank",
        "holdout_rank",
        "chosen",
    ]
    assert {"selection_cagr", "holdout_max_drawdown"} <= set(cols.columns) and "selection_sharpe_x" not in cols
    row = cols.set_index("name").loc["v04"]
    assert (row["selection_cagr"], row["holdout_max_drawdown"]) == (0.04, -0.4)
    text = selection_markdown(report)
    assert report.verdict[1:] in text and f"`{report.chosen}` (chosen)" in text
    assert "Spearman rank correlation" in text and "PBO (CSCV, 16 blocks, 12870 splits" in text


def test_writer_writes_json_and_png(tmp_path):
    table, sel, hold = _frames(seed=7)
    report = selection_report(table, sel, hold, SEL, HOLD)
    paths = write_selection(tmp_path / "sweep", report)
    saved = json.loads((tmp_path / "sweep" / "selection.json").read_text())
    assert saved["verdict"] == report.verdict and saved["n_trials"] == 12
    assert saved["chosen"]["name"] == report.chosen and len(saved["variants"]) == 12
    assert (tmp_path / "sweep" / "selection.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["selection.json", "selection.png"]
    assert set(paths) == {"json", "png"}


@pytest.mark.parametrize(
    "change, arg",
    [
        (lambda t, s, h: (t, s.drop(columns="v01"), h), "selection_returns"),
        (lambda t, s, h: (t, s, h.assign(v02=np.nan)), "holdout_returns"),
        (lambda t, s, h: (pd.concat([t, t.iloc[:1]]), s, h), "more than once"),
        (lambda t, s, h: (t.rename(columns={"name": "variant"}), s, h), "'name' column"),
        (lambda t, s, h: (t, s.iloc[:1], h), "selection_returns"),
    ],
)
def test_bad_input_is_named(change, arg):
    table, sel, hold = _frames(seed=8)
    with pytest.raises(ConfigError, match=arg):
        selection_report(*change(table, sel, hold))
    with pytest.raises(ConfigError, match="selection_period"):
        selection_report(table, sel, hold, selection_period=("2016-12-31", "2013-01-01"))
    with pytest.raises(ConfigError, match="overlaps holdout_period"):
        selection_report(table, sel, hold, ("2013-01-01", "2017-06-30"), HOLD)


# ----------------------------------------------------------------------------- bounded memory
def test_a_large_returns_matrix_is_read_in_blocks_not_copied(tmp_path, monkeypatch):
    """A float32 file (np.memmap) of 3,000 variants x 2,000 days: with 1 MB blocks the report
    allocates a fraction of one float64 copy of the matrix (48 MB; the whole-matrix code made
    several), and gives the numbers of the whole-matrix computation (the same report on in-memory
    float64 arrays; Sharpes by hand)."""
    import tracemalloc

    import analyzers.selection

    rng = np.random.default_rng(5)
    days, n = 2000, 3000
    sel = np.memmap(tmp_path / "sel.f32", dtype="float32", mode="w+", shape=(days, n))
    hold = np.memmap(tmp_path / "hold.f32", dtype="float32", mode="w+", shape=(days, n))
    sel[:] = rng.normal(3e-4, 0.01, (days, n))
    hold[:] = rng.normal(3e-4, 0.01, (days, n))
    yardstick = (rng.normal(2e-4, 0.008, days), rng.normal(2e-4, 0.008, days))
    names = [f"v{i}" for i in range(n)]
    in_memory = (np.array(sel, dtype="float64"), np.array(hold, dtype="float64"))
    whole = selection_report(names, *in_memory, benchmark=yardstick)

    monkeypatch.setattr(analyzers.selection, "BLOCK_BYTES", 1 << 20)
    tracemalloc.start()
    tracemalloc.reset_peak()
    blocked = selection_report(names, sel, hold, benchmark=yardstick)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MB"  # one float64 copy alone would be 48 MB

    x = np.array(sel, dtype="float64")
    by_hand = x.mean(axis=0) / x.std(axis=0, ddof=1)
    assert np.allclose(blocked.table.sort_values("name")["selection_sharpe_daily"], by_hand[np.argsort(names)])
    assert blocked.summary == whole.summary
    assert np.array_equal(blocked.pbo_result.logits, whole.pbo_result.logits)
