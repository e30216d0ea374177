"""Issue 11, items 4-6: the tradeable IC, splits that follow the data, the planted positive control.

Each number is checked against a loop or arithmetic written here, not against the code under test.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import run_backtest
from analyzers.ic import alpha_report, daily_ic, forward_excess_returns_from, ic_summary
from configs import load_config
from feeds import ConfigError, DataError, PricePanel
from feeds.synthetic import PLANTED_LOOKBACK, drift_scale, make_synthetic_universe, plant_reversal, uniform_scores
from jobs.market import MarketData, planted_data
from jobs.periods import backtest_period, describe_split, needs_split, resolve_split
from jobs.store import model_config, model_diagnostics
from models import labels as L
from models.dataset import (
    AUTO_SHARES,
    SPLIT_FIX,
    Split,
    auto_split,
    build_windows,
    check_split_covers,
    fill_split,
    split_from_ends,
    split_samples,
)


# ----------------------------------------------------------------------------- 4. tradeable IC
def _panel(days=70, stocks=9, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2020-01-06", periods=days)
    cols = [f"S{i}" for i in range(stocks)]
    close = pd.DataFrame(50 * np.exp(np.cumsum(rng.normal(0, 0.02, (days, stocks)), axis=0)), index=idx, columns=cols)
    bench = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, days))), index=idx)
    scores = pd.DataFrame(rng.normal(size=(days, stocks)), index=idx, columns=cols)
    scores.iloc[:4, 2] = np.nan
    close.iloc[:3, 5] = np.nan  # a late starter
    return scores, close, bench


def _brute_tradeable_rank_ic(scores, close, bench, h):
    """Per day t: Spearman of score[t] with close[t+1+h]/close[t+1] - 1 minus the benchmark's, by loops."""
    out = {}
    c, b, s = close.to_numpy(), bench.to_numpy(), scores.to_numpy()
    for t in range(len(close)):
        xs, ys = [], []
        for j in range(c.shape[1]):
            if t + 1 + h >= len(close):
                continue
            fwd = c[t + 1 + h, j] / c[t + 1, j] - 1 - (b[t + 1 + h] / b[t + 1] - 1)
            if np.isfinite(s[t, j]) and np.isfinite(fwd):
                xs.append(s[t, j])
                ys.append(fwd)
        if len(xs) >= 3:
            out[close.index[t]] = stats.spearmanr(xs, ys).statistic
    return pd.Series(out)


def test_tradeable_rank_ic_matches_a_brute_force_loop():
    scores, close, bench = _panel()
    h = 5
    want = _brute_tradeable_rank_ic(scores, close, bench, h)
    got = daily_ic(scores, forward_excess_returns_from(close, bench, h, lag=1), "spearman").dropna()
    pd.testing.assert_series_equal(got, want, check_names=False, check_freq=False, atol=1e-12)
    report = alpha_report(scores, close, bench, horizons=(h,))
    trade = report["horizons"][str(h)]["tradeable_rank_ic"]
    assert trade["mean"] == pytest.approx(want.mean(), abs=1e-12)
    assert trade["n_days"] == len(want)
    # the signal IC is still from the score's own close, and differs
    assert report["horizons"][str(h)]["rank_ic"]["mean"] != pytest.approx(trade["mean"])
    assert report["fill_lag"] == 1


def test_a_one_day_signal_has_a_signal_ic_and_no_tradeable_ic():
    """Scores that know tomorrow's return only: perfect next-day signal IC, nothing left from the fill."""
    rng = np.random.default_rng(3)
    idx = pd.bdate_range("2020-01-06", periods=400)
    rets = pd.DataFrame(rng.normal(0, 0.02, (400, 30)), index=idx)
    close = 100 * np.exp(rets.cumsum())
    bench = pd.Series(100.0, index=idx)
    scores = np.log(close.shift(-1) / close)  # a look-ahead on purpose: the return of t -> t+1
    r = alpha_report(scores, close, bench, horizons=(1,))["horizons"]["1"]
    assert r["rank_ic"]["mean"] == pytest.approx(1.0)
    assert abs(r["tradeable_rank_ic"]["mean"]) < 4 * r["tradeable_rank_ic"]["se"]


