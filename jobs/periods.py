"""Splits and backtest periods (shared by every job): resolve_split turns model.split ("auto",
empty ends) into the data's dates, describe_split says which, backtest_period gives a run's
[start, end] and warns when it starts in-sample for the model."""

from __future__ import annotations

import warnings

import pandas as pd

from core.dates import parse_day
from feeds import ConfigError
from jobs.market import MarketData

__all__ = [
    "backtest_period",
    "describe_split",
    "needs_split",
    "resolve_split",
]


def needs_split(config: dict, model_used: bool = True) -> bool:
    """False only for a run without a model whose --start and --end are both given: there the
    split decides nothing (and a short scores-only data set need not fit the auto split)."""
    return model_used or not (config["backtest"].get("start") and config["backtest"].get("end"))


def resolve_split(config: dict, data: MarketData) -> dict:
    """The config with model.split as the dates this data gets: "auto" becomes 60/20/20 % of the
    data's dates, an empty train_start / test_end the data's first / last date. The model, its
    artifact key and the backtest period all read these resolved dates. `split_rule` says which rule
    gave them."""
    from models.dataset import auto_split, fill_split

    split = config["model"]["split"]
    if isinstance(split, dict) and all(split.get(k) for k in ("train_start", "test_end")):
        return config
    config = {**config, "model": dict(config["model"])}
    if split == "auto":
        resolved = auto_split(data.prices.dates, int(config["model"]["horizon"]))
        config["split_rule"] = "auto: 60/20/20 % of the data's dates"
    elif isinstance(split, dict):
        resolved = fill_split(split, data.prices.dates)
        config.setdefault("split_rule", "set dates; empty ends filled with the data's first / last date")
    else:
        raise ConfigError(f'model.split = {split!r}: give "auto" or a table of dates ([model.split])')
    config["model"]["split"] = resolved.to_dict()
    return config


def describe_split(config: dict) -> str:
    """One line for the console: the split used, the rule that gave it and the purge."""
    from models.dataset import Split

    split = Split(**config["model"]["split"])
    rule = config.get("split_rule", f"preset {config.get('preset', 'default')}")
    return f"split ({rule}): {split.describe()}; labels purged {config['model']['horizon']} days before each boundary"


def backtest_period(config: dict, data: MarketData) -> tuple[pd.Timestamp, pd.Timestamp]:
    bt_cfg = config["backtest"]
    if not needs_split(config, model_used=False):
        start = parse_day(bt_cfg["start"], "backtest.start (--start)")
        end = min(parse_day(bt_cfg["end"], "backtest.end (--end)"), data.prices.dates[-1])
        if start > end:
            raise ConfigError(
                f"backtest start {start.date()} is after its end {end.date()} (the data ends "
                f"{data.prices.dates[-1].date()}); check --start/--end"
            )
        split = config["model"]["split"]
        if isinstance(split, dict) and split.get("test_start"):
            _warn_in_sample(config, start, split)
        return start, end
    config = resolve_split(config, data)
    split = config["model"]["split"]
    start = parse_day(bt_cfg.get("start") or split["test_start"], "backtest.start (--start)")
    end = parse_day(bt_cfg.get("end") or split["test_end"], "backtest.end (--end)")
    end = min(end, data.prices.dates[-1])
    if start > end:
        raise ConfigError(
            f"backtest start {start.date()} is after its end {end.date()} (the data ends "
            f"{data.prices.dates[-1].date()}); check --start/--end, or the test period: --split TRAIN_END,VALID_END"
        )
    _warn_in_sample(config, start, split)
    return start, end


def _warn_in_sample(config, start, split) -> None:
    if start < pd.Timestamp(split["test_start"]) and config["data"].get("source", "embedded") == "embedded":
        warnings.warn(
            f"the backtest starts {start.date()}, before the model's test period ({split['test_start']}): "
            "those days are in-sample for the model",
            UserWarning,
            stacklevel=3,
        )
