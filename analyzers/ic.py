"""Alpha statistics: IC, rank IC, ICIR, quintile returns, hit rate and calibration of a score.

Pure functions on wide frames (index = dates, columns = tickers) that work offline on any score
panel; no I/O. The report writer is analyzers/alpha_report.py, the Backtrader analyzer
analyzers/alpha_quality.py.

Definitions (Qlib / alphalens conventions):
- forward excess return over h days, at date t: close[t+h] / close[t] − 1 minus the same for the
  benchmark, t+h counted in rows of the close frame (trading days). It is the label the score on
  day t tries to predict; the score on t uses data up to t only.
- daily IC: the cross-sectional correlation on one day between the scores and the forward excess
  returns of the stocks that have both (Pearson = IC; Spearman = rank IC, ties averaged); days
  with fewer than 3 such stocks, or a constant column, give NaN.
- ICIR = mean(IC) / std(IC) (daily, not annualised).
- t-statistic and standard error of the mean IC: h-day labels of consecutive days overlap by h−1
  days, so daily ICs are strongly autocorrelated and mean / (std / √n) over all days overstates
  significance (≈3× for h=10 on the embedded data). `t_stat` and `se` are Newey–West (HAC,
  Bartlett kernel, h−1 lags) over all days with an IC, the same days as `mean`
  (analyzers/significance.mean_se_t). Secondary, from its own sample: `mean_nonoverlap`,
  `se_nonoverlap`, `t_stat_nonoverlap` over every h-th day of the days with an IC
  (`n_independent_days`), classical se = std / √n (ddof=1). `t_stat_naive` (all days, no lags)
  is reported beside them for comparison. Every t has the sign of the mean it is reported with.
- signal vs tradeable IC: the signal IC correlates the score of day t with the forward return from
  the close of t; an order decided on t fills on the next bar (on close-only data at its close), so
  the tradeable IC (`tradeable_ic`, `tradeable_rank_ic`) uses the same horizon from the fill day
  (lag 1, see forward_excess_returns_from). A signal that lives on the first day alone shows a
  signal IC and no tradeable IC.
- quintiles: each day the stocks with both values are split by score rank into 5 equal groups
  (group = ceil(rank / n × 5), ranks averaged on ties; needs ≥ 5 stocks); the table is the mean over
  days of each group's mean forward excess return (each day weighted equally).
- hit rate: share of stock-days (with both values) where (score > 0) == (forward excess > 0).
- calibration: p = (score + 1) / 2 (the indicator's score = 2p − 1); stock-days are binned by p into
  `bins` equal-count bins (`strategy="quantile"`, default: an honest p sits near 0.5, so
  equal-width bins would leave all but two empty) or equal-width bins on [0, 1]
  (`strategy="uniform"`); each bin reports its mean p and the realised frequency of forward
  excess > 0. A calibrated score has the two equal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyzers.significance import mean_se_t
from core.errors import ConfigError, DataError

MIN_STOCKS = 3
DAILY_KEYS = ("daily_rank_ic", "daily_tradeable_rank_ic")  # alpha_report's frames: CSV and plot, not JSON


# ---------------------------------------------------------------- pure computations


def forward_excess_returns_from(close: pd.DataFrame, benchmark: pd.Series, horizon: int, lag: int = 0) -> pd.DataFrame:
    """Stock forward return over `horizon` rows minus the benchmark's over the same dates.

    At date t: close[t+lag+h] / close[t+lag] − 1 minus the same for the benchmark. ``lag=0`` is
    the signal's own label (from the close the score was made at); ``lag=1`` is the *tradeable*
    return, from the fill day of an order decided at t (on close-only data the fill price is that
    day's close) over the same horizon."""
    if int(horizon) < 1:
        raise ConfigError(f"horizon={horizon!r}: the forward-return horizon must be >= 1 day.")
    if int(lag) < 0:
        raise ConfigError(f"lag={lag!r}: the days from the score to the first price must be >= 0.")
    h, lag = int(horizon), int(lag)
    stock = close.shift(-(h + lag)) / close.shift(-lag) - 1.0
    bench = benchmark.reindex(close.index)
    bench_fwd = bench.shift(-(h + lag)) / bench.shift(-lag) - 1.0
    return stock.sub(bench_fwd, axis=0)


def _aligned(scores: pd.DataFrame, fwd: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    index = scores.index.intersection(fwd.index)
    columns = scores.columns.intersection(fwd.columns)
    if len(columns) == 0:
        raise DataError(
            "scores and forward returns share no ticker column; "
            f"scores has {list(scores.columns)[:5]}..., fwd has {list(fwd.columns)[:5]}..."
        )
    s = scores.loc[index, columns].to_numpy(dtype=float)
    f = fwd.loc[index, columns].to_numpy(dtype=float)
    both = np.isfinite(s) & np.isfinite(f)
    return np.where(both, s, np.nan), np.where(both, f, np.nan), index


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of x with the same row of y; NaNs are already joint."""
    n = np.sum(np.isfinite(x), axis=1)
    with np.errstate(all="ignore"), _quiet():
        xc = x - np.nanmean(x, axis=1, keepdims=True)
        yc = y - np.nanmean(y, axis=1, keepdims=True)
        den = np.sqrt(np.nansum(xc * xc, axis=1) * np.nansum(yc * yc, axis=1))
        r = np.nansum(xc * yc, axis=1) / den
    r[(n < MIN_STOCKS) | ~(den > 1e-15)] = np.nan
    return r


def daily_ic(scores: pd.DataFrame, fwd: pd.DataFrame, method: str = "pearson") -> pd.Series:
    """Per-day cross-sectional correlation of scores and forward returns (see module doc)."""
    if method not in ("pearson", "spearman"):
        raise ConfigError(f"method={method!r}: use 'pearson' (IC) or 'spearman' (rank IC).")
    s, f, index = _aligned(scores, fwd)
    if method == "spearman":
        s = pd.DataFrame(s).rank(axis=1).to_numpy()  # NaN stays NaN, ties averaged
        f = pd.DataFrame(f).rank(axis=1).to_numpy()
    ic = _rowwise_pearson(s, f)
    return pd.Series(ic, index=index, name="rank_ic" if method == "spearman" else "ic")


def ic_summary(ic_series: pd.Series, horizon: int = 1) -> dict:
    """mean, std, ICIR, share of positive days; the mean's Newey–West t and se over all days, and
    the secondary t of the non-overlapping days with its own mean (see module doc)."""
    ic = ic_series.dropna()
    h = max(int(horizon), 1)
    hac = mean_se_t(ic, lags=h - 1)
    every_h = mean_se_t(ic.iloc[::h])
    nan = float("nan")
    std = float(ic.std(ddof=1)) if len(ic) > 1 else nan
    return {
        "mean": hac.mean,
        "std": std,
        "icir": float(hac.mean / std) if len(ic) > 1 and std > 0 else nan,
        "positive_share": float((ic > 0).mean()) if len(ic) else nan,
        "n_days": int(len(ic)),
        "t_stat": hac.t,
        "se": hac.se,
        "hac_lags": h - 1,
        "mean_nonoverlap": every_h.mean,
        "t_stat_nonoverlap": every_h.t,
        "se_nonoverlap": every_h.se,
        "n_independent_days": every_h.n,
        "t_stat_naive": mean_se_t(ic).t,
    }


def quintile_returns(scores: pd.DataFrame, fwd: pd.DataFrame, quantiles: int = 5) -> pd.Series:
    """Mean forward excess return by score quintile (1 = lowest scores), days weighted equally."""
    s, f, index = _aligned(scores, fwd)
    ranks = pd.DataFrame(s).rank(axis=1).to_numpy()
    n = np.sum(np.isfinite(s), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        group = np.ceil(ranks / n * quantiles)
    group[np.broadcast_to(n < quantiles, group.shape)] = np.nan
    out = {}
    for g in range(1, quantiles + 1):
        daily = np.where(group == g, f, np.nan)
        with np.errstate(all="ignore"), _quiet():
            per_day = np.nanmean(daily, axis=1)
        out[g] = float(np.nanmean(per_day)) if np.isfinite(per_day).any() else float("nan")
    return pd.Series(out, name="mean_fwd_excess").rename_axis("quintile")


def hit_rate(scores: pd.DataFrame, fwd: pd.DataFrame) -> float:
    """Share of stock-days where (score > 0) agrees with (forward excess return > 0)."""
    s, f, _ = _aligned(scores, fwd)
    both = np.isfinite(s)
    if not both.any():
        return float("nan")
    return float(np.mean((s[both] > 0) == (f[both] > 0)))


def calibration_table(
    scores: pd.DataFrame, fwd: pd.DataFrame, bins: int = 10, strategy: str = "quantile"
) -> pd.DataFrame:
    """Predicted p = (score + 1) / 2 against the realised frequency of forward excess > 0."""
    s, f, _ = _aligned(scores, fwd)
    both = np.isfinite(s)
    p, won = (s[both] + 1.0) / 2.0, (f[both] > 0).astype(float)
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1))) if len(p) else np.array([0.0, 1.0])
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    else:
        raise ConfigError(f"strategy={strategy!r}: use 'quantile' or 'uniform'.")
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        m = which == b
        if m.any():
            rows.append(
                {
                    "bin": b + 1,
                    "p_low": float(edges[b]),
                    "p_high": float(edges[b + 1]),
                    "count": int(m.sum()),
                    "mean_p": float(p[m].mean()),
                    "realised": float(won[m].mean()),
                }
            )
    return pd.DataFrame(rows, columns=["bin", "p_low", "p_high", "count", "mean_p", "realised"])


def alpha_report(
    scores: pd.DataFrame, close: pd.DataFrame, benchmark: pd.Series, horizons=(1, 5, 10, 20), calibration_bins: int = 10
) -> dict:
    """All of the above for each horizon, as a JSON-ready dict. `ic` / `rank_ic` are the signal ICs
    (from the close the score was made at), `tradeable_ic` / `tradeable_rank_ic` the same from the
    fill day (`fill_lag` = 1 bar later).

    The non-JSON entries (DAILY_KEYS), `daily_rank_ic` and `daily_tradeable_rank_ic` (DataFrames
    date × horizon of the signal and the tradeable rank IC), feed the cumulative-IC plot and the CSV
    that `write_alpha_report` writes; alpha.json leaves them out.
    """
    scores = scores.sort_index()
    report = {
        "n_days": int(scores.notna().any(axis=1).sum()),
        "n_stocks": int(scores.shape[1]),
        "start": _iso(scores.index.min()),
        "end": _iso(scores.index.max()),
        "horizons": {},
    }
    daily, daily_tradeable = {}, {}
    report["fill_lag"] = 1  # tradeable_*: forward returns from the fill day, one bar after the score
    for h in horizons:
        fwd = forward_excess_returns_from(close, benchmark, h)
        fwd_fill = forward_excess_returns_from(close, benchmark, h, lag=1)
        ic = daily_ic(scores, fwd, "pearson")
        ric = daily_ic(scores, fwd, "spearman")
        tradeable_ric = daily_ic(scores, fwd_fill, "spearman")
        daily[int(h)], daily_tradeable[int(h)] = ric, tradeable_ric
        q = quintile_returns(scores, fwd)
        calib = calibration_table(scores, fwd, bins=calibration_bins)
        report["horizons"][str(int(h))] = {
            "ic": ic_summary(ic, h),
            "rank_ic": ic_summary(ric, h),
            "tradeable_ic": ic_summary(daily_ic(scores, fwd_fill, "pearson"), h),
            "tradeable_rank_ic": ic_summary(tradeable_ric, h),
            "quintile_mean_fwd_excess": {str(k): v for k, v in q.items()},
            "top_minus_bottom": float(q.iloc[-1] - q.iloc[0]),
            "hit_rate": hit_rate(scores, fwd),
            "calibration": calib.to_dict("records"),
        }
    report["daily_rank_ic"] = pd.DataFrame(daily)
    report["daily_tradeable_rank_ic"] = pd.DataFrame(daily_tradeable)
    return report


class _quiet:
    """Silence numpy's 'Mean of empty slice' warnings on days without a stock in a group."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def _iso(ts):
    return ts.isoformat() if hasattr(ts, "isoformat") and not pd.isna(ts) else None