def test_ic_summary_standard_errors_by_hand():
    ic = pd.Series([0.1, -0.05, 0.2, 0.0, 0.15, 0.05, -0.1, 0.3, 0.12, 0.02, 0.07])
    n, m = len(ic), ic.mean()
    e = (ic - m).to_numpy()
    # Newey-West, 1 lag (h = 2), Bartlett weight 1/2, small-sample factor n / (n - 1)
    s_hac = e @ e + 2 * 0.5 * (e[1:] @ e[:-1])
    s = ic_summary(ic, 2)
    assert s["se"] == pytest.approx(math.sqrt(s_hac / (n * (n - 1))))
    assert s["t_stat"] == pytest.approx(m / s["se"])
    every_2 = ic.iloc[::2].to_numpy()
    se = every_2.std(ddof=1) / math.sqrt(len(every_2))
    assert s["se_nonoverlap"] == pytest.approx(se)
    assert s["t_stat_nonoverlap"] == pytest.approx(every_2.mean() / se)


def test_model_diagnostics_report_signal_and_tradeable_ic():
    prices, bench = make_synthetic_universe(n_tickers=8, n_days=120, seed=4, ohlcv=False, late_start_share=0)
    scores = pd.DataFrame(
        np.random.default_rng(0).uniform(-1, 1, prices.close.shape), index=prices.dates, columns=prices.tickers
    )
    split = auto_split(prices.dates, 5)
    model = SimpleNamespace(
        config=SimpleNamespace(horizon=5, split=split, label="classification"), predict=lambda *a, **k: scores
    )
    d = model_diagnostics(model, MarketData(prices, bench), {})
    s, e = split.period("test")
    fwd = forward_excess_returns_from(prices.close, bench, 5, lag=1)
    in_test = (prices.dates >= s) & (prices.dates <= e)
    want = _brute_tradeable_rank_ic(
        scores.where(pd.Series(in_test, index=prices.dates), np.nan, axis=0), prices.close, bench, 5
    )
    assert d["test_tradeable_rank_ic"]["mean"] == pytest.approx(want.dropna().mean(), abs=1e-12)
    assert d["test_rank_ic"]["n_days"] > 0 and d["horizon"] == 5
    assert daily_ic(scores.loc[s:e], fwd.loc[s:e], "spearman").dropna().size == d["test_tradeable_rank_ic"]["n_days"]


def test_summary_prints_the_tradeable_ic_before_the_signal_ic(capsys):
    ic = {"mean": 0.01, "se": 0.02, "t_stat": 0.5, "n_days": 10, "icir": 0.1}
    trade = {"mean": 0.003, "se": 0.02, "t_stat": 0.1}
    result = SimpleNamespace(
        out_dir="x",
        metrics={},
        rejected_orders=0,
        model_path=None,
        model_reused=None,
        seconds={},
        alpha={"horizons": {"10": {"rank_ic": ic, "tradeable_rank_ic": trade}}},
    )
    data = SimpleNamespace(benchmark_name="B", caveats=[])
    diagnostics = {
        "horizon": 10,
        "valid_rank_ic": ic,
        "test_rank_ic": ic,
        "valid_tradeable_rank_ic": trade,
        "test_tradeable_rank_ic": trade,
    }
    run_backtest.print_summary(result, data, {}, diagnostics)
    lines = [x for x in capsys.readouterr().out.splitlines() if "tradeable" in x and "signal" in x]
    assert len(lines) == 3
    for line in lines:
        assert line.index("tradeable") < line.index("signal")
        assert "0.0030 ± 0.0200" in line


