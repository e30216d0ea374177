"""Labels against a brute-force loop over each stock's own bars, plus look-ahead and config guards."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest

from feeds import ConfigError, PricePanel, load_embedded
from models.labels import forward_excess_returns, forward_returns, label_end_dates, make_labels


def small_panel(seed=0):
    """5 stocks x 40 days: one starts late, one has interior holes, one stops early; the benchmark
    lacks two panel days and has an extra day the panel does not."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-03-01", periods=40, name="date")
    close = pd.DataFrame(
        20 * np.exp(np.cumsum(rng.normal(0, 0.03, (40, 5)), axis=0)), index=dates, columns=["A", "B", "C", "D", "E"]
    )
    close.iloc[:7, 1] = np.nan  # B starts late
    close.iloc[[10, 11, 25], 2] = np.nan  # C has holes
    close.iloc[33:, 3] = np.nan  # D stops early
    bench_dates = dates.delete([12, 30]).append(pd.DatetimeIndex(["2021-03-06"])).sort_values()  # a Saturday
    bench = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(bench_dates)))), index=bench_dates)
    return PricePanel({"close": close}, available={"close"}, name="small"), bench


def brute_force(panel, bench, h):
    """Loop over each stock's own bars: (fwd return, benchmark fwd return, end date) per (date, ticker)."""

    def bench_as_of(day):
        past = [d for d in bench.index if d <= day]
        return bench[past[-1]] if past else np.nan

    fwd, bfwd, end = {}, {}, {}
    for ticker in panel.tickers:
        series = panel.close[ticker].dropna()
        days = list(series.index)
        for i, day in enumerate(days):
            if i + h < len(days):
                later = days[i + h]
                fwd[day, ticker] = series[later] / series[day] - 1
                bfwd[day, ticker] = bench_as_of(later) / bench_as_of(day) - 1
                end[day, ticker] = later
    return fwd, bfwd, end


@pytest.mark.parametrize("h", [1, 3])
def test_labels_match_a_brute_force_loop(h):
    panel, bench = small_panel()
    fwd, bfwd, end = brute_force(panel, bench, h)
    got_fwd = forward_returns(panel, h)
    got_excess = forward_excess_returns(panel, bench, h)
    got_cls = make_labels(panel, bench, h, "classification")
    got_reg = make_labels(panel, bench, h, "regression")
    got_end = label_end_dates(panel, h)
    for day in panel.dates:
        known_today = [fwd[day, t] for t in panel.tickers if (day, t) in fwd]
        sd = statistics.stdev(known_today) if len(known_today) >= 2 else np.nan
        for t in panel.tickers:
            if (day, t) not in fwd:
                assert np.isnan(got_fwd.at[day, t]) and np.isnan(got_excess.at[day, t])
                assert np.isnan(got_cls.at[day, t]) and np.isnan(got_reg.at[day, t])
                assert pd.isna(got_end.at[day, t])
                continue
            excess = fwd[day, t] - bfwd[day, t]
            assert got_fwd.at[day, t] == pytest.approx(fwd[day, t], rel=1e-12)
            assert got_excess.at[day, t] == pytest.approx(excess, rel=1e-9, abs=1e-15)
            assert got_cls.at[day, t] == (1.0 if excess > 0 else 0.0)
            assert got_reg.at[day, t] == pytest.approx(max(-3.0, min(3.0, excess / sd)), rel=1e-9)
            assert got_end.at[day, t] == end[day, t]
    assert got_cls.notna().sum().sum() == len(fwd)


def test_labels_of_a_stock_with_holes_equal_it_computed_alone():
    panel, bench = small_panel(seed=1)
    alone = panel.select(["C"])
    alone = PricePanel({"close": alone.close.dropna()}, available={"close"})
    full = forward_excess_returns(panel, bench, 4)["C"].dropna()
    single = forward_excess_returns(alone, bench, 4)["C"].dropna()
    pd.testing.assert_series_equal(full, single)


def test_no_label_changes_before_its_horizon_ends():
    prices, bench = load_embedded(start="2016-01-01")
    h, cut = 10, 600
    rng = np.random.default_rng(5)
    close = prices.close.copy()
    close.iloc[cut + 1 :] *= np.exp(rng.normal(0, 0.03, close.iloc[cut + 1 :].shape))
    noisy = PricePanel({"close": close}, available={"close"})
    noisy_bench = bench * np.where(bench.index > prices.dates[cut], 1.05, 1.0)
    for kind in ("classification", "regression"):
        before = make_labels(prices, bench, h, kind)
        after = make_labels(noisy, noisy_bench, h, kind)
        pd.testing.assert_frame_equal(before.iloc[: cut - h + 1], after.iloc[: cut - h + 1], obj=kind)
        assert not before.iloc[cut - h + 1 :].equals(after.iloc[cut - h + 1 :])
    ends = label_end_dates(prices, h)
    assert (ends.iloc[cut - h] == prices.dates[cut]).all()  # the last unchanged row ends exactly on T


def test_label_end_dates_across_holes_on_a_panel():
    panel, _ = small_panel()
    ends = label_end_dates(panel, 2)
    d = panel.dates
    assert ends.at[d[9], "C"] == d[13]  # C skips rows 10 and 11
    assert pd.isna(ends.at[d[10], "C"])
    assert ends.at[d[30], "D"] == d[32] and pd.isna(ends.at[d[31], "D"])  # D's last bar is row 32
    assert pd.isna(ends.iloc[-2:]).all().all()


@pytest.mark.parametrize("horizon", [0, -1, 2.5, True])
def test_bad_horizon_is_a_config_error(horizon):
    panel, bench = small_panel()
    with pytest.raises(ConfigError, match="horizon"):
        make_labels(panel, bench, horizon)
    with pytest.raises(ConfigError, match="horizon"):
        label_end_dates(panel, horizon)


def test_unknown_kind_is_a_config_error():
    panel, bench = small_panel()
    with pytest.raises(ConfigError, match=r"ranking.*classification"):
        make_labels(panel, bench, 10, kind="ranking")
