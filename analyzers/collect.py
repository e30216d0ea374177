"""Collect every analyzer of a finished strategy as JSON-safe plain dicts; resolve analyzer names.

Backtrader analyzers return AutoOrderedDicts with datetime keys, numpy numbers and NaN; results
files want plain JSON. `analyzer_results(strategy)` converts them all, keyed by analyzer name.
"""

from __future__ import annotations

import importlib

import backtrader as bt

from core.errors import ConfigError
from core.io import json_safe  # noqa: F401 (analyzers.collect.json_safe, as before)


def analyzer_results(strategy) -> dict:
    """{analyzer name: JSON-safe get_analysis()} for every analyzer attached to `strategy`.

    The name is the `_name` given to `cerebro.addanalyzer` or Backtrader's default (the class name
    in lower case). Dict keys become strings (datetimes as ISO strings), numpy numbers plain
    floats / ints, NaN and infinities None, Series dicts, DataFrames lists of records.
    """
    return {name: json_safe(analyzer.get_analysis()) for name, analyzer in strategy.analyzers.getitems()}


def import_analyzer(dotted: str) -> type:
    """The bt.Analyzer subclass named by `dotted`.

    Accepts "backtrader.analyzers.SQN", "module.path:ClassName", or a bare name looked up in
    backtrader.analyzers and then in this project's analyzers package ("SQN", "TradeLog").
    Raises ConfigError naming the string when it does not resolve to a bt.Analyzer subclass.
    """
    if not isinstance(dotted, str) or not dotted.strip():
        raise ConfigError(
            f"import_analyzer: {dotted!r} is not an analyzer name; use e.g. 'SQN' or 'backtrader.analyzers.SQN'."
        )
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
        raise ConfigError(
            f"import_analyzer: {dotted!r} resolves to {found!r}, which is not a backtrader Analyzer subclass."
        )
    return found
