"""Scores a sweep may select on: only those of models that never saw the days they score.

A score dated t is "seen" by a model when t lies in the model's own fit windows, from its first
training sample to the last date any of its labels reached (training labels, and the validation
labels that chose its epoch by early stopping). Choosing a strategy variant on seen days is
choosing on in-sample days: the sweep must refuse.

    check_unseen(model, score_dates)                       # raises ConfigError, or returns None
    model = selection_walk_forward(config, "2013-01-01", "2022-12-31")   # unfitted; fit or load it
    # (jobs.store.get_selection_model trains it once and keeps it under models/store/)

For a WalkForwardModel each date is checked against the fold that scores it (its last label date
lies before its first scored day by construction; the check proves it for the dates at hand), and
dates before the first fold have no score at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import ConfigError
from models.config import ModelConfig

DEFAULT_SELECTION_START = "2013-01-01"
DEFAULT_HOLDOUT_END = "2022-12-31"
# every 2nd training window per ticker (adjacent windows share 29 of 30 days and most of their
# 10-day label): half the fit time at the same validation loss and IC (docs/selection.md)
SELECTION_TRAIN_STRIDE = 2

FIX = (
    "select on walk-forward scores instead (models.selection.selection_walk_forward / "
    "jobs.store.get_selection_model: yearly refits on an expanding window from the selection start, so every "
    "score is out of sample), or move the selection period to start after {after}"
)


def _day(ts) -> str:
    return str(pd.Timestamp(ts).date())


def _dates(score_dates) -> pd.DatetimeIndex:
    dates = pd.DatetimeIndex(
        pd.to_datetime(list(score_dates) if not isinstance(score_dates, pd.Index) else score_dates)
    ).sort_values()
    if len(dates) == 0:
        raise ConfigError("score_dates is empty: give the dates whose scores the selection uses")
    return dates


def fit_windows(model) -> dict:
    """{"train": [first, last sample], "valid": [first, last sample], "valid_start" (the split's
    validation start), "last_label_date"} of a fitted AlphaModel. An artifact written before
    last_label_date was recorded falls back to the split's valid_end."""
    report = getattr(model, "report_", None)
    if report is None or not report.windows:
        raise ConfigError(
            f"{model!r} has no fit windows: it is not fitted (fit it or load a saved one), so it "
            "cannot be checked for the days it saw"
        )
    w = report.windows
    split = model.config.split
    train = w.get("train") or [split.train_start, split.train_end]
    valid = w.get("valid") or [split.valid_start, split.valid_end]
    last = w.get("last_label_date") or split.valid_end
    return {
        "train": [_day(train[0]), _day(train[1])],
        "valid": [_day(valid[0]), _day(valid[1])],
        "valid_start": _day(min(pd.Timestamp(valid[0]), pd.Timestamp(split.valid_start))),
        "last_label_date": _day(last),
    }


def _span(dates: pd.DatetimeIndex) -> str:
    return f"{len(dates)} score date(s) {_day(dates[0])} .. {_day(dates[-1])}"


def check_unseen(model, score_dates, purpose: str = "select strategy variants") -> None:
    """Raise one ConfigError if any of `score_dates` was seen by the model that scores it: it
    says which dates, which windows saw them (training labels, validation / early stopping), and
    how to fix it. `model`: an AlphaModel or a WalkForwardModel (anything with `.folds`)."""
    dates = _dates(score_dates)
    if hasattr(model, "folds"):
        return _check_walk_forward(model, dates, purpose)
    w = fit_windows(model)
    first, last = pd.Timestamp(w["train"][0]), pd.Timestamp(w["last_label_date"])
    seen = dates[(dates >= first) & (dates <= last)]
    if len(seen) == 0:
        return None
    in_train = seen[seen < pd.Timestamp(w["valid_start"])]
    in_valid = seen[seen >= pd.Timestamp(w["valid_start"])]
    parts = []
    if len(in_train):
        parts.append(f"{_span(in_train)} fall in its training window (samples {w['train'][0]} .. {w['train'][1]})")
    if len(in_valid):
        parts.append(
            f"{_span(in_valid)} fall in its validation window, which chose its epoch by early stopping "
            f"(samples {w['valid'][0]} .. {w['valid'][1]}, labels up to {w['last_label_date']})"
        )
    raise ConfigError(
        f"cannot {purpose} on scores the model saw: "
        + "; ".join(parts)
        + ". Fix: "
        + FIX.format(after=w["last_label_date"])
        + "."
    )


