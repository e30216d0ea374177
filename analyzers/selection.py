"""What choosing among many backtests costs: probabilistic and deflated Sharpe, PBO.

Pure functions, no I/O. Every Sharpe ratio here is PER PERIOD (daily returns -> daily Sharpe,
mean / std with ddof = 1), never annualised: the formulas below are stated for per-period
ratios, and an annualised Sharpe fed into them gives nonsense. Annualise for display only
(daily Sharpe x sqrt(252)); a variance of Sharpes scales by the period count (annual variance =
252 x daily variance).

- probabilistic_sharpe (PSR), Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier":
  PSR(SR*) = Phi( (SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2) ),
  SR the observed per-period Sharpe over T returns, g3 their skewness, g4 their kurtosis (NOT
  excess: 3 for a normal). The probability that the true Sharpe exceeds SR*.
- expected_max_sharpe, the "false strategy" benchmark (Bailey & López de Prado 2014):
  E[max SR of N skill-less trials] ~ sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))),
  V the variance of the N trials' Sharpes, gamma the Euler-Mascheroni constant.
- deflated_sharpe (DSR), Bailey & López de Prado (2014), "The Deflated Sharpe Ratio": the PSR
  of the chosen trial against SR* = expected_max_sharpe(N, V), i.e. the probability that its true
  Sharpe is above zero once the selection among N trials is accounted for. DSR >= 0.95 is the
  usual bar.
- pbo, Bailey, Borwein, López de Prado & Zhu (2015), "The Probability of Backtest Overfitting":
  combinatorially symmetric cross-validation (CSCV) over a days x variants return matrix.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri

from core.errors import ConfigError

EULER_GAMMA = 0.5772156649015329  # the Euler-Mascheroni constant


# ----------------------------------------------------------------------------- input checks
def _vector(returns, name: str) -> np.ndarray:
    x = np.asarray(returns, dtype="float64")
    if x.ndim != 1:
        raise ConfigError(f"{name} must be one series of per-period returns (1-D), got shape {x.shape}")
    if len(x) < 2:
        raise ConfigError(f"{name} has {len(x)} return(s); a Sharpe ratio needs at least 2")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ConfigError(
            f"{name} has {int(bad.sum())} NaN or infinite value(s) (first at position "
            f"{int(np.flatnonzero(bad)[0])}); drop or fill them first (e.g. returns.dropna())"
        )
    return x


def _trials(n_trials, sr_variance) -> tuple[int, float]:
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise ConfigError(f"n_trials={n_trials!r}: give the number of variants tried, a whole number >= 1")
    if (
        not isinstance(sr_variance, (int, float, np.floating, np.integer))
        or not math.isfinite(sr_variance)
        or sr_variance < 0
    ):
        raise ConfigError(
            f"sr_variance={sr_variance!r}: give the variance of the trials' per-period Sharpe "
            "ratios, a finite number >= 0"
        )
    return int(n_trials), float(sr_variance)


# ----------------------------------------------------------------------------- moments
def sharpe(returns) -> float:
    """Per-period Sharpe: mean(r) / std(r, ddof=1); 0.0 when the returns do not vary (a variant
    that never trades has no return and no risk)."""
    x = _vector(returns, "returns")
    sd = x.std(ddof=1)
    return float(x.mean() / sd) if sd > 0 else 0.0


BLOCK_BYTES = 64 << 20  # float64 bytes of one block of columns read at a time from a returns matrix


def column_blocks(matrix, max_bytes: int | None = None):
    """(columns slice, float64 block of those columns; a view when the matrix is float64) over a
    days x variants matrix, at most `max_bytes` (default BLOCK_BYTES) of float64 at a time: a float32
    matrix (or a np.memmap of one) of 100,000 variants is never copied whole into float64."""
    if not hasattr(matrix, "shape") or not hasattr(matrix, "dtype"):
        matrix = np.asarray(matrix, dtype="float64")
    if matrix.ndim != 2:
        raise ConfigError(f"returns matrix must be days x variants, got shape {matrix.shape}")
    step = max(1, int(max_bytes or BLOCK_BYTES) // (8 * max(1, matrix.shape[0])))
    for lo in range(0, matrix.shape[1], step):
        cols = slice(lo, min(matrix.shape[1], lo + step))
        yield cols, np.asarray(matrix[:, cols], dtype="float64")


def sharpe_columns(matrix, minus=None, max_bytes: int | None = None) -> np.ndarray:
    """Per-period Sharpe of each column of a days x variants matrix (0.0 for a constant column),
    read in column blocks; `minus`: a per-day series subtracted from every column first (excess returns)."""
    shape = np.shape(matrix)
    if len(shape) != 2 or shape[0] < 2:
        raise ConfigError(f"returns matrix must be days x variants with at least 2 days, got shape {shape}")
    out = np.zeros(shape[1])
    for cols, x in column_blocks(matrix, max_bytes):
        if minus is not None:
            x = x - np.asarray(minus, dtype="float64").reshape(-1, 1)  # x may be a view of the input
        sd = x.std(axis=0, ddof=1)
        mean = x.mean(axis=0)
        out[cols] = np.divide(mean, sd, out=np.zeros_like(mean), where=sd > 0)
    return out


def return_moments(returns) -> dict:
    """{"sr", "n_obs", "skew", "kurtosis"} of a return series: per-period Sharpe (ddof = 1), and
    the sample skewness m3 / m2^1.5 and kurtosis m4 / m2^2 (central moments with 1/T, kurtosis
    NOT excess: 3 for a normal). A constant series gets skew 0 and kurtosis 3."""
    x = _vector(returns, "returns")
    d = x - x.mean()
    m2 = float(np.mean(d**2))
    if m2 <= 0:
        return {"sr": 0.0, "n_obs": len(x), "skew": 0.0, "kurtosis": 3.0}
    return {
        "sr": sharpe(x),
        "n_obs": len(x),
        "skew": float(np.mean(d**3) / m2**1.5),
        "kurtosis": float(np.mean(d**4) / m2**2),
    }


# ----------------------------------------------------------------------------- PSR, DSR
def psr_from_stats(sr: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0, sr_benchmark: float = 0.0) -> float:
    """PSR = Phi((sr - sr_benchmark) sqrt(n_obs - 1) / sqrt(1 - skew sr + (kurtosis - 1)/4 sr^2)).

    sr and sr_benchmark per period; kurtosis not excess (3 = normal). NaN when the variance term
    is not positive (extreme skew), where the approximation breaks down."""
    if isinstance(n_obs, bool) or not isinstance(n_obs, (int, np.integer)) or n_obs < 2:
        raise ConfigError(f"n_obs={n_obs!r}: give the number of returns behind the Sharpe ratio, >= 2")
    for name, value in (("sr", sr), ("skew", skew), ("kurtosis", kurtosis), ("sr_benchmark", sr_benchmark)):
        if not math.isfinite(value):
            raise ConfigError(f"{name}={value!r} must be a finite number")
    spread = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if spread <= 0:
        return float("nan")
    return float(ndtr((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(spread)))


def probabilistic_sharpe(returns, sr_benchmark: float = 0.0) -> float:
    """Probability that the true per-period Sharpe of `returns` exceeds `sr_benchmark` (per
    period; 0 = "the true Sharpe is positive"), from their Sharpe, length, skew and kurtosis."""
    m = return_moments(returns)
    return psr_from_stats(m["sr"], m["n_obs"], m["skew"], m["kurtosis"], sr_benchmark)


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected best per-period Sharpe of `n_trials` trials with no skill whose Sharpes have
    variance `sr_variance` (per-period units: for daily Sharpes, the variance of the daily
    Sharpes, about 1/T for T days of noise):

        sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

    One trial has nothing to select from: 0."""
    n, v = _trials(n_trials, sr_variance)
    if n == 1:
        return 0.0
    z = (1.0 - EULER_GAMMA) * ndtri(1.0 - 1.0 / n) + EULER_GAMMA * ndtri(1.0 - 1.0 / (n * math.e))
    return float(math.sqrt(v) * z)


