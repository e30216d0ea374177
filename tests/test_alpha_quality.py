"""Alpha quality: checked against scipy, numpy and brute-force loops written here."""

from __future__ import annotations

import json
import math

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analyzers.alpha_quality import AlphaQuality
from analyzers.alpha_report import write_alpha_report
from analyzers.ic import (
    alpha_report,
    calibration_table,
    daily_ic,
    forward_excess_returns_from,
    hit_rate,
    ic_summary,
    quintile_returns,
)
from feeds import load_embedded


def _random_panel(days=60, stocks=12, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2021-01-04", periods=days)
    cols = [f"S{i:02d}" for i in range(stocks)]
    close = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (days, stocks)), axis=0)), index=idx, columns=cols)
    bench = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, days))), index=idx)
    scores = pd.DataFrame(rng.uniform(-1, 1, (days, stocks)).round(1), index=idx, columns=cols)  # ties
    scores.iloc[3, :4] = np.nan  # missing scores
    close.iloc[:5, 0] = np.nan  # a stock that starts late
    return scores, close, bench


def test_forward_excess_matches_a_loop():
    scores, close, bench = _random_panel()
    h = 5
    fwd = forward_excess_returns_from(close, bench, h)
    for i in (0, 10, 30, len(close) - h - 1):
        for j in (0, 3):
            c0, c1 = close.iloc[i, j], close.iloc[i + h, j]
            want = c1 / c0 - 1 - (bench.iloc[i + h] / bench.iloc[i] - 1)
            got = fwd.iloc[i, j]
            assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, abs=1e-12)
    assert fwd.iloc[-h:].isna().all().all()


def test_rank_ic_equals_scipy_spearman_on_each_day():
    scores, close, bench = _random_panel()
    fwd = forward_excess_returns_from(close, bench, 1)
    ric = daily_ic(scores, fwd, "spearman")
    ic = daily_ic(scores, fwd, "pearson")
    checked = 0
    for day in scores.index[:-1]:
        s, f = scores.loc[day], fwd.loc[day]
        ok = s.notna() & f.notna()
        want_r = stats.spearmanr(s[ok], f[ok]).statistic
        want_p = np.corrcoef(s[ok], f[ok])[0, 1]
        assert ric[day] == pytest.approx(want_r, abs=1e-12)
        assert ic[day] == pytest.approx(want_p, abs=1e-12)
        checked += 1
    assert checked == len(scores) - 1 and math.isnan(ric.iloc[-1])


def test_fewer_than_three_stocks_give_nan():
    scores, close, bench = _random_panel(stocks=4)
    scores.iloc[7, :2] = np.nan  # 2 stocks left that day
    fwd = forward_excess_returns_from(close, bench, 1)
    ic = daily_ic(scores, fwd, "spearman")
    assert math.isnan(ic.iloc[7]) and ic.iloc[8:20].notna().all()


def test_ic_summary_non_overlapping_days_and_naive_t_by_hand():
    rng = np.random.default_rng(3)
    ic = pd.Series(rng.normal(0.03, 0.2, 500), index=pd.bdate_range("2020-01-01", periods=500))
    ic.iloc[[5, 6, 100]] = np.nan
    h = 10
    s = ic_summary(ic, h)
    vals = [v for v in ic.tolist() if not math.isnan(v)]
    picked = vals[::h]
    n = len(picked)
    mean = sum(picked) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in picked) / (n - 1))
    assert s["n_independent_days"] == n == 50
    assert s["mean_nonoverlap"] == pytest.approx(mean, rel=1e-12)  # the secondary t's own mean
    assert s["t_stat_nonoverlap"] == pytest.approx(mean / (sd / math.sqrt(n)), rel=1e-12)
    assert s["se_nonoverlap"] == pytest.approx(sd / math.sqrt(n), rel=1e-12)
    m_all = sum(vals) / len(vals)
    sd_all = math.sqrt(sum((v - m_all) ** 2 for v in vals) / (len(vals) - 1))
    assert s["mean"] == pytest.approx(m_all) and s["std"] == pytest.approx(sd_all)
    assert s["icir"] == pytest.approx(m_all / sd_all)
    assert s["t_stat_naive"] == pytest.approx(m_all / sd_all * math.sqrt(len(vals)))
    assert ic_summary(ic, 1)["t_stat"] == pytest.approx(s["t_stat_naive"])  # h = 1: no lags
    # the headline t is Newey-West over all days (tests/test_significance.py checks it against statsmodels)
    assert s["hac_lags"] == 9 and s["t_stat"] == pytest.approx(s["mean"] / s["se"], rel=1e-12)


