"""Labels: what happened to each stock over its next `horizon` own bars, relative to the benchmark.

Like the features, a label is computed on each stock's own compacted trading days: "h bars ahead"
is the stock's h-th next bar, and the benchmark return is taken between the same two dates (the
benchmark as of each date, past values only). A label dated t is known only on its end date
(`label_end_dates`), later than t: the dataset purges samples whose end date crosses a split
boundary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import ConfigError
from feeds.panel import PricePanel
from models.features import FeatureInputs, OwnBars, panel_inputs

LABEL_KINDS = ("classification", "regression")
REGRESSION_CLIP = 3.0


def _check_horizon(horizon) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ConfigError(f"label horizon must be an integer >= 1 (trading days), got {horizon!r}")
    return int(horizon)


def _forward_return(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    return frame.shift(-horizon) / frame - 1.0


def _frame(values: np.ndarray, panel: PricePanel) -> pd.DataFrame:
    return pd.DataFrame(values, index=panel.dates, columns=panel.close.columns)


def forward_returns(panel: PricePanel, horizon: int) -> pd.DataFrame:
    """close[t+h] / close[t] - 1 over the stock's own next h bars; NaN where unknown."""
    horizon = _check_horizon(horizon)
    own = OwnBars(FeatureInputs(close=panel.close))
    return _frame(own.apply(lambda x: _forward_return(x.close, horizon)), panel)


def _forward_pair(panel: PricePanel, benchmark: pd.Series, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    own = OwnBars(panel_inputs(panel, benchmark))
    stock = own.apply(lambda x: _forward_return(x.close, horizon))
    bench = own.apply(lambda x: _forward_return(x.benchmark, horizon))
    return _frame(stock, panel), _frame(bench, panel)


def forward_excess_returns(panel: PricePanel, benchmark: pd.Series, horizon: int) -> pd.DataFrame:
    """The stock's forward return minus the benchmark's between the same two dates."""
    horizon = _check_horizon(horizon)
    stock, bench = _forward_pair(panel, benchmark, horizon)
    return stock - bench


def make_labels(
    panel: PricePanel, benchmark: pd.Series, horizon: int = 10, kind: str = "classification"
) -> pd.DataFrame:
    """Label panel (date x ticker), NaN where unknown.

    - "classification": 1.0 if the stock beat the benchmark over the next `horizon` own bars, else
      0.0 (a tie counts as not beating it).
    - "regression" (the seed's "alpha score"): (stock fwd return - benchmark fwd return) divided by
      that day's cross-sectional std (ddof=1) of the stocks' forward returns, clipped to +-3. NaN on
      days with fewer than two known forward returns or no dispersion."""
    horizon = _check_horizon(horizon)
    if kind not in LABEL_KINDS:
        raise ConfigError(f"label kind {kind!r} is unknown; use one of {LABEL_KINDS}")
    stock, bench = _forward_pair(panel, benchmark, horizon)
    excess = stock - bench
    if kind == "classification":
        return (excess > 0).astype("float64").where(excess.notna())
    dispersion = stock.std(axis=1, ddof=1)
    scaled = excess.div(dispersion.where(dispersion > 0), axis=0)
    return scaled.clip(-REGRESSION_CLIP, REGRESSION_CLIP)


def label_end_dates(panel: PricePanel, horizon: int) -> pd.DataFrame:
    """The date of each stock's h-th next own bar, on which its label becomes known; NaT when that
    bar is beyond the data (or the stock has no bar that day)."""
    horizon = _check_horizon(horizon)
    positions = pd.DataFrame(
        np.broadcast_to(np.arange(len(panel.dates), dtype="float64")[:, None], panel.close.shape),
        index=panel.dates,
        columns=panel.close.columns,
    ).where(panel.close.notna())
    own = OwnBars(FeatureInputs(close=positions))
    end = own.apply(lambda x: x.close.shift(-horizon))
    known = np.isfinite(end)
    dates = np.full(end.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    dates[known] = panel.dates.to_numpy()[end[known].astype(np.int64)]
    return pd.DataFrame(dates, index=panel.dates, columns=panel.close.columns)