def deflated_sharpe_from_stats(
    sr: float, n_obs: int, skew: float, kurtosis: float, n_trials: int, sr_variance: float
) -> float:
    """DSR = PSR(SR*) with SR* = expected_max_sharpe(n_trials, sr_variance).

    sr: the chosen trial's per-period Sharpe (not annualised) over n_obs returns; skew and
    kurtosis (not excess) of those returns; sr_variance: the variance of all n_trials trials'
    per-period Sharpes. Example (the paper's): an annualised Sharpe 2.5 over 5 years of daily data
    is sr = 2.5 / sqrt(250), n_obs = 1250, and an annualised variance 0.5 is sr_variance = 0.5 / 250."""
    return psr_from_stats(sr, n_obs, skew, kurtosis, expected_max_sharpe(n_trials, sr_variance))


def deflated_sharpe(returns, n_trials: int, sr_variance: float) -> float:
    """The deflated Sharpe of the chosen trial's per-period `returns` after choosing it among
    `n_trials` whose per-period Sharpes have variance `sr_variance`."""
    n, v = _trials(n_trials, sr_variance)
    m = return_moments(returns)
    return deflated_sharpe_from_stats(m["sr"], m["n_obs"], m["skew"], m["kurtosis"], n, v)


# ----------------------------------------------------------------------------- PBO (CSCV)
@dataclass
class PBOResult:
    """CSCV over C(S, S/2) splits. For split c: the in-sample (IS) best variant n*, its IS and
    out-of-sample (OOS) per-period Sharpe, its OOS rank among all variants (1 = worst, average
    rank for ties), omega = rank / (N + 1) and logit = ln(omega / (1 - omega)).

    pbo: share of splits with logit <= 0 (the IS-best ends at or below the OOS median);
    prob_oos_loss: share of splits whose IS-best has an OOS Sharpe below 0; slope, intercept:
    least squares of OOS Sharpe on IS Sharpe of the IS-best (a slope well below 1, or negative,
    is the performance decay overfitting causes)."""

    pbo: float
    logits: np.ndarray
    prob_oos_loss: float
    slope: float
    intercept: float
    is_sharpe: np.ndarray  # per split: IS Sharpe of the IS-best
    oos_sharpe: np.ndarray  # per split: OOS Sharpe of the same variant
    oos_rank: np.ndarray  # per split: its OOS rank, 1..N (average for ties)
    chosen: np.ndarray  # per split: column index of the IS-best
    n_splits: int
    n_variants: int
    n_obs_used: int  # rows used: the oldest T mod S rows are dropped
    n_combinations: int = field(init=False)

    def __post_init__(self):
        self.n_combinations = len(self.logits)

    def summary(self) -> dict:
        """JSON-ready numbers (no per-split arrays)."""
        return {
            "pbo": self.pbo,
            "prob_oos_loss": self.prob_oos_loss,
            "slope": _finite(self.slope),
            "intercept": _finite(self.intercept),
            "logit_median": float(np.median(self.logits)),
            "n_splits": self.n_splits,
            "n_combinations": self.n_combinations,
            "n_variants": self.n_variants,
            "n_obs_used": self.n_obs_used,
        }


