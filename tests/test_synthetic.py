"""The synthetic universe: seeded, labelled, late starters, consistent OHLC, factor structure."""

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from feeds.panel import series_fingerprint
from feeds.synthetic import BENCHMARK_NAME, SYNTHETIC_LABEL, cap_weighted_index, make_synthetic_universe, ticker_names

N, DAYS = 40, 300


@pytest.fixture(scope="module")
def universe():
    return make_synthetic_universe(n_tickers=N, n_days=DAYS, seed=7)


def test_same_seed_same_data_other_seed_other_data(universe):
    panel, bench = universe
    again, bench_again = make_synthetic_universe(n_tickers=N, n_days=DAYS, seed=7)
    assert panel.fingerprint() == again.fingerprint()
    pd.testing.assert_series_equal(bench, bench_again)
    other, bench_other = make_synthetic_universe(n_tickers=N, n_days=DAYS, seed=8)
    assert other.fingerprint() != panel.fingerprint()
    assert series_fingerprint(bench_other) != series_fingerprint(bench)


def test_shape_names_and_labels(universe):
    panel, bench = universe
    assert panel.tickers == [f"SYN{i:04d}" for i in range(1, N + 1)]
    assert len(panel.dates) == DAYS and panel.dates[0] == pd.Timestamp("2010-01-04")
    assert (panel.dates.dayofweek < 5).all()
    assert panel.available == {"open", "high", "low", "close", "volume"}
    assert "synthetic" in panel.name and bench.name == BENCHMARK_NAME == "SYNTH_INDEX"
    assert "SYNTHETIC" in SYNTHETIC_LABEL
    assert bench.index.equals(panel.dates) and bench.notna().all()
    assert ticker_names(12345)[0] == "SYN00001"


def test_late_starters(universe):
    panel, _ = universe
    close = panel.close
    first_row = close.notna().to_numpy().argmax(axis=0)
    assert (first_row > 0).sum() == round(0.2 * N)
    # Once listed, a ticker trades every day (no holes), and never before.
    for j, ticker in enumerate(panel.tickers):
        listed = close[ticker].notna().to_numpy()
        assert not listed[: first_row[j]].any() and listed[first_row[j] :].all()
    none_late, _ = make_synthetic_universe(n_tickers=10, n_days=50, seed=1, late_start_share=0.0)
    assert none_late.close.notna().all().all()


def test_ohlc_is_consistent(universe):
    panel, _ = universe
    o, h, lo, c, v = (panel[f].to_numpy() for f in ("open", "high", "low", "close", "volume"))
    listed = ~np.isnan(c)
    for arr in (o, h, lo, v):
        assert np.array_equal(~np.isnan(arr), listed)  # same NaN pattern in every field
    assert (h[listed] >= np.maximum(o, c)[listed]).all()
    assert (lo[listed] <= np.minimum(o, c)[listed]).all()
    assert (lo[listed] > 0).all() and (v[listed] >= 0).all()
    assert (v[listed] == np.round(v[listed])).all()
    # Opens gap from the previous close: not equal to it, but close to it.
    gap = np.log(o[1:] / c[:-1])[listed[1:] & listed[:-1]]
    assert (gap != 0).all() and np.abs(gap).mean() < 0.02


def test_factor_structure(universe):
    panel, bench = universe
    returns = np.log(panel.close).diff().iloc[1:]
    full = returns.loc[:, returns.notna().all()]
    daily_std = full.std()
    assert daily_std.between(0.008, 0.05).all()
    corr = full.corr().to_numpy()
    mean_pair_corr = corr[np.triu_indices_from(corr, 1)].mean()
    assert 0.1 < mean_pair_corr < 0.8  # a common market factor, not identical stocks
    index_ret = bench.pct_change().iloc[1:]
    equal_weight = panel.close.pct_change(fill_method=None).iloc[1:].mean(axis=1)
    assert index_ret.corr(equal_weight) > 0.9


def test_cap_weighted_index_by_hand():
    close = pd.DataFrame(
        {"A": [10.0, 11.0, 12.1], "B": [np.nan, 20.0, 18.0]}, index=pd.bdate_range("2020-01-06", periods=3)
    )
    shares = np.array([1.0, 2.0])
    index = cap_weighted_index(close, shares, level=100.0)
    # Day 1: only A traded on both days: +10 %. Day 2: caps 11 and 40 at the previous close.
    day2 = (11.0 * 0.10 + 40.0 * (18.0 / 20.0 - 1.0)) / 51.0
    np.testing.assert_allclose(index.to_numpy(), [100.0, 110.0, 110.0 * (1 + day2)], rtol=1e-12)


def test_close_only_and_fat_tails_options():
    panel, _ = make_synthetic_universe(n_tickers=5, n_days=60, seed=2, ohlcv=False)
    assert panel.available == {"close"}
    pd.testing.assert_frame_equal(panel["open"], panel.close)
    assert panel["volume"].isna().all().all()
    normal, _ = make_synthetic_universe(n_tickers=5, n_days=60, seed=2, fat_tails=False)
    assert normal.fingerprint() != make_synthetic_universe(n_tickers=5, n_days=60, seed=2)[0].fingerprint()


@pytest.mark.parametrize("kwargs", [dict(n_tickers=0), dict(n_days=1), dict(n_sectors=0), dict(late_start_share=1.5)])
def test_bad_arguments_raise_config_error(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        make_synthetic_universe(**kwargs)