def test_summary_prints_each_t_beside_its_own_mean():
    rng = np.random.default_rng(5)
    ic = pd.Series(np.convolve(rng.normal(0.02, 1, 509), np.ones(10) / 10, mode="valid") * 0.3)
    s = ic_summary(ic, 10)
    text = run_backtest.fmt_ic(s)
    assert text == (
        f"{s['mean']:.4f} ± {s['se']:.4f} (t {s['t_stat']:.2f}; "
        f"one day in 10: {s['mean_nonoverlap']:.4f}, t {s['t_stat_nonoverlap']:.2f})"
    )
    assert run_backtest.fmt_ic(ic_summary(ic, 1)) == f"{ic.mean():.4f} ± {ic.std() / math.sqrt(500):.4f} " + (
        f"(t {ic.mean() / (ic.std() / math.sqrt(500)):.2f})"
    )


# ----------------------------------------------------------------------------- 5. splits
def test_auto_split_takes_60_20_20_percent_of_the_dates():
    dates = pd.bdate_range("2015-01-01", "2018-12-31")
    s = auto_split(dates, horizon=10)
    n = len(dates)
    periods = {
        name: dates[(dates >= a) & (dates <= b)] for name in ("train", "valid", "test") for a, b in [s.period(name)]
    }
    assert len(periods["train"]) == int(0.6 * n)
    assert len(periods["valid"]) == int(0.8 * n) - int(0.6 * n)
    assert len(periods["train"]) + len(periods["valid"]) + len(periods["test"]) == n  # every date, once
    assert periods["train"][0] == dates[0] and periods["test"][-1] == dates[-1]
    assert AUTO_SHARES == (0.6, 0.2, 0.2)


def test_auto_split_purges_the_label_horizon_at_each_boundary():
    """The split gives dates; split_samples drops the last `horizon` train and valid dates of each ticker."""
    prices, bench = make_synthetic_universe(n_tickers=3, n_days=300, seed=1, ohlcv=False, late_start_share=0)
    h = 7
    split = auto_split(prices.dates, h)
    feats = np.ones((len(prices.dates), 3, 1))
    index = build_windows(feats, prices.close.notna().to_numpy(), prices.dates, prices.tickers, seq_len=1)
    labels = L.make_labels(prices, bench, h, "classification")
    samples, _ = split_samples(index, labels, L.label_end_dates(prices, h), split)
    dates = index.sample_dates()
    for name in ("train", "valid"):
        start, end = split.period(name)
        in_period = prices.dates[(prices.dates >= start) & (prices.dates <= end)]
        kept = np.unique(dates[samples[name]])
        assert list(kept) == list(in_period[:-h])  # the last h dates of the period are purged
    start, end = split.period("test")
    assert len(np.unique(dates[samples["test"]])) == ((prices.dates >= start) & (prices.dates <= end)).sum()


def test_auto_split_on_tiny_data_names_the_option():
    with pytest.raises(DataError, match="--split TRAIN_END,VALID_END") as err:
        auto_split(pd.bdate_range("2020-01-01", periods=40), horizon=10)
    assert "40 dates" in str(err.value) and "8 valid" in str(err.value)


def test_split_errors_name_the_option():
    dates = pd.bdate_range("2015-01-01", "2018-12-31")
    with pytest.raises(DataError, match="--split TRAIN_END,VALID_END"):
        check_split_covers(Split(), dates)  # the embedded preset's 1996-2012 train period
    with pytest.raises(ConfigError, match=r"\[model.split\]"):
        Split(train_end="2020-01-01", valid_start="2019-01-01")
    assert "--split" in SPLIT_FIX


def test_split_option_sets_validation_and_test_after_its_ends():
    d = split_from_ends("2016-06-30", "2017-06-30")
    assert d == {
        "train_start": "",
        "train_end": "2016-06-30",
        "valid_start": "2016-07-01",
        "valid_end": "2017-06-30",
        "test_start": "2017-07-01",
        "test_end": "",
    }
    s = fill_split(d, pd.bdate_range("2015-01-01", "2018-12-31"))
    assert (s.train_start, s.test_end) == ("2015-01-01", "2018-12-31")
    for bad in ("2017-06-30,2016-06-30", "2016-13-45,2017-01-01"):
        with pytest.raises(ConfigError, match="--split"):
            split_from_ends(*bad.split(","))


def _args(*argv):
    return run_backtest.main_parser().parse_args(list(argv))