def _finite(x: float):
    return float(x) if math.isfinite(x) else None


@functools.lru_cache(maxsize=8)
def cscv_splits(n_splits: int) -> np.ndarray:
    """[C(S, S/2), S] booleans (read-only): row c marks the blocks that are in-sample in split c;
    the others are its out-of-sample half."""
    combos = list(itertools.combinations(range(n_splits), n_splits // 2))
    mask = np.zeros((len(combos), n_splits), dtype=bool)
    for i, blocks in enumerate(combos):
        mask[i, list(blocks)] = True
    mask.flags.writeable = False
    return mask


def _block_sharpes(n: np.ndarray, total: np.ndarray, sq: np.ndarray) -> np.ndarray:
    """Per-period Sharpe from counts [C], sums [C, N] and sums of squares [C, N] of the returns;
    0 where the variance is zero or only rounding noise (a constant column)."""
    mean = total / n[:, None]
    m2 = sq - n[:, None] * mean**2
    flat = m2 <= 1e-10 * sq
    sd = np.sqrt(np.where(flat, 1.0, m2) / (n[:, None] - 1))
    return np.where(flat, 0.0, mean / sd)


def pbo(returns_matrix, n_splits: int = 16, chunk: int | None = None) -> PBOResult:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado & Zhu 2015).

    returns_matrix: days x variants per-period returns (rows in time order). The rows are cut into
    n_splits (S, even) contiguous blocks of equal length (the oldest T mod S rows are dropped);
    each of the C(S, S/2) ways to pick S/2 blocks is one in-sample set, its complement the
    out-of-sample set. Performance is the per-period Sharpe (constant column: 0). The IS-best
    variant (first on ties) gets its OOS rank r (1 = worst; ties averaged), omega = r / (N + 1),
    logit = ln(omega / (1 - omega)), and PBO = share of splits with logit <= 0. On pure noise
    PBO is about 0.5 (exactly 0.5 in expectation for an even N); a real, lasting edge drives it to 0.
    """
    if not isinstance(returns_matrix, np.ndarray):  # a frame or nested lists: numbers, in row order
        returns_matrix = np.asarray(returns_matrix, dtype="float64")
    t, n_var = _check_pbo_input(returns_matrix, n_splits)
    used = t - t % n_splits  # the oldest T mod S rows are dropped
    block = used // n_splits
    b_sum = np.empty((n_splits, n_var))
    b_sq = np.empty((n_splits, n_var))
    for cols, x in column_blocks(returns_matrix[t % n_splits :]):
        blocks = x.reshape(n_splits, block, -1)
        b_sum[:, cols] = blocks.mean(axis=1) * block  # [S, columns]
        b_sq[:, cols] = (blocks**2).sum(axis=1)
    return _cscv(b_sum, b_sq, block, n_splits, used, chunk)


def _check_pbo_input(returns_matrix, n_splits) -> tuple[int, int]:
    """(days, variants) of a valid PBO input, read in column blocks; else one ConfigError."""
    shape = np.shape(returns_matrix)
    if len(shape) != 2:
        raise ConfigError(f"returns_matrix must be 2-D (days x variants), got shape {shape}")
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 2 or n_splits % 2:
        raise ConfigError(f"n_splits={n_splits!r}: give an even number >= 2 (the paper uses 16)")
    t, n_var = shape
    if n_var < 2:
        raise ConfigError(f"returns_matrix has {n_var} variant column(s); PBO compares at least 2")
    if t < 2 * n_splits:
        raise ConfigError(
            f"returns_matrix has {t} rows; n_splits={n_splits} needs at least {2 * n_splits} "
            "(2 days a block): lower n_splits or give a longer period"
        )
    bad = first_bad(returns_matrix)
    if bad is not None:
        count, row, col = bad
        raise ConfigError(
            f"returns_matrix has {count} NaN or infinite value(s) (first at row {row}, "
            f"column {col}); fill them (a day without a position returns 0.0)"
        )
    return t, n_var


def first_bad(matrix) -> tuple[int, int, int] | None:
    """(count, row, column) of the NaN or infinite values of a days x variants matrix, the first
    in row-major order; None when all are finite. Read in column blocks."""
    count, first = 0, None
    for cols, x in column_blocks(matrix):
        bad = ~np.isfinite(x)
        n = int(bad.sum())
        if n:
            rows, where = np.nonzero(bad)
            here = (int(rows[0]), int(where[0]) + cols.start)
            first = here if first is None else min(first, here)
            count += n
    return None if first is None else (count, *first)


def _cscv(b_sum: np.ndarray, b_sq: np.ndarray, block: int, n_splits: int, used: int, chunk) -> PBOResult:
    """PBO's splits on the blocks' sums [S, N] and sums of squares [S, N] of `block` days each."""
    n_var = b_sum.shape[1]
    mask = cscv_splits(n_splits)
    chunk = chunk or max(1, BLOCK_BYTES // 32 // n_var)  # splits per pass: 2M Sharpe values (16 MB) per array
    is_best, is_sr, oos_sr, oos_rank = [], [], [], []
    for start in range(0, len(mask), chunk):
        m_is = mask[start : start + chunk].astype("float64")
        m_oos = 1.0 - m_is
        n_is = m_is.sum(axis=1) * block
        n_oos = m_oos.sum(axis=1) * block
        r_is = _block_sharpes(n_is, m_is @ b_sum, m_is @ b_sq)
        r_oos = _block_sharpes(n_oos, m_oos @ b_sum, m_oos @ b_sq)
        best = np.argmax(r_is, axis=1)  # first on ties
        rows = np.arange(len(best))
        v = r_oos[rows, best]
        # average rank of v among the OOS Sharpes: (# below) + (# equal + 1) / 2
        rank = (r_oos < v[:, None]).sum(axis=1) + ((r_oos == v[:, None]).sum(axis=1) + 1) / 2.0
        is_best.append(best)
        is_sr.append(r_is[rows, best])
        oos_sr.append(v)
        oos_rank.append(rank)
    best, is_sr, oos_sr, rank = (np.concatenate(a) for a in (is_best, is_sr, oos_sr, oos_rank))
    omega = rank / (n_var + 1.0)
    logits = np.log(omega / (1.0 - omega))
    if np.ptp(is_sr) > 0:
        slope, intercept = np.polyfit(is_sr, oos_sr, 1)
    else:
        slope, intercept = float("nan"), float("nan")
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        prob_oos_loss=float(np.mean(oos_sr < 0)),
        slope=float(slope),
        intercept=float(intercept),
        is_sharpe=is_sr,
        oos_sharpe=oos_sr,
        oos_rank=rank,
        chosen=best,
        n_splits=int(n_splits),
        n_variants=n_var,
        n_obs_used=int(used),
    )
