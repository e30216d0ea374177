"""The positive control (issue 11 item 6): the zoo on a SYNTHETIC universe with a planted 20-day
reversal. Fast: the table's arithmetic (recovered share, s.e., pass/fail) on a hand-made zoo table,
the planted feature's IC against a brute-force loop, the command's option errors. Slow: a lean
positive control (120 stocks, 1 seed, logistic + LightGBM + random + a small LSTM) meets the bars."""

import math

import numpy as np
import pandas as pd
import pytest

import run_backtest
from analyzers.significance import mean_se_t
from feeds import ConfigError
from jobs import zoo
from jobs.market import planted_data
from jobs.periods import resolve_split


def _table(rows):
    """rows: (model, seed, test rank IC, s.e. over its test days)."""
    return pd.DataFrame(
        [[m, s, 0.1, ic, ic / se, ic, 0.0, 0.5, 1.0, se] for m, s, ic, se in rows],
        columns=zoo.ZOO_COLUMNS + ["test_rank_ic_se"],
    )


def _hand_table(logistic=0.05, random=0.05):
    return _table(
        [
            ("lstm", 0, 0.08, 0.02),
            ("lstm", 1, 0.07, 0.02),
            ("lstm", 2, 0.09, 0.03),
            ("logistic", 0, logistic, 0.02),
            ("lightgbm", 0, 0.065, 0.02),
            ("lightgbm", 1, 0.075, 0.02),
            ("mlp", 0, 0.01, 0.02),
            ("random", 0, random, 0.01),
            ("random", 1, random, 0.01),
        ]
    )


def test_recovered_share_se_and_bars_by_hand():
    control = zoo.positive_control(_hand_table(), planted_ic=0.10, feature_ic=0.125)
    lstm = control.loc["lstm"]
    assert lstm["runs"] == 3
    assert lstm["test_rank_ic"] == pytest.approx(0.08)
    assert lstm["test_rank_ic_sd"] == pytest.approx(0.01)  # sd of 0.08, 0.07, 0.09
    assert lstm["se_days"] == pytest.approx((0.02 + 0.02 + 0.03) / 3)  # one run's s.e., averaged
    assert lstm["recovered"] == pytest.approx(0.8)  # 0.08 / 0.10
    assert lstm["worst_seed"] == pytest.approx(0.7)  # 0.07 / 0.10
    assert lstm["of_feature"] == pytest.approx(0.64)  # 0.08 / 0.125
    assert control.loc["lightgbm", "recovered"] == pytest.approx(0.7)
    # bars: >= 60 % of planted for lstm, logistic, lightgbm; |random| <= 3 s.e.; mlp has none
    assert control.loc["lstm", "passed"] and control.loc["lightgbm", "passed"]
    assert not control.loc["logistic", "passed"]  # 50 % < 60 %
    assert not control.loc["random", "passed"]  # 0.05 = 5 s.e. of 0.01
    assert control.loc["mlp", "passed"] is None and control.loc["mlp", "bar"] == "none"


def test_random_bar_is_three_standard_errors_either_side():
    for ic, ok in ((0.029, True), (-0.029, True), (0.031, False), (-0.031, False)):
        control = zoo.positive_control(_hand_table(logistic=0.07, random=ic), planted_ic=0.10)
        assert bool(control.loc["random", "passed"]) is ok, ic
    assert math.isnan(zoo.positive_control(_hand_table(), 0.10).loc["lstm", "of_feature"])  # no feature IC given
    with pytest.raises(ConfigError, match="--planted-ic"):
        zoo.positive_control(_hand_table(), planted_ic=0.0)


def test_verdict_passes_fails_and_says_what_did_not_run():
    passing = zoo.positive_control(_hand_table(logistic=0.07, random=0.0), 0.10)
    assert zoo.positive_control_verdict(passing).startswith("PASS")
    failing = zoo.positive_control(_hand_table(logistic=0.05, random=0.05), 0.10)
    text = zoo.positive_control_verdict(failing)
    assert text.startswith("FAIL") and "logistic, random" in text and "lstm" not in text
    partial = zoo.positive_control(_hand_table(logistic=0.07, random=0.0).query("model != 'lstm'"), 0.10)
    assert zoo.positive_control_verdict(partial) == "INCOMPLETE: the bars met, but lstm did not run (--models)."