def test_split_is_auto_for_every_source_but_the_embedded_data(tmp_path):
    assert isinstance(load_config("default")["model"]["split"], dict)
    assert load_config("default", overrides={"data": {"source": "csv"}})["model"]["split"] == "auto"
    assert load_config("seed", overrides={"data": {"source": "yfinance"}})["model"]["split"] == "auto"
    path = tmp_path / "c.toml"
    path.write_text('[data]\nsource = "csv"\n[model.split]\ntrain_end = "2016-12-31"\n')
    assert load_config(path=path)["model"]["split"]["train_end"] == "2016-12-31"  # set by the file: kept
    path.write_text('[model]\nsplit = "auto"\n')
    assert load_config(path=path)["model"]["split"] == "auto"  # also on the embedded data, when asked
    path.write_text('[model]\nsplit = "later"\n')
    with pytest.raises(ConfigError, match='or "auto"'):
        load_config(path=path)


def test_split_option_on_the_command_line():
    config = run_backtest.config_from_args(_args("--split", "2010-12-31,2014-12-31"))
    split = config["model"]["split"]
    assert (split["train_start"], split["train_end"], split["test_start"]) == ("1996-01-01", "2010-12-31", "2015-01-01")
    with pytest.raises(ConfigError, match="--split"):
        run_backtest.config_from_args(_args("--split", "2010-12-31"))


def test_resolved_split_is_what_the_model_and_its_artifact_key_get(tmp_path):
    config = load_config("default", overrides={"data": {"source": "csv"}})
    prices, bench = make_synthetic_universe(n_tickers=4, n_days=500, seed=2, ohlcv=False)
    data = MarketData(prices, bench)
    with pytest.raises(ConfigError, match="resolve_split"):
        model_config(config)
    resolved = resolve_split(config, data)
    assert model_config(resolved).split == auto_split(prices.dates, 10)
    assert "auto" in describe_split(resolved) and "purged 10 days" in describe_split(resolved)
    # a shorter history gives other dates, so another model key
    short = MarketData(PricePanel({"close": prices.close.iloc[:400]}, {"close"}), bench.iloc[:400])
    other = resolve_split(config, short)
    assert other["model"]["split"] != resolved["model"]["split"]
    assert model_config(other).fingerprint() != model_config(resolved).fingerprint()
    start, end = backtest_period(config, data)
    assert (str(start.date()), end) == (resolved["model"]["split"]["test_start"], prices.dates[-1])


# ----------------------------------------------------------------------------- 6. planted control
# Output of make_synthetic_universe at commit a6bcd59, before planted_ic existed, saved by running
# that commit's feeds/synthetic.py. Stored as arrays, not digests: numpy picks its exp/log kernels
# by CPU (AVX2 or AVX-512), so the last bits of a price may differ between machines.
BEFORE_PLANTED_IC = Path(__file__).parent / "fixtures" / "synthetic_before_planted_ic.npz"
BEFORE_PLANTED_IC_CASES = {
    "ohlcv": dict(n_tickers=10, n_days=150, seed=5),
    "close": dict(n_tickers=12, n_days=200, seed=1, ohlcv=False, fat_tails=False),
}


def test_planted_ic_zero_equals_the_generator_before_it():
    # A kernel's exp/log differs by a few ulp between CPUs; a price is the exp of a 200-day sum of
    # log returns, so it can move by ~200 * 4 ulp ~ 2e-13 relative. rtol 1e-10 leaves 500x headroom,
    # while any real change (a different draw, a changed formula) moves prices by 1e-4 or more.
    # Volumes are rounded to whole shares, so a last-bit change may flip one share.
    stored = np.load(BEFORE_PLANTED_IC)
    for tag, kwargs in BEFORE_PLANTED_IC_CASES.items():
        panel, bench = make_synthetic_universe(**kwargs, planted_ic=0.0)
        for field in sorted(panel.available):
            np.testing.assert_allclose(
                panel[field].to_numpy(),
                stored[f"{tag}_{field}"],
                rtol=1e-10,
                atol=1.0 if field == "volume" else 0.0,
                err_msg=f"{tag} {field}",
            )
        np.testing.assert_allclose(bench.to_numpy(), stored[f"{tag}_benchmark"], rtol=1e-10)
    assert {k.split("_")[0] for k in stored.files} == set(BEFORE_PLANTED_IC_CASES)


