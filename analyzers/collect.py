"""Collect every analyzer of a finished strategy as JSON-safe plain dicts; resolve analyzer names.

Backtrader analyzers return AutoOrderedDicts with datetime keys, numpy numbers and NaN; results
files want plain JSON. `analyzer_results(strategy)` converts them all, keyed by analyzer name.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import math
from collections.abc import Mapping

import backtrader as bt
import numpy as np
import pandas as pd

from core.errors import ConfigError


def analyzer_results(strategy) -> dict:
    """{analyzer name: JSON-safe get_analysis()} for every analyzer attached to `strategy`.

    The name is the `_name` given to `cerebro.addanalyzer` or Backtrader's default (the class name
    in lower case). Dict keys become strings (datetimes as ISO strings), numpy numbers plain
    floats / ints, NaN and infinities None, Series dicts, DataFrames lists of records.
    """
    return {name: json_safe(analyzer.get_analysis()) for name, analyzer in strategy.analyzers.getitems()}


def json_safe(value):
    """A copy of `value` made only of dict, list, str, int, float (finite), bool and None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (_dt.date, _dt.datetime, pd.Timestamp, np.datetime64)):
        return _iso(value)
    if isinstance(value, pd.DataFrame):
        return [json_safe(r) for r in value.reset_index().to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {_key(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {_key(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):
        return json_safe(value.item())
    return str(value)


def import_analyzer(dotted: str) -> type:
    """The bt.Analyzer subclass named by `dotted`.

    Accepts "backtrader.analyzers.SQN", "module.path:ClassName", or a bare name looked up in
    backtrader.analyzers and then in this project's analyzers package ("SQN", "TradeLog").
    Raises ConfigError naming the string when it does not resolve to a bt.Analyzer subclass.
    """
    if not isinstance(dotted, str) or not dotted.strip():
        raise ConfigError(f"import_analyzer: {dotted!r} is not an analyzer name; use e.g. 'SQN' or 'backtrader.analyzers.SQN'.")
    name = dotted.strip()
    if ":" in name:
        candidates = [tuple(name.split(":", 1))]
    elif "." in name:
        candidates = [tuple(name.rsplit(".", 1))]
    else:
        candidates = [("backtrader.analyzers", name), ("analyzers", name)]

    found = None
    for module_name, attr in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found = getattr(module, attr, None)
        if found is not None:
            break
    if found is None:
        raise ConfigError(
            f"import_analyzer: cannot find analyzer {dotted!r}; use a class of backtrader.analyzers "
            f"(e.g. 'SQN', 'DrawDown') or a full path such as 'mypackage.module.MyAnalyzer'."
        )
    if not (isinstance(found, type) and issubclass(found, bt.Analyzer)):
        raise ConfigError(f"import_analyzer: {dotted!r} resolves to {found!r}, which is not a backtrader Analyzer subclass.")
    return found


def _key(key) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (_dt.date, _dt.datetime, pd.Timestamp, np.datetime64)):
        return _iso(key)
    safe = json_safe(key)
    return safe if isinstance(safe, str) else str(safe)


def _iso(value) -> str:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, _dt.datetime) and value.time() == _dt.time(0) and value.tzinfo is None:
        return value.date().isoformat()  # daily bars: "2019-01-02", not "2019-01-02T00:00:00"
    return value.isoformat()