def test_zoo_md_gains_the_positive_control_table():
    table = _hand_table()
    info = {
        "data": "SYNTHETIC universe (a test)",
        "horizon": 10,
        "seeds": 3,
        "n_models": 5,
        "sharpe_engine": "vector engine",
        "caveats": ["SYNTHETIC data"],
        "split": {
            k: "2000-01-01" for k in ("train_start", "train_end", "valid_start", "valid_end", "test_start", "test_end")
        },
        "planted": {
            "planted_ic": 0.10,
            "feature": "rel_ret_20",
            "stocks": 150,
            "days": 1500,
            "data_seed": 0,
            "horizon": 10,
            "feature_ic": 0.125,
            "feature_se": 0.02,
        },
    }
    md = zoo.zoo_markdown(table, info)
    section = md[md.index("## Positive control (SYNTHETIC data") :]
    assert "| planted feature (minus rel_ret_20) | – | +0.1250 | 0.0200 | 125 % |" in section
    assert "| lstm | 3 | +0.0800 ± 0.0100 | 0.0233 | 80 % | 70 % | 64 % | recover >= 60% | pass |" in section
    assert "| logistic | 1 | +0.0500 | 0.0200 | 50 % | 50 % | 40 % | recover >= 60% | **FAIL** |" in section
    assert "| mlp | 1 |" in section and "**Positive control:** FAIL: logistic, random" in section


def test_planted_feature_ic_equals_a_loop_over_days():
    from scipy.stats import spearmanr

    data = planted_data(n_tickers=30, n_days=700, planted_ic=0.10, seed=3)
    dates = data.prices.dates
    config = {
        "model": {"horizon": 10, "split": {"test_start": str(dates[500].date()), "test_end": str(dates[-1].date())}}
    }
    got = zoo.planted_feature_ic(data, config)
    close, bench = data.prices.close.to_numpy(), data.benchmark.reindex(dates).to_numpy()
    daily = []
    for t in range(500, len(dates) - 10):  # the last 10 days have no 10-day forward return
        reversal = -np.log(close[t] / close[t - 20])
        fwd = close[t + 10] / close[t] - 1 - (bench[t + 10] / bench[t] - 1)
        ok = np.isfinite(reversal) & np.isfinite(fwd)
        daily.append(spearmanr(reversal[ok], fwd[ok])[0])
    daily = np.array(daily)
    assert got["mean"] == pytest.approx(daily.mean(), abs=1e-12)
    # Newey-West over the same days, 9 lags (tests/test_significance.py checks it against statsmodels' OLS)
    assert got["se"] == pytest.approx(mean_se_t(daily, lags=9).se, rel=1e-9)
    assert got["se"] > 2 * daily.std(ddof=1) / math.sqrt(len(daily))  # wider than the naive se: overlap


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--stocks", "50"], "--stocks only apply with --synthetic-planted"),
        (["--synthetic-planted", "--planted-ic", "0"], "--planted-ic 0.0: give a rank IC between 0 and 1"),
        (["--synthetic-planted", "--stocks", "10"], "--stocks 10 --days 1500: give at least 20 stocks"),
        (["--synthetic-planted", "--data", "prices/"], "drop --data"),
    ],
)
def test_zoo_command_option_errors(argv, message, capsys):
    assert run_backtest.zoo_command(argv) == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------- the lean control (slow)
@pytest.mark.slow
def test_lean_positive_control_meets_the_bars(tmp_path):
    """120 SYNTHETIC stocks x 1200 days, planted rank IC 0.10, seed 0, the auto split; a small LSTM
    (hidden 16, 3 epochs, stride 2 for every model). Logistic, LightGBM and the LSTM each recover
    >= 60 % of the planted rank IC on the test period; random stays within 3 s.e. of 0."""
    from configs import load_config

    planted = {"planted_ic": 0.10, "stocks": 120, "days": 1200, "data_seed": 0, "feature": "rel_ret_20"}
    data = planted_data(120, 1200, 0.10, seed=0)
    config = load_config("default", overrides={"model": {"split": "auto", "hidden": 16, "epochs": 3, "stride": 2}})
    config = resolve_split(config, data)
    table, info = zoo.run_zoo(
        config,
        data,
        tmp_path / "zoo",
        ["lstm", "logistic", "lightgbm", "random"],
        seeds=1,
        workers=1,
        store=tmp_path / "store",
        progress=False,
        data_name="SYNTHETIC (test)",
        planted=planted,
    )
    control = zoo.positive_control(table, 0.10, info["planted"]["feature_ic"])
    print(control[["test_rank_ic", "se_days", "recovered", "passed"]])
    assert info["planted"]["feature_ic"] > 0.06  # the plant is there on these test days
    assert zoo.positive_control_verdict(control).startswith("PASS"), control
    for name in ("lstm", "logistic", "lightgbm"):
        assert table.loc[table.model == name, "test_rank_ic"].iloc[0] >= 0.06, name
    rnd = table.loc[table.model == "random"].iloc[0]
    assert abs(rnd.test_rank_ic) <= 3 * rnd.test_rank_ic_se
    # LightGBM learns on planted data: early stopping keeps more than the 1-4 rounds of the embedded data
    from models import load_any

    assert load_any(info["paths"]["lightgbm/0"]).booster_.num_trees() > 10
    md = (tmp_path / "zoo" / "zoo.md").read_text()
    assert "**Positive control:** PASS" in md and "SYNTHETIC" in md
    assert (tmp_path / "zoo" / "zoo.png").stat().st_size > 1000