def test_planted_drift_is_causal_and_follows_the_reversal_by_a_loop():
    rng = np.random.default_rng(0)
    n_days, n = 80, 6
    log_ret = rng.normal(0, 0.02, (n_days, n))
    first = np.array([0, 0, 0, 10, 30, 0])
    alive = np.arange(n_days)[:, None] >= first[None, :]
    log_ret = np.where(alive, log_ret, 0.0)
    log_ret[first, np.arange(n)] = 0.0
    scale = np.linspace(0.001, 0.003, n)
    out = plant_reversal(log_ret, alive, first, scale)
    log_price = np.cumsum(out, axis=0)
    for t in range(PLANTED_LOOKBACK, n_days - 1):  # the drift on t+1, rebuilt from prices up to t
        have = [i for i in range(n) if alive[t, i] and t - PLANTED_LOOKBACK >= first[i]]
        reversal = {i: -(log_price[t, i] - log_price[t - PLANTED_LOOKBACK, i]) for i in have}
        order = sorted(have, key=lambda i: reversal[i])
        for rank, i in enumerate(order, start=1):
            g = math.sqrt(12) * ((rank - 0.5) / len(have) - 0.5)
            assert out[t + 1, i] - log_ret[t + 1, i] == pytest.approx(scale[i] * g, abs=1e-15)
        for i in set(range(n)) - set(have):
            assert out[t + 1, i] == log_ret[t + 1, i]
    # changing a return on day k changes nothing before k
    k = 50
    bumped = log_ret.copy()
    bumped[k, 0] += 0.05  # one stock: the ranks after k change
    out2 = plant_reversal(bumped, alive, first, scale)
    np.testing.assert_array_equal(out2[:k], out[:k])
    assert not np.array_equal(out2[k + 1 :], out[k + 1 :])


def test_uniform_scores_have_mean_zero_and_unit_variance():
    g = uniform_scores(np.r_[np.random.default_rng(1).normal(size=500), np.nan])
    assert np.isnan(g[-1]) and abs(np.nanmean(g)) < 1e-12
    assert np.nanvar(g) == pytest.approx(1 - 1 / 500**2)
    assert drift_scale(0.0) == 0.0


def test_measured_rank_ic_of_the_planted_feature_is_near_planted_ic():
    """150 stocks x 1500 days: the reversal's rank IC against the 10-day forward excess return (the
    alpha-quality functions) lies within 3 standard errors of the planted 0.10."""
    planted = 0.10
    data = planted_data(n_tickers=150, n_days=1500, planted_ic=planted, seed=11)
    close = data.prices.close
    reversal = -np.log(close / close.shift(20))
    s = ic_summary(daily_ic(reversal, forward_excess_returns_from(close, data.benchmark, 10), "spearman"), 10)
    print(f"planted {planted}: measured rank IC {s['mean']:.4f} ± {s['se']:.4f} (Newey-West se over all days)")
    assert 0.003 < s["se"] < 0.02
    assert abs(s["mean"] - planted) < 3 * s["se"]
    # the same universe without the plant: no signal
    null, bench = make_synthetic_universe(n_tickers=150, n_days=1500, seed=11, ohlcv=False)
    rev0 = -np.log(null.close / null.close.shift(20))
    s0 = ic_summary(daily_ic(rev0, forward_excess_returns_from(null.close, bench, 10), "spearman"), 10)
    assert abs(s0["mean"]) < 3 * s0["se"]
    assert "SYNTHETIC" in data.caveats[0] and data.prices.name.endswith("planted0.1")


def test_planted_ic_out_of_range_is_refused():
    with pytest.raises(ConfigError, match="planted_ic"):
        make_synthetic_universe(n_tickers=5, n_days=50, planted_ic=0.7)


