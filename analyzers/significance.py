"""The standard error and t-statistic of a mean, from the same values as the mean.

Every t and standard error of a mean IC or a mean return the project prints or saves comes from
`mean_se_t` (analyzers/ic.ic_summary for daily ICs, zoo.py for means over seeds), so a t never
disagrees in sign with the mean printed beside it.

Newey–West (HAC): for values x_1..x_n with mean m and e_t = x_t − m,

    S = Σ_t e_t² + 2 Σ_{j=1..L} w_j Σ_{t>j} e_t e_{t−j},   w_j = 1 − j / (L + 1)   (Bartlett)
    se = sqrt(S / n² · n / (n − 1)),   t = m / se

S comes from statsmodels' `S_hac_simple` (the Bartlett kernel of its OLS `cov_type="HAC"`); the
sandwich of a regression on a constant is S / n². The factor n / (n − 1) is statsmodels'
`use_correction=True`, so that with L = 0 the se is the classical sd(ddof=1) / √n and the t is a
one-sample t-test (a mean over 5 seeds must not lose that factor; over 1,500 days it is 1.0003).
An h-day label on consecutive days overlaps its neighbours by h − 1 days, hence L = h − 1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from statsmodels.stats.sandwich_covariance import S_hac_simple

from core.errors import ConfigError


class MeanT(NamedTuple):
    mean: float
    se: float  # standard error of `mean`
    t: float  # mean / se, NaN when se is 0 or there are fewer than 2 values
    n: int  # values used (the finite ones)


def mean_se_t(values, lags: int = 0) -> MeanT:
    """Mean of the finite values, its Newey–West standard error with `lags` lags (0: the classical
    sd / √n) and t = mean / se. The finite values are taken as consecutive: a NaN row is dropped, not
    counted as a lag. Fewer than 2 values, or values that do not vary, give se and t NaN."""
    if int(lags) < 0:
        raise ConfigError(f"lags={lags!r}: the Newey-West lag count must be >= 0 (h - 1 for an h-day label).")
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    n, nan = len(x), float("nan")
    if n == 0:
        return MeanT(nan, nan, nan, 0)
    mean = float(x.mean())
    if n < 2:
        return MeanT(mean, nan, nan, n)
    e = x - mean
    s = float(S_hac_simple(e, nlags=min(int(lags), n - 1))[0, 0])
    se = math.sqrt(max(s, 0.0) / (n * (n - 1)))
    if not se > 1e-12 * float(np.max(np.abs(x))):  # constant values: e is rounding noise, not spread
        return MeanT(mean, nan, nan, n)
    return MeanT(mean, se, mean / se, n)
