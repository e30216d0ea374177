"""Features: small pure functions of a stock's own bars, computed for the whole panel at once.

Each feature is a `Feature` in the `FEATURES` registry (zipline's CustomFactor idea): a name, the
inputs it needs (close only, full OHLCV, the benchmark, VIX), its warm-up in rows, and a pure
`compute(inputs) -> DataFrame` on wide date x ticker frames. Pandas rolling/ewm run on the wide
frame, so 500 tickers cost one call per feature, not 500.

Semantics that the Backtrader indicator relies on (it calls this same code on one stock's bars):
- the value of a stock on date t uses only that stock's own bars up to and including t, and the
  benchmark (and VIX) as of t: the last value dated <= t, reindexed to the stock's dates;
- a stock that starts late has leading NaNs; its warm-up counts from its own first bar;
- a stock with interior missing days is computed on its own compacted trading days (as if the
  missing rows did not exist), then scattered back to the panel dates, NaN on the missing days.
  Hole-free columns go through one vectorized pass; only the rare columns with holes are done
  one by one on their compacted rows.

Naming follows the seed (see README): the seed's `spy_*` market features are `bench_*` here,
because the benchmark is whatever series the user passes (the S&P 500 index on embedded data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError
from feeds.panel import PricePanel

INPUTS = frozenset({"open", "high", "low", "close", "volume", "benchmark", "vix"})


@dataclass(frozen=True)
class FeatureInputs:
    """Wide date x ticker frames, all on the same rows and columns. `benchmark` and `vix` are the
    series as of each row's date, broadcast to every column (NaN where the stock has no bar), so
    that a compacted column carries the benchmark on that stock's own dates."""

    close: pd.DataFrame
    open: pd.DataFrame | None = None
    high: pd.DataFrame | None = None
    low: pd.DataFrame | None = None
    volume: pd.DataFrame | None = None
    benchmark: pd.DataFrame | None = None
    vix: pd.DataFrame | None = None

    def take(self, rows, columns) -> "FeatureInputs":
        """The same inputs on a subset of rows (boolean mask or slice) and column positions."""

        def cut(frame):
            return None if frame is None else frame.iloc[rows, columns]

        return FeatureInputs(**{k: cut(getattr(self, k)) for k in self.__dataclass_fields__})


@dataclass(frozen=True)
class Feature:
    name: str
    needs: frozenset  # subset of INPUTS
    warmup: int  # rows (own bars) before the first valid value
    compute: Callable[[FeatureInputs], pd.DataFrame]
    description: str = ""


# --- building blocks (pure, wide frames in, wide frames out) ---------------------------------------


def _log_return(frame: pd.DataFrame, days: int) -> pd.DataFrame:
    return np.log(frame / frame.shift(days))


def _ema(frame: pd.DataFrame, span: int) -> pd.DataFrame:
    # adjust=False is the recursive EMA of the seed; min_periods=span leaves the first span-1 rows
    # NaN instead of showing values still dominated by the first price.
    return frame.ewm(span=span, adjust=False, min_periods=span).mean()