def _check_walk_forward(model, dates: pd.DatetimeIndex, purpose: str) -> None:
    model._check_fitted()
    owner = model.fold_index(dates)
    problems = []
    before = dates[owner < 0]
    if len(before):
        first = model.folds[0].score_start
        problems.append(
            f"{_span(before)} come before its first fold scores anything ({_day(first)}): they have no "
            f"out-of-sample score; start the selection on or after {_day(first)}, or plan the folds "
            "from the selection start (models.selection.selection_walk_forward)"
        )
    latest_seen = None
    for fold in model.folds:
        mine = dates[owner == fold.number]
        w = fit_windows(fold.model)
        seen = mine[mine <= pd.Timestamp(w["last_label_date"])]
        if len(seen):
            latest_seen = max(latest_seen or seen[-1], seen[-1])
            problems.append(
                f"{_span(seen)} are scored by fold {fold.number} (refit {_day(fold.score_start)}), "
                f"whose training and validation labels (validation {w['valid'][0]} .. {w['valid'][1]}) "
                f"reach {w['last_label_date']}"
            )
    if problems:
        fix = "" if latest_seen is None else " Fix: " + FIX.format(after=_day(latest_seen)) + "."
        raise ConfigError(f"cannot {purpose} on these walk-forward scores: " + "; ".join(problems) + "." + fix)


def selection_walk_forward(
    config: ModelConfig | None = None,
    selection_start=DEFAULT_SELECTION_START,
    holdout_end=DEFAULT_HOLDOUT_END,
    refit_every_months: int = 12,
    window: str = "expanding",
    rolling_years: int = 10,
    valid_years: int = 3,
    train_stride: int = SELECTION_TRAIN_STRIDE,
):
    """The default model for selection: an unfitted WalkForwardModel refitted every
    `refit_every_months` (yearly) on an expanding window, its first fold scoring from
    `selection_start`, its last through `holdout_end`. Every score in [selection_start,
    holdout_end] then comes from a fold fitted (and early-stopped) on earlier labels only.
    `train_stride`: each fold trains on every n-th of its training windows per ticker and
    validates on all of its validation windows (models.walkforward.fold_learning)."""
    from models.walkforward import WalkForwardModel

    if pd.Timestamp(selection_start) > pd.Timestamp(holdout_end):
        raise ConfigError(f"selection_start={_day(selection_start)} comes after holdout_end={_day(holdout_end)}")
    return WalkForwardModel(
        config,
        first_test=_day(selection_start),
        last_test=_day(holdout_end),
        refit_every_months=refit_every_months,
        window=window,
        rolling_years=rolling_years,
        valid_years=valid_years,
        train_stride=train_stride,
    )


def seen_until(model, score_dates) -> pd.Series:
    """For each score date, the last label date of the model (or fold) that scores it (NaT where a
    walk-forward model has no fold for it). A date is out of sample when it is later than this."""
    dates = _dates(score_dates)
    if hasattr(model, "folds"):
        owner = model.fold_index(dates)  # fold numbers (a from_folds model may start after fold 0)
        last = {
            f.number: np.datetime64(pd.Timestamp(fit_windows(f.model)["last_label_date"]), "ns") for f in model.folds
        }
        values = np.array([last.get(n, np.datetime64("NaT", "ns")) for n in owner], dtype="datetime64[ns]")
        return pd.Series(values, index=dates, name="last_label_date")
    return pd.Series(pd.Timestamp(fit_windows(model)["last_label_date"]), index=dates, name="last_label_date")