def test_quintiles_and_hit_rate_by_brute_force():
    scores, close, bench = _random_panel(stocks=10)
    fwd = forward_excess_returns_from(close, bench, 5)
    q = quintile_returns(scores, fwd)
    per_group = {g: [] for g in range(1, 6)}
    hits = total = 0
    for day in scores.index:
        pairs = [
            (scores.at[day, c], fwd.at[day, c])
            for c in scores.columns
            if not (math.isnan(scores.at[day, c]) or math.isnan(fwd.at[day, c]))
        ]
        for s, f in pairs:
            hits += (s > 0) == (f > 0)
            total += 1
        if len(pairs) < 5:
            continue
        ranks = stats.rankdata([s for s, _ in pairs])  # average ranks on ties
        groups = {g: [] for g in range(1, 6)}
        for r, (_, f) in zip(ranks, pairs):
            groups[math.ceil(r / len(pairs) * 5)].append(f)
        for g, fs in groups.items():
            if fs:
                per_group[g].append(sum(fs) / len(fs))
    for g in range(1, 6):
        assert q[g] == pytest.approx(sum(per_group[g]) / len(per_group[g]), abs=1e-12)
    assert hit_rate(scores, fwd) == pytest.approx(hits / total)


def test_calibration_on_synthetic_truth():
    rng = np.random.default_rng(7)
    days, stocks = 400, 50
    p = rng.uniform(0.2, 0.8, (days, stocks))
    beat = rng.uniform(size=p.shape) < p
    idx = pd.bdate_range("2015-01-01", periods=days)
    fwd = pd.DataFrame(np.where(beat, 0.01, -0.01), index=idx)
    calibrated = pd.DataFrame(2 * p - 1, index=idx)
    table = calibration_table(calibrated, fwd, bins=10)
    assert len(table) == 10 and table["count"].sum() == days * stocks
    # Each bin has 2,000 stock-days: binomial sd of the realised share <= 0.011.
    np.testing.assert_allclose(table["realised"], table["mean_p"], atol=0.035)
    assert table["mean_p"].is_monotonic_increasing
    # Overconfident score: p pushed away from 0.5 => realised shares fall short in the tails.
    over = pd.DataFrame(np.clip(2 * (2 * p - 1), -1, 1), index=idx)
    t_over = calibration_table(over, fwd, bins=10)
    assert t_over["mean_p"].iloc[-1] - t_over["realised"].iloc[-1] > 0.1
    assert t_over["realised"].iloc[0] - t_over["mean_p"].iloc[0] > 0.1
    uniform = calibration_table(calibrated, fwd, bins=10, strategy="uniform")
    assert set(uniform["bin"]) == set(range(3, 9))  # p in [0.2, 0.8): bins 3..8 only


# ------------------------------------------------------------- the analyzer in a Cerebro


class Momentum(bt.Indicator):
    """Any indicator with a `score` line: 20-day return."""

    lines = ("score",)
    params = (("period", 20),)

    def __init__(self):
        self.lines.score = self.data.close / self.data.close(-self.p.period) - 1.0


class Holder(bt.Strategy):
    def __init__(self):
        self.alphas = {d._name: Momentum(d) for d in self.datas if d._name != "SP500"}

    def prenext(self):
        self.next()

    def next(self):
        pass


TICKERS = ["AAPL", "JNJ", "KO", "MSFT", "PG", "XOM", "CVX", "WMT"]


def _cerebro_run(bench_as, out_dir=None, runonce=True):
    prices, bench = load_embedded("2018-01-01", "2019-12-31")
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    for t in TICKERS:
        cerebro.adddata(bt.feeds.PandasData(dataname=prices.frame(t).fillna(0.0)), name=t)
    if bench_as == "data":
        frame = pd.DataFrame({"open": bench, "high": bench, "low": bench, "close": bench})
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name="SP500")
    cerebro.addstrategy(Holder)
    cerebro.addanalyzer(
        AlphaQuality, _name="aq", horizons=(1, 5), benchmark="SP500" if bench_as == "data" else bench, out_dir=out_dir
    )
    return cerebro.run()[0], prices.select(TICKERS).close, bench


