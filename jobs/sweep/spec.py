"""What a sweep runs: the variants of a variants file (a grid and a list, over a base preset) and
its two periods (select on one, hold out the other). Pure parsing: no model, no backtest."""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass

import pandas as pd

from configs import load_config, merge_config
from core.dates import parse_day
from core.errors import ConfigError

VARIANT_SECTIONS = ("strategy", "model", "backtest")
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")


# ----------------------------------------------------------------------------- variants
@dataclass
class Variant:
    name: str
    overrides: dict  # {"strategy": {...}, "model": {...}, "backtest": {...}}
    config: dict | None = None  # the merged config (None when it could not be built)
    error: str | None = None  # why the variant cannot run (it is still reported)

    def params_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in flat_params(self.overrides).items())


def flat_params(overrides: dict) -> dict:
    """{"strategy": {"top_k": 3}, "model": {"seed": 1}} -> {"top_k": 3, "model.seed": 1}."""
    out = {}
    for section in VARIANT_SECTIONS:
        for key, value in overrides.get(section, {}).items():
            out[key if section == "strategy" else f"{section}.{key}"] = value
    return out


def _split_params(params: dict, where: str) -> dict:
    """A variant's keys as config sections: bare keys are strategy params, tables (model.seed = 1
    in TOML is {"model": {"seed": 1}}) name their section."""
    out: dict = {}
    for key, value in params.items():
        if isinstance(value, dict):
            if key not in VARIANT_SECTIONS:
                raise ConfigError(
                    f"{where}: '{key}.*' cannot vary; a variant changes {', '.join(VARIANT_SECTIONS)} "
                    f"keys (bare keys are strategy params)"
                )
            out.setdefault(key, {}).update(value)
        else:
            out.setdefault("strategy", {})[key] = value
    return out


def _value_text(value) -> str:
    return str(value).replace("/", "-").replace(" ", "")


def grid_variants(grid: dict, source: str = "variants.grid") -> list[Variant]:
    """Every combination of the grid's lists, named like 'top_k=3_entry_threshold=0.1'."""
    axes = []  # (section, key, values)
    for section, table in _split_params(grid, source).items():
        for key, values in table.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source}: '{key}' must be a non-empty list of values, e.g. {key} = [3, 5, 10]")
            axes.append((section, key, values))
    variants = []
    for combo in itertools.product(*(values for _, _, values in axes)):
        overrides: dict = {}
        parts = []
        for (section, key, _), value in zip(axes, combo):
            overrides.setdefault(section, {})[key] = value
            parts.append(f"{key if section == 'strategy' else section + '.' + key}={_value_text(value)}")
        variants.append(Variant("_".join(parts) or "base", overrides))
    return variants


def list_variants(entries: list, source: str = "variants.list") -> list[Variant]:
    variants = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ConfigError(f'{source}[{i}]: every [[variants.list]] entry needs name = "..."')
        params = {k: v for k, v in entry.items() if k != "name"}
        variants.append(Variant(str(entry["name"]), _split_params(params, f"{source} '{entry['name']}'")))
    return variants


def expand_variants(spec: dict, source: str = "variants") -> list[Variant]:
    """The variants of a [variants] table: its grid's combinations, then its list's entries."""
    if not isinstance(spec, dict) or not (spec.get("grid") or spec.get("list")):
        raise ConfigError(f"{source}: no variants; add a [variants.grid] table of lists or [[variants.list]] entries")
    unknown = set(spec) - {"grid", "list"}
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)} in [variants]; use 'grid' and/or 'list'")
    variants = grid_variants(spec.get("grid") or {}) if spec.get("grid") else []
    variants += list_variants(spec.get("list") or [])
    seen = set()
    for v in variants:
        if not _NAME_OK.match(v.name):
            raise ConfigError(
                f"{source}: variant name {v.name!r} must be a plain folder name (letters, digits, . _ = + -)"
            )
        if v.name in seen:
            raise ConfigError(f"{source}: two variants are named {v.name!r}; names must be unique")
        seen.add(v.name)
    return variants