def _sma(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    return frame.rolling(window, min_periods=window).mean()


def _need(inputs: FeatureInputs, field: str) -> pd.DataFrame:
    frame = getattr(inputs, field)
    if frame is None:  # compute_features checks first; this guards direct calls
        raise DataError(f"feature input {field!r} is missing; pass it or leave out the features that need it")
    return frame


def _safe_ratio(num: pd.DataFrame, den: pd.DataFrame, when_zero: float) -> pd.DataFrame:
    """num / den, with `when_zero` where den == 0 (a flat window), NaN where either is NaN."""
    out = num / den.where(den != 0)
    return out.mask((den == 0) & num.notna(), when_zero)


# --- feature families --------------------------------------------------------------------------------


def log_return(days: int):
    def compute(inputs: FeatureInputs) -> pd.DataFrame:
        return _log_return(inputs.close, days)

    return compute


def volume_log_change(inputs: FeatureInputs) -> pd.DataFrame:
    # log(V_t / V_{t-1}); a zero volume on either side makes it +-inf, which the clip bounds at +-5.
    volume = _need(inputs, "volume")
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.log(volume / volume.shift(1))
    return change.clip(-5.0, 5.0)


def volume_ratio(inputs: FeatureInputs) -> pd.DataFrame:
    volume = _need(inputs, "volume")
    return volume / _sma(volume, 20).where(lambda m: m != 0)


def candle_body(inputs: FeatureInputs) -> pd.DataFrame:
    open_ = _need(inputs, "open")
    return (inputs.close - open_) / open_


def candle_upper(inputs: FeatureInputs) -> pd.DataFrame:
    top = np.maximum(_need(inputs, "open"), inputs.close)
    return (_need(inputs, "high") - top) / inputs.close


def candle_lower(inputs: FeatureInputs) -> pd.DataFrame:
    bottom = np.minimum(_need(inputs, "open"), inputs.close)
    return (bottom - _need(inputs, "low")) / inputs.close


def ema_gap(span: int):
    def compute(inputs: FeatureInputs) -> pd.DataFrame:
        ema = _ema(inputs.close, span)
        return (inputs.close - ema) / ema

    return compute


def sma_gap(window: int):
    def compute(inputs: FeatureInputs) -> pd.DataFrame:
        sma = _sma(inputs.close, window)
        return (inputs.close - sma) / sma

    return compute


def wilder_rsi(period: int):
    """RSI / 100 with Wilder's smoothing (ewm alpha=1/n, adjust=False, min_periods=n).

    Written as gain / (gain + loss), which equals 1 - 1/(1 + RS) and is 1 when there was no loss;
    a window with neither gain nor loss (a flat price) is 0.5, neutral, rather than NaN."""

    def compute(inputs: FeatureInputs) -> pd.DataFrame:
        change = inputs.close.diff()
        smooth = dict(alpha=1.0 / period, adjust=False, min_periods=period)
        gain = change.clip(lower=0.0).ewm(**smooth).mean()
        loss = (-change).clip(lower=0.0).ewm(**smooth).mean()
        return _safe_ratio(gain, gain + loss, when_zero=0.5)

    return compute


def _macd_lines(close: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    dif = _ema(close, 12) - _ema(close, 26)
    dea = _ema(dif, 9)
    return dif, dea


def macd_dif(inputs: FeatureInputs) -> pd.DataFrame:
    dif, _ = _macd_lines(inputs.close)
    return dif / inputs.close


def macd_hist(inputs: FeatureInputs) -> pd.DataFrame:
    dif, dea = _macd_lines(inputs.close)
    return 2.0 * (dif - dea) / inputs.close


def _bollinger(close: pd.DataFrame, window: int = 20, k: float = 2.0):
    mid = _sma(close, window)
    std = close.rolling(window, min_periods=window).std(ddof=0)  # population std, as Backtrader
    return mid, mid + k * std, mid - k * std


def bollinger_position(inputs: FeatureInputs) -> pd.DataFrame:
    _, upper, lower = _bollinger(inputs.close)
    return _safe_ratio(inputs.close - lower, upper - lower, when_zero=0.5)


def bollinger_width(inputs: FeatureInputs) -> pd.DataFrame:
    mid, upper, lower = _bollinger(inputs.close)
    return (upper - lower) / mid


def obv_momentum(inputs: FeatureInputs) -> pd.DataFrame:
    # OBV is a running sum from the stock's first bar, so its level (and this ratio) depends on
    # where the data starts; that is the seed's definition, kept as is.
    volume = _need(inputs, "volume")
    direction = np.sign(inputs.close.diff()).fillna(0.0)
    obv = (direction * volume).cumsum()
    mean = _sma(obv, 20)
    return (obv - mean) / mean.abs().where(lambda m: m != 0)


def historical_vol_ratio(inputs: FeatureInputs) -> pd.DataFrame:
    daily = _log_return(inputs.close, 1)
    hv10 = daily.rolling(10, min_periods=10).std()
    hv60 = daily.rolling(60, min_periods=60).std()
    return hv10 / hv60.where(hv60 != 0)


def bench_return(days: int):
    def compute(inputs: FeatureInputs) -> pd.DataFrame:
        return _log_return(_need(inputs, "benchmark"), days)

    return compute


def bench_volatility(inputs: FeatureInputs) -> pd.DataFrame:
    daily = _log_return(_need(inputs, "benchmark"), 1)
    return daily.rolling(20, min_periods=20).std()


def vix_level(inputs: FeatureInputs) -> pd.DataFrame:
    return _need(inputs, "vix") / 100.0


def relative_return(days: int):
    def compute(inputs: FeatureInputs) -> pd.DataFrame:
        return _log_return(inputs.close, days) - _log_return(_need(inputs, "benchmark"), days)

    return compute


# --- the registry ---------------------------------------------------------------------------------


def _registry() -> dict[str, Feature]:
    C = frozenset({"close"})
    OHLC = frozenset({"open", "high", "low", "close"})
    CV = frozenset({"close", "volume"})
    B = frozenset({"close", "benchmark"})  # close: the stock's own dates carry the benchmark
    items: list[Feature] = []
    for d in (1, 5, 10, 20):
        items.append(Feature(f"log_ret_{d}", C, d, log_return(d), f"log(C_t / C_t-{d})"))
    items += [
        Feature("vol_log_ret", frozenset({"volume"}) | C, 1, volume_log_change, "log(V_t / V_t-1), clipped +-5"),
        Feature("vol_ratio", CV, 19, volume_ratio, "V / 20-day mean V"),
        Feature("k_body", OHLC, 0, candle_body, "(C - O) / O"),
        Feature("k_upper", OHLC, 0, candle_upper, "(H - max(O, C)) / C"),
        Feature("k_lower", OHLC, 0, candle_lower, "(min(O, C) - L) / C"),
    ]
    for n in (10, 20, 30):
        items.append(Feature(f"ema{n}_gap", C, n - 1, ema_gap(n), f"(C - EMA{n}) / EMA{n}"))
    for n in (60, 100, 200):
        items.append(Feature(f"sma{n}_gap", C, n - 1, sma_gap(n), f"(C - SMA{n}) / SMA{n}"))
    for n in (7, 14, 26):
        items.append(Feature(f"rsi{n}", C, n, wilder_rsi(n), f"Wilder RSI({n}) / 100"))
    items += [
        Feature("macd_dif", C, 25, macd_dif, "(EMA12 - EMA26) / C"),
        Feature("macd_hist", C, 33, macd_hist, "2 (DIF - DEA9) / C"),
        Feature(
            "bb_position", C, 19, bollinger_position, "(C - lower) / (upper - lower), Bollinger 20, 2, population std"
        ),
        Feature("bb_width", C, 19, bollinger_width, "(upper - lower) / mid"),
        Feature("obv_momentum", CV, 19, obv_momentum, "(OBV - MA20(OBV)) / |MA20(OBV)|"),
        Feature("hv_ratio", C, 60, historical_vol_ratio, "std of 10 daily log returns / std of 60"),
    ]
    for d in (1, 5, 10, 20):
        items.append(Feature(f"bench_ret_{d}", B, d, bench_return(d), f"benchmark log return over {d} bars"))
    items.append(Feature("bench_vol", B, 20, bench_volatility, "20-bar std of the benchmark's daily log return"))
    items.append(Feature("vix", frozenset({"close", "vix"}), 0, vix_level, "VIX / 100"))
    for d in (1, 5, 10, 20):
        items.append(Feature(f"rel_ret_{d}", B, d, relative_return(d), f"log_ret_{d} - bench_ret_{d}"))
    return {f.name: f for f in items}


FEATURES: dict[str, Feature] = _registry()

# The five features of the seed's final model.
SEED_FEATURES = ["sma100_gap", "sma60_gap", "rsi14", "bb_position", "k_upper"]

# Default: close-only, so it runs on the embedded data and on any close-only source. Momentum at
# 4 horizons, absolute and relative to the benchmark (cross-sectional alpha is about relative
# moves); trend distance at short and long scales (EMA/SMA gaps); one oscillator per kind (RSI14,
# MACD, Bollinger) rather than three near-duplicate RSIs; the volatility regime of the stock
# (hv_ratio, bb_width) and of the market (bench_vol). Longest warm-up: sma200_gap, 199 bars.
DEFAULT_FEATURES = [
    "log_ret_1",
    "log_ret_5",
    "log_ret_10",
    "log_ret_20",
    "rel_ret_1",
    "rel_ret_5",
    "rel_ret_10",
    "rel_ret_20",
    "ema10_gap",
    "ema30_gap",
    "sma60_gap",
    "sma200_gap",
    "rsi14",
    "macd_dif",
    "macd_hist",
    "bb_position",
    "bb_width",
    "hv_ratio",
    "bench_vol",
]


# --- public functions ----------------------------------------------------------------------------


def _check_known(names: Iterable[str]) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ConfigError(f"unknown feature(s) {unknown}; valid features are {sorted(FEATURES)}")
    return names


def usable_features(names, available) -> tuple[list[str], list[str]]:
    """(kept, dropped): the features whose inputs are all in `available` (e.g. panel.available |
    {"benchmark"}), and the others, both in the given order."""
    names = _check_known(names)
    available = frozenset(available)
    kept = [n for n in names if FEATURES[n].needs <= available]
    return kept, [n for n in names if n not in kept]


def max_warmup(names) -> int:
    """The longest warm-up (own bars before the first valid value) among `names`."""
    return max((FEATURES[n].warmup for n in _check_known(names)), default=0)


def _as_of(series: pd.Series, dates: pd.DatetimeIndex, what: str) -> pd.Series:
    """The last value dated <= each date (past values only; never a later one)."""
    series = pd.Series(series, dtype="float64").dropna()
    index = pd.DatetimeIndex(series.index)
    if index.tz is not None:
        raise DataError(f"{what}: dates are timezone-aware; convert them to naive dates (tz_localize(None))")
    series.index = index
    series = series[~series.index.duplicated(keep="last")].sort_index()
    return series.reindex(dates, method="ffill")


def _broadcast(series: pd.Series, close: pd.DataFrame) -> pd.DataFrame:
    values = np.broadcast_to(series.to_numpy()[:, None], close.shape)
    return pd.DataFrame(values, index=close.index, columns=close.columns).where(close.notna())


def panel_inputs(panel: PricePanel, benchmark: pd.Series | None = None, vix: pd.Series | None = None) -> FeatureInputs:
    """The FeatureInputs of a panel: its fields that are real data, and the benchmark / VIX as of
    each date, masked to the days each stock traded."""
    close = panel.close
    fields = {f: panel[f] for f in ("open", "high", "low", "volume") if f in panel.available}
    if benchmark is not None:
        fields["benchmark"] = _broadcast(_as_of(benchmark, panel.dates, "benchmark"), close)
    if vix is not None:
        fields["vix"] = _broadcast(_as_of(vix, panel.dates, "vix"), close)
    return FeatureInputs(close=close, **fields)


class OwnBars:
    """Runs a pure wide-frame function on each stock's own bars: the hole-free columns (leading or
    trailing NaNs only) in one vectorized pass over all rows, and each column with interior holes
    alone on its compacted rows. The input slices are cut once and reused for every feature."""

    def __init__(self, inputs: FeatureInputs):
        has = inputs.close.notna().to_numpy()
        count = has.sum(axis=0)
        first = has.argmax(axis=0)
        last = has.shape[0] - 1 - has[::-1].argmax(axis=0)
        holed = np.flatnonzero((count > 0) & (last - first + 1 > count))
        self.has_bar = has
        self.hole_free = np.flatnonzero(~np.isin(np.arange(has.shape[1]), holed))
        whole = inputs if len(holed) == 0 else inputs.take(slice(None), self.hole_free)
        self._pieces = [(slice(None), self.hole_free, whole)] if len(self.hole_free) else []
        self._pieces += [(has[:, c], np.array([c]), inputs.take(has[:, c], [c])) for c in holed]
        self.holed = holed

    def apply(self, compute: Callable[[FeatureInputs], pd.DataFrame]) -> np.ndarray:
        """[T, N] float64 array of compute() on own bars, NaN where the stock has no bar."""
        out = np.full(self.has_bar.shape, np.nan)
        for rows, columns, piece in self._pieces:
            values = compute(piece).to_numpy(dtype="float64")
            if isinstance(rows, slice):
                out[:, columns] = values
            else:
                out[np.flatnonzero(rows)[:, None], columns[None, :]] = values
        out[~self.has_bar] = np.nan
        return out


def compute_features(
    panel: PricePanel, benchmark: pd.Series | None, names, vix: pd.Series | None = None
) -> dict[str, pd.DataFrame]:
    """{name: DataFrame on panel.dates x panel.tickers} for each feature in `names`.

    Raises DataError when a feature needs an input that is not real data here (e.g. k_upper on a
    close-only panel); use usable_features() first to leave those out."""
    names = _check_known(names)
    available = (
        set(panel.available)
        | ({"benchmark"} if benchmark is not None else set())
        | ({"vix"} if vix is not None else set())
    )
    for name in names:
        missing = sorted(FEATURES[name].needs - available)
        if missing:
            raise DataError(
                f"feature {name!r} needs {missing}, which the data {panel.name!r} does not have "
                f"(available: {sorted(available)}); leave it out (see usable_features) or load data with {missing}"
            )
    own_bars = OwnBars(panel_inputs(panel, benchmark, vix))
    result = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name in names:
            values = own_bars.apply(FEATURES[name].compute)
            values[~np.isfinite(values)] = np.nan  # a zero price or volume: unknown, not infinite
            result[name] = pd.DataFrame(values, index=panel.dates, columns=panel.close.columns)
    return result


def feature_array(features: Mapping[str, pd.DataFrame], names) -> np.ndarray:
    """[T, N, F] float32, the frames of `names` stacked in that order."""
    names = list(names)
    missing = [n for n in names if n not in features]
    if missing:
        raise ConfigError(f"features {missing} were not computed; computed: {sorted(features)}")
    return np.stack([features[n].to_numpy(dtype=np.float32) for n in names], axis=-1)


def stock_features(
    frame: pd.DataFrame,
    benchmark: pd.Series | None,
    names,
    vix: pd.Series | None = None,
    available=None,
    ticker: str = "stock",
) -> pd.DataFrame:
    """Features of one stock from its own OHLCV frame (lowercase columns, its trading days):
    a DataFrame date x feature, the same numbers compute_features gives for that stock."""
    fields = {
        f: frame[[f]].set_axis([ticker], axis=1) for f in ("open", "high", "low", "close", "volume") if f in frame
    }
    if available is None:
        available = {f for f, fr in fields.items() if fr[ticker].notna().any()}
    panel = PricePanel(fields, available=available, name=ticker)
    features = compute_features(panel, benchmark, names, vix)
    return pd.DataFrame({n: features[n][ticker] for n in list(names)}, index=panel.dates)
