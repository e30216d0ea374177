"""Features against independent computations: Backtrader's own indicators on the real embedded
series, hand formulas in plain loops, and look-ahead / holes / late-start guards."""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from feeds import ConfigError, DataError, PricePanel, load_embedded
from models.features import (
    DEFAULT_FEATURES,
    FEATURES,
    SEED_FEATURES,
    compute_features,
    feature_array,
    max_warmup,
    stock_features,
    usable_features,
)

ALL_INPUTS = {"open", "high", "low", "close", "volume", "benchmark", "vix"}
CLOSE_ONLY = {"close", "benchmark"}


def synthetic_panel(n_days=400, tickers=("A", "B", "C", "D"), seed=0):
    """Random-walk OHLCV panel with a benchmark and a VIX series on the same business days."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_days, name="date")
    shape = (n_days, len(tickers))
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, shape), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, shape)))
    volume = np.round(rng.lognormal(13, 0.5, shape))
    frames = {
        k: pd.DataFrame(v, index=dates, columns=list(tickers))
        for k, v in dict(open=open_, high=high, low=low, close=close, volume=volume).items()
    }
    bench = pd.Series(3000 * np.exp(np.cumsum(rng.normal(0, 0.01, n_days))), index=dates, name="BENCH")
    vix = pd.Series(20 * np.exp(rng.normal(0, 0.2, n_days)), index=dates, name="VIX")
    return frames, bench, vix


def make_panel(frames):
    return PricePanel(frames, available={"open", "high", "low", "close", "volume"}, name="synthetic")


def with_missing(frames, ticker, rows):
    out = {k: v.copy() for k, v in frames.items()}
    for frame in out.values():
        frame.iloc[rows, frame.columns.get_loc(ticker)] = np.nan
    return out


# --- Backtrader's own indicators on real data ------------------------------------------------------


class Recorder(bt.Strategy):
    def __init__(self):
        self.ind = {}
        for d in self.datas:
            ind = {f"sma{n}": bt.indicators.SMA(d.close, period=n) for n in (60, 100, 200)}
            ind.update({f"ema{n}": bt.indicators.EMA(d.close, period=n) for n in (10, 20, 30)})
            # Backtrader's default RSI smooths with SmoothedMovingAverage (Wilder, alpha = 1/n);
            # RSI_Safe returns 50 on a flat window, which is how ours reads 0.5.
            ind.update({f"rsi{n}": bt.indicators.RSI_Safe(d.close, period=n) for n in (7, 14, 26)})
            ind["macd"] = bt.indicators.MACD(d.close, period_me1=12, period_me2=26, period_signal=9)
            ind["bb"] = bt.indicators.BollingerBands(d.close, period=20, devfactor=2.0)
            self.ind[d._name] = ind


def backtrader_values(frame):
    cerebro = bt.Cerebro(stdstats=False)
    data = frame.assign(open=frame.close, high=frame.close, low=frame.close, volume=0.0)
    cerebro.adddata(bt.feeds.PandasData(dataname=data[["open", "high", "low", "close", "volume"]]), name="X")
    cerebro.addstrategy(Recorder)
    strat = cerebro.run()[0]
    ind = strat.ind["X"]

    def line(obj, name):
        return np.asarray(getattr(obj.lines, name).array)

    close = frame["close"].to_numpy()
    macd, signal = line(ind["macd"], "macd"), line(ind["macd"], "signal")
    top, bot, mid = line(ind["bb"], "top"), line(ind["bb"], "bot"), line(ind["bb"], "mid")
    out = {
        f"{k}_gap": (close - line(ind[k], k[:3])) / line(ind[k], k[:3])
        for k in ("sma60", "sma100", "sma200", "ema10", "ema20", "ema30")
    }
    out.update({f"rsi{n}": line(ind[f"rsi{n}"], "rsi") / 100 for n in (7, 14, 26)})
    out["macd_dif"] = macd / close
    out["macd_hist"] = 2 * (macd - signal) / close
    out["bb_position"] = (close - bot) / (top - bot)
    out["bb_width"] = (top - bot) / mid
    return pd.DataFrame(out, index=frame.index)


@pytest.mark.parametrize("ticker", ["AAPL", "XOM"])
def test_indicator_features_match_backtrader(ticker):
    # From 2014: ~2,260 bars; the last 1,000 are far past the point where the different seeds
    # (pandas: first value, Backtrader: SMA of the first n) have decayed below 1e-6.
    prices, bench = load_embedded(start="2014-01-01")
    expected = backtrader_values(prices.frame(ticker))
    names = list(expected.columns)
    ours = compute_features(prices, bench, names)
    last = expected.index[-1000:]
    assert expected.loc[last].notna().all().all() and ours["rsi26"].loc[last, ticker].notna().all()
    for name in names:
        np.testing.assert_allclose(
            ours[name].loc[last, ticker].to_numpy(),
            expected.loc[last, name].to_numpy(),
            rtol=0,
            atol=1e-6,
            err_msg=name,
        )
    # SMA and Bollinger have no seed: they agree from their very first value.
    for name in ("sma200_gap", "bb_position", "bb_width"):
        valid = ours[name][ticker].notna()
        np.testing.assert_allclose(ours[name][ticker][valid], expected[name][valid], atol=1e-6, err_msg=name)


# --- hand formulas for the features Backtrader has no indicator for --------------------------------


def test_non_indicator_features_match_hand_formulas():
    frames, bench, vix = synthetic_panel(n_days=150)
    panel = make_panel(frames)
    f = compute_features(panel, bench, list(FEATURES), vix=vix)
    col = "B"
    c, o, h, lo, v = (frames[k][col].to_numpy() for k in ("close", "open", "high", "low", "volume"))
    b = bench.to_numpy()
    obv = np.zeros(len(c))
    for t in range(1, len(c)):
        obv[t] = obv[t - 1] + np.sign(c[t] - c[t - 1]) * v[t]
    for t in (60, 99, 149):
        r = np.log(c[1 : t + 1] / c[:t])
        rb = np.log(b[1 : t + 1] / b[:t])
        ma_obv = obv[t - 19 : t + 1].mean()
        expected = {
            "log_ret_5": np.log(c[t] / c[t - 5]),
            "vol_log_ret": np.clip(np.log(v[t] / v[t - 1]), -5, 5),
            "vol_ratio": v[t] / v[t - 19 : t + 1].mean(),
            "k_body": (c[t] - o[t]) / o[t],
            "k_upper": (h[t] - max(o[t], c[t])) / c[t],
            "k_lower": (min(o[t], c[t]) - lo[t]) / c[t],
            "obv_momentum": (obv[t] - ma_obv) / abs(ma_obv),
            "hv_ratio": np.std(r[-10:], ddof=1) / np.std(r[-60:], ddof=1),
            "bench_ret_10": np.log(b[t] / b[t - 10]),
            "bench_vol": np.std(rb[-20:], ddof=1),
            "vix": vix.iloc[t] / 100,
            "rel_ret_20": np.log(c[t] / c[t - 20]) - np.log(b[t] / b[t - 20]),
        }
        for name, value in expected.items():
            assert f[name][col].iloc[t] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, t)


def test_warmup_is_the_first_valid_row_and_counts_from_a_late_start():
    frames, bench, vix = synthetic_panel(n_days=300)
    late = with_missing(frames, "C", slice(0, 40))  # C starts on row 40
    f = compute_features(make_panel(late), bench, list(FEATURES), vix=vix)
    for name, frame in f.items():
        first = frame.notna().to_numpy().argmax(axis=0)
        warmup = FEATURES[name].warmup
        assert list(first) == [warmup, warmup, 40 + warmup, warmup], name
    assert max_warmup(SEED_FEATURES) == 99 and max_warmup(DEFAULT_FEATURES) == 199


# --- look-ahead, holes, late start ----------------------------------------------------------------


def test_no_feature_dated_up_to_T_changes_when_later_prices_change():
    frames, bench, vix = synthetic_panel(n_days=320, seed=1)
    frames = with_missing(frames, "D", [100, 101, 150, 290])  # holes on both sides of T
    frames = with_missing(frames, "A", slice(0, 30))
    cut = 250
    rng = np.random.default_rng(7)
    noisy = {k: v.copy() for k, v in frames.items()}
    for frame in noisy.values():
        frame.iloc[cut + 1 :] *= np.exp(rng.normal(0, 0.05, frame.iloc[cut + 1 :].shape))
    noisy_bench, noisy_vix = bench.copy(), vix.copy()
    noisy_bench.iloc[cut + 1 :] *= 1.1
    noisy_vix.iloc[cut + 1 :] *= 2
    names = list(FEATURES)
    before = compute_features(make_panel(frames), bench, names, vix=vix)
    after = compute_features(make_panel(noisy), noisy_bench, names, vix=noisy_vix)
    for name in names:
        pd.testing.assert_frame_equal(
            before[name].iloc[: cut + 1], after[name].iloc[: cut + 1], check_exact=True, obj=name
        )
        assert not before[name].iloc[cut + 1 :].equals(after[name].iloc[cut + 1 :]), name  # the noise did bite


def test_no_feature_of_the_real_data_dated_up_to_T_changes():
    prices, bench = load_embedded(start="2015-01-01")
    cut = prices.dates.get_loc(pd.Timestamp("2019-06-28"))
    rng = np.random.default_rng(3)
    close = prices.close.copy()
    close.iloc[cut + 1 :] *= np.exp(rng.normal(0, 0.03, close.iloc[cut + 1 :].shape))
    noisy = PricePanel({"close": close}, available={"close"})
    names, _ = usable_features(list(FEATURES), prices.available | {"benchmark"})
    before = compute_features(prices, bench, names)
    after = compute_features(noisy, bench * np.where(bench.index > prices.dates[cut], 0.9, 1.0), names)
    for name in names:
        pd.testing.assert_frame_equal(before[name].iloc[: cut + 1], after[name].iloc[: cut + 1], obj=name)


def test_a_stock_with_holes_is_computed_on_its_own_compacted_bars():
    frames, bench, vix = synthetic_panel(n_days=400, seed=2)
    holes = [5, 70, 71, 72, 200, 333]
    panel = make_panel(with_missing(frames, "B", holes))
    names = list(FEATURES)
    f = compute_features(panel, bench, names, vix=vix)
    alone = stock_features(panel.frame("B"), bench, names, vix=vix)  # its compacted series only
    assert len(alone) == 400 - len(holes)
    for name in names:
        column = f[name]["B"]
        assert column.iloc[holes].isna().all(), name
        pd.testing.assert_series_equal(column.loc[alone.index], alone[name], check_names=False, obj=name)
    # hole-free neighbours are untouched by B's holes
    full = compute_features(make_panel(frames), bench, names, vix=vix)
    for name in names:
        pd.testing.assert_frame_equal(f[name][["A", "C", "D"]], full[name][["A", "C", "D"]], obj=name)
    # and a brute-force check over compacted rows: the 5-bar return across the 70-72 hole
    c = panel.frame("B")["close"]
    i = c.index.get_loc(pd.Timestamp(panel.dates[73]))
    assert f["log_ret_5"]["B"].iloc[73] == pytest.approx(np.log(c.iloc[i] / c.iloc[i - 5]))
    assert f["sma60_gap"]["B"].iloc[399] == pytest.approx(c.iloc[-1] / c.iloc[-60:].mean() - 1)
    b_asof = bench.reindex(c.index)
    assert f["rel_ret_1"]["B"].iloc[73] == pytest.approx(
        np.log(c.iloc[i] / c.iloc[i - 1]) - np.log(b_asof.iloc[i] / b_asof.iloc[i - 1])
    )


def test_a_late_starting_stock_equals_itself_computed_alone():
    frames, bench, vix = synthetic_panel(n_days=300, seed=4)
    panel = make_panel(with_missing(frames, "D", slice(0, 77)))
    names = list(FEATURES)
    f = compute_features(panel, bench, names, vix=vix)
    alone = stock_features(panel.frame("D"), bench, names, vix=vix)
    for name in names:
        assert f[name]["D"].iloc[:77].isna().all()
        pd.testing.assert_series_equal(f[name]["D"].iloc[77:], alone[name], check_names=False, obj=name)


def test_benchmark_is_taken_as_of_each_date_never_from_later():
    frames, bench, _ = synthetic_panel(n_days=120)
    panel = make_panel(frames)
    gappy = bench.drop(bench.index[[50, 51]])  # benchmark missing two panel days
    f = compute_features(panel, gappy, ["bench_ret_1"])
    assert f["bench_ret_1"]["A"].iloc[50] == pytest.approx(0.0)  # flat: last known value is day 49's
    assert f["bench_ret_1"]["A"].iloc[52] == pytest.approx(np.log(bench.iloc[52] / bench.iloc[49]))


# --- availability, registry, API -------------------------------------------------------------------


def test_close_only_panel_keeps_close_features_and_drops_ohlcv_ones():
    prices, bench = load_embedded(end="1991-12-31")
    kept, dropped = usable_features(list(FEATURES), prices.available | {"benchmark"})
    assert set(dropped) == {"vol_log_ret", "vol_ratio", "k_body", "k_upper", "k_lower", "obv_momentum", "vix"}
    assert all(FEATURES[n].needs <= CLOSE_ONLY for n in kept) and "rsi14" in kept and "rel_ret_20" in kept
    kept_seed, dropped_seed = usable_features(SEED_FEATURES, prices.available | {"benchmark"})
    assert dropped_seed == ["k_upper"] and kept_seed == ["sma100_gap", "sma60_gap", "rsi14", "bb_position"]
    with pytest.raises(DataError, match=r"k_upper.*high"):
        compute_features(prices, bench, ["rsi14", "k_upper"])
    with pytest.raises(DataError, match=r"bench_vol.*benchmark"):
        compute_features(prices, None, ["bench_vol"])


def test_unknown_feature_is_a_config_error_listing_valid_ones():
    with pytest.raises(ConfigError, match=r"rsi15.*rsi14"):
        usable_features(["rsi15"], ALL_INPUTS)
    with pytest.raises(ConfigError, match="rsi15"):
        max_warmup(["rsi15"])


def test_registry_and_presets_are_consistent():
    assert set(SEED_FEATURES) | set(DEFAULT_FEATURES) <= set(FEATURES)
    assert all(FEATURES[n].needs <= CLOSE_ONLY for n in DEFAULT_FEATURES)
    assert all(f.needs <= ALL_INPUTS and "close" in f.needs for f in FEATURES.values())
    assert len(FEATURES) == 34


def test_feature_array_stacks_in_the_given_order():
    frames, bench, _ = synthetic_panel(n_days=60)
    panel = make_panel(frames)
    f = compute_features(panel, bench, ["log_ret_1", "k_upper", "rsi7"])
    arr = feature_array(f, ["rsi7", "log_ret_1"])
    assert arr.shape == (60, 4, 2) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr[:, :, 0], f["rsi7"].to_numpy(np.float32))
    np.testing.assert_array_equal(arr[:, :, 1], f["log_ret_1"].to_numpy(np.float32))
    with pytest.raises(ConfigError, match="macd_dif"):
        feature_array(f, ["macd_dif"])