@pytest.mark.parametrize("bench_as", ["series", "data"])  # not `benchmark`: pytest-benchmark owns it
def test_analyzer_collects_what_an_offline_computation_gives(bench_as, tmp_path):
    strat, close, bench = _cerebro_run(bench_as, out_dir=tmp_path)
    aq = strat.analyzers.aq
    scores, got_close, got_bench = aq.frames()
    offline_scores = close / close.shift(20) - 1.0
    pd.testing.assert_frame_equal(
        got_close[TICKERS], close[TICKERS], check_freq=False, check_index_type=False, check_names=False
    )
    np.testing.assert_allclose(
        scores[TICKERS].iloc[20:].to_numpy(), offline_scores[TICKERS].iloc[20:].to_numpy(), rtol=1e-9
    )
    np.testing.assert_allclose(got_bench.to_numpy(), bench.reindex(close.index).to_numpy())
    want = alpha_report(offline_scores.iloc[20:], close, bench, horizons=(1, 5))
    got = aq.get_analysis()
    for h in ("1", "5"):
        assert got["horizons"][h]["rank_ic"]["mean"] == pytest.approx(want["horizons"][h]["rank_ic"]["mean"], abs=1e-9)
        assert got["horizons"][h]["hit_rate"] == pytest.approx(want["horizons"][h]["hit_rate"])
    written = json.loads((tmp_path / "alpha.json").read_text())
    assert set(written["horizons"]) == {"1", "5"}
    page = (tmp_path / "alpha.html").read_text()
    assert "<table>" in page and "data:image/png;base64," in page
    assert (tmp_path / "alpha.png").read_bytes()[:4] == b"\x89PNG"


def test_write_alpha_report_json_has_no_nan(tmp_path):
    scores, close, bench = _random_panel(days=30, stocks=4)  # < 5 stocks: quintiles are NaN
    report = alpha_report(scores, close, bench, horizons=(1, 20))
    paths = write_alpha_report(report, tmp_path)
    text = paths["json"].read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["horizons"]["1"]["quintile_mean_fwd_excess"]["1"] is None


def test_analyzer_same_scores_event_driven_and_runonce():
    a = _cerebro_run("series", runonce=True)[0].analyzers.aq.frames()[0]
    b = _cerebro_run("series", runonce=False)[0].analyzers.aq.frames()[0]
    pd.testing.assert_frame_equal(a, b)


def test_tradeable_forward_returns_start_at_the_fill_day_brute_force():
    """lag=1: the excess return from the close after the score's day, over the same horizon."""
    _, close, bench = _random_panel()
    h = 5
    fwd = forward_excess_returns_from(close, bench, h, lag=1)
    c, b = close.to_numpy(), bench.to_numpy()
    for i in range(len(close)):
        for j in range(close.shape[1]):
            if i + 1 + h < len(close):
                expected = (c[i + 1 + h, j] / c[i + 1, j] - 1) - (b[i + 1 + h] / b[i + 1] - 1)
            else:
                expected = np.nan
            got = fwd.iat[i, j]
            assert (np.isnan(expected) and np.isnan(got)) or got == pytest.approx(expected, rel=1e-12)
    assert fwd.equals(forward_excess_returns_from(close, bench, h, lag=1))
    pd.testing.assert_frame_equal(
        forward_excess_returns_from(close, bench, h, lag=0), forward_excess_returns_from(close, bench, h)
    )


def test_daily_csv_holds_the_tradeable_rank_ic_beside_the_signal_one(tmp_path):
    """alpha_daily_rank_ic.csv: per horizon the signal rank IC ("5") and the tradeable one
    ("tradeable_5"), the latter scipy's Spearman of the score against the return from the fill day."""
    scores, close, bench = _random_panel()
    paths = write_alpha_report(alpha_report(scores, close, bench, horizons=(1, 5)), tmp_path)
    daily = pd.read_csv(paths["csv"], index_col="date", parse_dates=True)
    assert list(daily.columns) == ["1", "5", "tradeable_1", "tradeable_5"]
    c, b = close.to_numpy(), bench.to_numpy()
    checked = 0
    for i, day in enumerate(scores.index):
        if i + 1 + 5 >= len(close):
            assert np.isnan(daily.loc[day, "tradeable_5"])
            continue
        fill = (c[i + 6] / c[i + 1] - 1) - (b[i + 6] / b[i + 1] - 1)
        s = scores.iloc[i].to_numpy()
        both = np.isfinite(s) & np.isfinite(fill)
        expected = stats.spearmanr(s[both], fill[both]).statistic
        assert daily.loc[day, "tradeable_5"] == pytest.approx(expected, abs=1e-12), day
        checked += 1
    assert checked > 40
    signal = daily_ic(scores, forward_excess_returns_from(close, bench, 5), "spearman")
    np.testing.assert_allclose(daily["5"].to_numpy(), signal.to_numpy(), rtol=1e-12)
    assert not daily["5"].equals(daily["tradeable_5"])