# ----------------------------------------------------------------------------- end to end (slow)
@pytest.mark.slow
def test_csv_folder_2015_2018_runs_end_to_end_with_the_auto_split(tmp_path, capsys):
    """A new user's CSV folder (written here from the embedded data, 2015-2018) runs with no split
    option: the auto split is printed, the model records it, the backtest is its test period."""
    import json

    from core.io import write_text
    from feeds import load_embedded
    from feeds.csv_folder import read_price_csv
    from models.artifact import read_meta

    prices, bench = load_embedded()
    folder = tmp_path / "csv"
    tickers = prices.tickers[:8]
    for ticker, frame in [(t, prices.frame(t)) for t in tickers] + [("SP500", bench.to_frame("close"))]:
        part = frame.loc["2015-01-01":"2018-12-31", ["close"]].rename(columns={"close": "Close"})
        write_text(folder / f"{ticker}.csv", part.to_csv(index_label="Date"))
    assert read_price_csv(folder / "SP500.csv")[0].index[0] == pd.Timestamp("2015-01-02")
    small = tmp_path / "small.toml"
    small.write_text("[model]\nhidden = 8\nepochs = 2\npatience = 1\nstride = 2\n")
    code = run_backtest.main(
        [
            "--data",
            str(folder),
            "--benchmark",
            "SP500",
            "--config",
            str(small),
            "--no-progress",
            "--out",
            str(tmp_path / "results"),
            "--name",
            "csv",
            "--model-store",
            str(tmp_path / "store"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    dates = pd.bdate_range("2015-01-01", "2018-12-31").intersection(bench.loc["2015":"2018"].index)
    want = auto_split(dates, 10)
    assert f"split (auto: 60/20/20 % of the data's dates): {want.describe()}" in out
    run = json.loads((tmp_path / "results" / "csv" / "run.json").read_text())
    assert run["config"]["model"]["split"] == want.to_dict()
    assert run["period"] == [want.test_start, "2018-12-31"]
    assert read_meta(Path(run["model_path"]))["config"]["split"] == want.to_dict()  # the artifact records it
    alpha = json.loads((tmp_path / "results" / "csv" / "alpha.json").read_text())
    assert {"rank_ic", "tradeable_rank_ic"} <= set(alpha["horizons"]["10"])
    assert "tradeable rank IC" in out


@pytest.mark.slow
def test_lstm_recovers_the_planted_rank_ic():
    """Positive control: the LSTM (small config, default features) on 120 planted stocks finds
    >= 60 % of the planted rank IC on its test period (the last 20 % of the dates)."""
    from models import AlphaModel

    planted = 0.10
    data = planted_data(n_tickers=120, n_days=1200, planted_ic=planted, seed=0)
    config = load_config("default", overrides={"model": {"split": "auto", "hidden": 16, "epochs": 3, "stride": 2}})
    config = resolve_split(config, data)
    model = AlphaModel(model_config(config)).fit(data.prices, data.benchmark, progress=False)
    d = model_diagnostics(model, data, config)
    test, trade = d["test_rank_ic"], d["test_tradeable_rank_ic"]
    print(f"LSTM test rank IC {test['mean']:.4f} ± {test['se']:.4f}, tradeable {trade['mean']:.4f} ± {trade['se']:.4f}")
    assert test["mean"] >= 0.6 * planted
    assert trade["mean"] >= 0.6 * planted


def test_a_run_without_a_model_and_with_start_and_end_needs_no_split():
    """Scores from a file on 40 days of data: too short for the auto split, and the split decides nothing."""
    prices, bench = make_synthetic_universe(n_tickers=6, n_days=40, seed=3, ohlcv=False, late_start_share=0)
    data = MarketData(prices, bench)
    config = load_config(
        "default",
        overrides={"data": {"source": "csv"}, "backtest": {"start": str(prices.dates[5].date()), "end": "2030-01-01"}},
    )
    assert not needs_split(config, model_used=False) and needs_split(config, model_used=True)
    assert backtest_period(config, data) == (prices.dates[5], prices.dates[-1])
    config["backtest"]["end"] = ""
    with pytest.raises(DataError, match="--split TRAIN_END,VALID_END"):
        backtest_period(config, data)
