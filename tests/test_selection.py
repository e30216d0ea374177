"""analyzers/selection.py against published numbers, brute force and simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from analyzers.selection import (
    deflated_sharpe,
    deflated_sharpe_from_stats,
    expected_max_sharpe,
    pbo,
    probabilistic_sharpe,
    psr_from_stats,
    return_moments,
    sharpe,
)
from core.errors import ConfigError

# The Deflated Sharpe Ratio (Bailey & López de Prado 2014), "a numerical example": the best of N = 100
# trials has an annualised Sharpe of 2.5 over 5 years of daily returns (T = 1250, 250 a year), the
# trials' annualised Sharpes have variance 1/2, skew -3, kurtosis 10 (not excess). The paper prints
# SR0 = 0.1132 (per day) and DSR = 0.9004, and that N = 46 trials would have given 0.9505. Units: the
# Sharpe divides by sqrt(250), its variance by 250. (pypbo's test pins the same case at 0.90039683.)
PAPER = {"sr": 2.5 / math.sqrt(250), "n_obs": 1250, "skew": -3.0, "kurtosis": 10.0, "sr_variance": 0.5 / 250}


def test_the_deflated_sharpe_papers_worked_example():
    assert expected_max_sharpe(100, PAPER["sr_variance"]) == pytest.approx(0.1132, abs=5e-5)
    assert deflated_sharpe_from_stats(n_trials=100, **PAPER) == pytest.approx(0.9004, abs=5e-5)
    assert deflated_sharpe_from_stats(n_trials=46, **PAPER) == pytest.approx(0.9505, abs=5e-5)
    # one trial: nothing chosen, the DSR is the PSR against zero
    no_choice = psr_from_stats(PAPER["sr"], PAPER["n_obs"], PAPER["skew"], PAPER["kurtosis"])
    assert deflated_sharpe_from_stats(n_trials=1, **PAPER) == no_choice
    assert no_choice > 0.9004


def test_psr_by_hand_on_a_series():
    rng = np.random.default_rng(5)
    r = rng.normal(0.0005, 0.01, 500) + np.where(rng.random(500) < 0.03, -0.04, 0.0)
    mean, sd = r.mean(), r.std(ddof=1)
    d = r - mean
    skew = np.mean(d**3) / np.mean(d**2) ** 1.5
    kurt = np.mean(d**4) / np.mean(d**2) ** 2
    assert skew == pytest.approx(stats.skew(r)) and kurt == pytest.approx(stats.kurtosis(r, fisher=False))
    sr = mean / sd
    z = (sr - 0.01) * math.sqrt(499) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert probabilistic_sharpe(r, sr_benchmark=0.01) == pytest.approx(stats.norm.cdf(z), rel=1e-12)
    m = return_moments(r)
    assert (m["sr"], m["n_obs"]) == (pytest.approx(sr), 500)
    # the DSR from returns is the PSR against the expected maximum
    bar = expected_max_sharpe(30, 0.004)
    assert deflated_sharpe(r, 30, 0.004) == pytest.approx(probabilistic_sharpe(r, bar), rel=1e-12)
    # a PSR of a zero Sharpe against zero is one half; more trials, lower DSR
    assert probabilistic_sharpe(np.tile([0.01, -0.01], 50)) == pytest.approx(0.5)
    assert deflated_sharpe(r, 300, 0.004) < deflated_sharpe(r, 30, 0.004)


def test_expected_max_sharpe_against_a_brute_force_simulation():
    """N strategies with no skill, 250 daily N(0, 1) returns each: the mean of the best per-period
    Sharpe over many draws, against the formula fed the variance of the simulated Sharpes. The
    formula is an approximation: by quadrature of E[max of N normals] it overstates by 2.3 % at
    N = 10 and 0.9 % at N = 100 (checked below), so the tolerance is 4 simulation standard errors
    plus 2.5 %. Annualising, or using V instead of sqrt(V), would be off by a factor of 4 or more."""
    rng = np.random.default_rng(7)
    for n, draws in ((10, 2000), (100, 600)):
        exact = integrate.quad(
            lambda x, n=n: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1), -12, 12, limit=200
        )[0]
        assert expected_max_sharpe(n, 1.0) == pytest.approx(exact, rel=0.025)
        best, every = [], []
        for _ in range(draws // 100):
            x = rng.standard_normal((100, 250, n))
            sr = x.mean(axis=1) / x.std(axis=1, ddof=1)
            best.append(sr.max(axis=1))
            every.append(sr.ravel())
        best = np.concatenate(best)
        variance = np.concatenate(every).var(ddof=1)
        assert variance == pytest.approx(1 / 250, rel=0.05)  # per-period units: about 1/T
        se = best.std(ddof=1) / math.sqrt(len(best))
        predicted = expected_max_sharpe(n, variance)
        assert abs(predicted - best.mean()) <= 4 * se + 0.025 * predicted, (n, predicted, best.mean(), se)
    assert expected_max_sharpe(1, 0.01) == 0.0


def _pbo_brute_force(matrix, n_splits):
    """CSCV written out as in pypbo (esvhd/pypbo, pbo.py): drop the oldest T mod S rows, S blocks,
    every C(S, S/2) half, Sharpe per column, scipy's rankdata (average ties), the IS-best's OOS
    rank / (N + 1), logit, PBO = share of logits <= 0."""
    t, n = matrix.shape
    matrix = matrix[t % n_splits :]
    size = matrix.shape[0] // n_splits
    blocks = [matrix[i * size : (i + 1) * size] for i in range(n_splits)]
    logits, slope_x, slope_y = [], [], []
    for combo in itertools.combinations(range(n_splits), n_splits // 2):
        j = np.concatenate([blocks[i] for i in combo])
        j_bar = np.concatenate([blocks[i] for i in range(n_splits) if i not in combo])
        r, r_bar = j.mean(0) / j.std(0, ddof=1), j_bar.mean(0) / j_bar.std(0, ddof=1)
        best = int(np.argmax(stats.rankdata(r)))
        w = stats.rankdata(r_bar)[best] / (n + 1)
        logits.append(math.log(w / (1 - w)))
        slope_x.append(r[best])
        slope_y.append(r_bar[best])
    fit = stats.linregress(slope_x, slope_y)
    return np.array(logits), fit.slope


def test_pbo_equals_a_brute_force_cscv():
    rng = np.random.default_rng(11)
    matrix = rng.normal(0, 0.01, (205, 7))
    matrix[:, 2] += 0.001
    logits, slope = _pbo_brute_force(matrix, 8)
    result = pbo(matrix, n_splits=8)
    np.testing.assert_allclose(result.logits, logits, rtol=0, atol=1e-9)
    assert result.pbo == np.mean(logits <= 0)
    assert result.slope == pytest.approx(slope, rel=1e-9)
    assert result.n_combinations == math.comb(8, 4) and result.n_obs_used == 200


def test_pbo_ties_take_the_average_rank():
    # two identical columns tie everywhere: the IS-best is the first of them, its OOS rank is 2.5 of 3
    rng = np.random.default_rng(2)
    a = rng.normal(0.002, 0.01, 64)
    matrix = np.c_[a, a, rng.normal(-0.002, 0.01, 64)]
    result = pbo(matrix, n_splits=4)
    logits, _ = _pbo_brute_force(matrix, 4)
    np.testing.assert_allclose(result.logits, logits, atol=1e-12)
    assert set(result.chosen) <= {0, 2}


def test_pbo_on_pure_noise_averages_one_half():
    """Even N: the IS-best's OOS rank is uniform, so PBO is 1/2 in expectation. One draw varies a
    lot (its splits share the data), so the average over 30 draws is tested, within 4 standard errors."""
    rng = np.random.default_rng(3)
    values = np.array([pbo(rng.normal(0, 0.01, (320, 20))).pbo for _ in range(30)])
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert se < 0.06
    assert abs(values.mean() - 0.5) < 4 * se, (values.mean(), se)


def test_pbo_with_a_real_edge_is_near_zero():
    rng = np.random.default_rng(4)
    matrix = rng.normal(0, 0.01, (320, 20))
    matrix[:, 7] += 0.004  # a daily Sharpe of 0.4: an edge in every block
    result = pbo(matrix)
    assert result.pbo < 0.01
    assert np.mean(result.chosen == 7) > 0.99
    assert result.prob_oos_loss < 0.01
    assert np.median(result.logits) == pytest.approx(math.log(20 / 1), abs=1e-9)  # rank 20 of 20


def test_a_constant_column_scores_zero():
    rng = np.random.default_rng(8)
    matrix = np.c_[np.zeros(64), np.full(64, 0.001), rng.normal(-0.001, 0.01, (64, 2))]
    result = pbo(matrix, n_splits=4)
    assert np.isfinite(result.logits).all()
    assert sharpe(np.zeros(10)) == 0.0


@pytest.mark.parametrize(
    "call, names",
    [
        (lambda: probabilistic_sharpe([0.01]), "returns"),
        (lambda: probabilistic_sharpe([0.01, np.nan, 0.02]), "returns"),
        (lambda: probabilistic_sharpe(np.zeros((3, 2))), "returns"),
        (lambda: expected_max_sharpe(0, 0.1), "n_trials"),
        (lambda: expected_max_sharpe(2.5, 0.1), "n_trials"),
        (lambda: expected_max_sharpe(10, -1.0), "sr_variance"),
        (lambda: deflated_sharpe(np.ones(5), 10, float("nan")), "sr_variance"),
        (lambda: deflated_sharpe_from_stats(0.1, 1, 0, 3, 10, 0.1), "n_obs"),
        (lambda: pbo(np.zeros((100, 4)), n_splits=7), "n_splits"),
        (lambda: pbo(np.zeros((100, 1))), "returns_matrix"),
        (lambda: pbo(np.zeros(100)), "returns_matrix"),
        (lambda: pbo(np.zeros((20, 3)), n_splits=16), "returns_matrix"),
        (lambda: pbo(np.full((100, 3), np.nan)), "returns_matrix"),
    ],
)
def test_bad_input_names_the_argument(call, names):
    with pytest.raises(ConfigError, match=names):
        call()


def test_metrics_json_carries_the_probabilistic_sharpe():
    from analyzers.metrics import METRIC_KEYS, compute_metrics

    rng = np.random.default_rng(9)
    dates = pd.bdate_range("2017-01-02", periods=600)
    equity = pd.Series(100_000 * np.cumprod(1 + rng.normal(0.0004, 0.01, 600)), index=dates)
    m = compute_metrics(equity, initial_value=100_000.0)
    r = equity.to_numpy() / np.r_[100_000.0, equity.to_numpy()[:-1]] - 1
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    z = sr * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert "psr" in METRIC_KEYS and m["psr"] == pytest.approx(stats.norm.cdf(z), rel=1e-10)