def load_sweep(path, preset: str = "default", overrides: dict | None = None) -> tuple[dict, list[Variant]]:
    """(base config, variants) of a variants file. A variant whose keys are wrong keeps its
    ConfigError text in .error (and is reported as broken); a wrong file raises."""
    base = load_config(preset, path, overrides)
    variants = expand_variants(base.get("variants"), f"{path} [variants]")
    for v in variants:
        try:
            v.config = load_config(preset, path, merge_config(overrides or {}, v.overrides))
            v.config["name"] = v.name
        except ConfigError as exc:
            v.error = f"ConfigError: {str(exc).replace('command line', f'variant {v.name!r}')}"
    return base, variants


# ----------------------------------------------------------------------------- the two periods
PERIOD_KEYS = ("selection_start", "selection_end", "holdout_start", "holdout_end")
PERIOD_HELP = (
    "set them in the variants file's [selection] table (selection_start, selection_end, holdout_start, "
    "holdout_end) or with --selection START,END --holdout START,END"
)
YARDSTICK = "equal-weight universe"
YARDSTICK_WHY = (
    "Yardstick: the equal-weight portfolio of the universe's stocks (daily rebalanced, no costs) over the "
    "same days. Any long-only book on these 20 survivor-picked stocks beats zero without skill, so the "
    "verdict judges the chosen variant's returns in excess of it, not its Sharpe above zero."
)


@dataclass(frozen=True)
class Periods:
    """A sweep's selection period (it ranks the variants) and holdout period (it chooses nothing)."""

    selection: tuple  # (first day, last day) as Timestamps
    holdout: tuple

    def text(self, which: str) -> str:
        start, end = getattr(self, which)
        return f"{start.date()} .. {end.date()}"

    def labels(self, which: str) -> tuple[str, str]:
        return tuple(str(d.date()) for d in getattr(self, which))


def sweep_periods(config: dict, source: str = "the sweep") -> Periods:
    """The selection and holdout periods of config['selection'] (default.toml's [selection], a
    variants file's [selection], --selection / --holdout). Refuses a bad date, a period that ends
    before it starts and periods that share a day."""
    table = config.get("selection") or {}
    days = {}
    for key in PERIOD_KEYS:
        try:
            days[key] = parse_day(table.get(key), f"selection.{key} =")
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}; {PERIOD_HELP}") from None
    periods = Periods((days["selection_start"], days["selection_end"]), (days["holdout_start"], days["holdout_end"]))
    for which in ("selection", "holdout"):
        start, end = getattr(periods, which)
        if start > end:
            raise ConfigError(f"{source}: the {which} period {periods.text(which)} starts after it ends; {PERIOD_HELP}")
    (s0, s1), (h0, h1) = periods.selection, periods.holdout
    if s0 <= h1 and h0 <= s1:
        raise ConfigError(
            f"{source}: the selection period {periods.text('selection')} overlaps the holdout period "
            f"{periods.text('holdout')}: a holdout chooses nothing, so it must not share days with the "
            f"selection; {PERIOD_HELP}"
        )
    return periods


def period_config(config: dict, period: tuple) -> dict:
    """A variant's config trading one period: backtest.start / end set to it."""
    out = copy.deepcopy(config)
    out["backtest"]["start"], out["backtest"]["end"] = (str(d.date()) for d in period)
    return out


def parse_period(text: str, option: str) -> dict:
    """--selection / --holdout START,END as [selection] keys."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{option} {text}: give two dates START,END, e.g. {option} 2013-01-01,2016-12-31")
    prefix = option.lstrip("-")
    return {f"{prefix}_start": parts[0], f"{prefix}_end": parts[1]}


def refuse_backtest_dates(base: dict, variants: list, source) -> None:
    """A sweep trades its two periods: backtest.start / end (or --start / --end) would be ignored."""
    if base["backtest"].get("start") or base["backtest"].get("end"):
        raise ConfigError(
            f"{source}: a sweep trades a selection and a holdout period, so backtest.start / "
            f"backtest.end (or --start / --end) cannot apply; drop them and {PERIOD_HELP}"
        )
    for v in variants:
        if not v.error and {"start", "end"} & set(v.overrides.get("backtest", {})):
            v.error = (
                f"ConfigError: variant {v.name!r} sets backtest.start / backtest.end; a sweep's periods are "
                f"the same for every variant: {PERIOD_HELP}"
            )


def period_dates(data, period: tuple) -> pd.DatetimeIndex:
    """The trading days of the data in a period: the score dates a sweep uses there."""
    dates = data.prices.dates
    return dates[(dates >= period[0]) & (dates <= period[1])]
