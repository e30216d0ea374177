"""Strategy-variant sweeps: score once, trade many, in one process, local processes or Ray.

A variants file (TOML) names its base preset and the variants to try, as a grid or a list:

    base = "default"
    [selection]                      # rank on the selection period, report the holdout (these are the defaults)
    selection_start = "2013-01-01"
    selection_end = "2016-12-31"
    holdout_start = "2017-01-01"
    holdout_end = "2022-12-31"
    [backtest]                       # keys here apply to every variant
    commission = 0.0005
    [variants.grid]                  # every combination: 3 x 2 = 6 variants
    top_k = [3, 5, 10]
    entry_threshold = [0.1, 0.2]
    [[variants.list]]                # or named variants; model.* keys mean a different model
    name = "seed-1"
    model.seed = 1

Each model (one per distinct [model] table) is, by default, the walk-forward selection model of
that table (pipeline.get_selection_model: yearly refits from the selection start, so no score of
either period was seen by the fold that made it), trained or reused once and scored once per period
(models.score_cache). Before any variant runs, every selection-period score date is checked against
its model (models.selection.check_unseen): a model that saw one stops the sweep with one ConfigError
and nothing is written. Every variant is then simulated on both periods (the vector engine, or its
own Cerebro with ScoreAlpha); the variants are ranked on the selection period only, and the chosen
one (the top) is judged on the holdout (analyzers.selection_report: deflated Sharpe, PBO, Spearman
rank correlation, a verdict, selection.json / selection.png). comparison.csv / comparison.md list
every variant's metrics per period, best selection Sharpe first, broken ones last with their error;
equity_curves.png draws the holdout curves against the benchmark.

    python run_backtest.py --variants configs/variants.toml                 # one process
    python run_backtest.py --variants configs/variants.toml --workers 2     # local processes
    python run_backtest.py --variants configs/variants.toml --ray           # local Ray, 2 CPUs
    python run_backtest.py --variants configs/variants.toml --ray-address ray://head:10001

Workers (processes or Ray tasks) return their results and files as bytes; only the driver writes,
so the same code works on a cluster without a shared disk.
"""
from __future__ import annotations

import copy
import io
import itertools
import json
import math
import re
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import pipeline
from configs import load_config
from core.errors import AlphaPluginError, ConfigError, DataError
from core.io import atomic_dir, atomic_path, write_text

ROOT = Path(__file__).resolve().parent

VARIANT_SECTIONS = ("strategy", "model", "backtest")
COMPARISON_METRICS = ("sharpe", "total_return", "cagr", "volatility", "max_drawdown", "sortino", "n_trades",
                      "win_rate", "exposure", "turnover", "final_value")
MODES = ("sequential", "processes", "ray")
ENGINES = ("vector", "cerebro")
CONFIRM_RTOL = 1e-9  # a confirmed variant's Cerebro metrics must equal its vector metrics to this
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")


# ----------------------------------------------------------------------------- variants
@dataclass
class Variant:
    name: str
    overrides: dict                  # {"strategy": {...}, "model": {...}, "backtest": {...}}
    config: dict | None = None       # the merged config (None when it could not be built)
    error: str | None = None         # why the variant cannot run (it is still reported)

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
                raise ConfigError(f"{where}: '{key}.*' cannot vary; a variant changes {', '.join(VARIANT_SECTIONS)} "
                                  f"keys (bare keys are strategy params)")
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
            raise ConfigError(f"{source}[{i}]: every [[variants.list]] entry needs name = \"...\"")
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
            raise ConfigError(f"{source}: variant name {v.name!r} must be a plain folder name "
                              "(letters, digits, . _ = + -)")
        if v.name in seen:
            raise ConfigError(f"{source}: two variants are named {v.name!r}; names must be unique")
        seen.add(v.name)
    return variants


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_sweep(path, preset: str = "default", overrides: dict | None = None) -> tuple[dict, list[Variant]]:
    """(base config, variants) of a variants file. A variant whose keys are wrong keeps its
    ConfigError text in .error (and is reported as broken); a wrong file raises."""
    base = load_config(preset, path, overrides)
    variants = expand_variants(base.get("variants"), f"{path} [variants]")
    for v in variants:
        try:
            v.config = load_config(preset, path, _merge(overrides or {}, v.overrides))
            v.config["name"] = v.name
        except ConfigError as exc:
            v.error = f"ConfigError: {str(exc).replace('command line', f'variant {v.name!r}')}"
    return base, variants


# ----------------------------------------------------------------------------- scores
def period_panel(data, start, end):
    """(panel, benchmark, first day) exactly as LSTMAlpha's BatchScorer sees them in a Cerebro
    built by pipeline.build_cerebro: the tickers it feeds (two or more bars in the period), every
    bar up to `end` (history before `start` is warm-up), scored from the first fed day on."""
    upto = data.prices.between(None, end)
    fed, first = [], None
    for ticker, frame in upto.items():
        in_period = frame.loc[start:end]
        if len(in_period) >= 2:
            fed.append(ticker)
            first = in_period.index[0] if first is None else min(first, in_period.index[0])
    return upto.select(fed), data.benchmark.loc[:end], first


def period_scores(model, data, start, end, cache_dir=None) -> tuple[pd.DataFrame, bool]:
    """(scores, cache hit): the model's scores for a backtest of [start, end], from the score
    cache or computed once; bit for bit the scores LSTMAlpha gives in that Cerebro (tested)."""
    from models.score_cache import DEFAULT_CACHE_DIR, cached_scores
    panel, bench, first = period_panel(data, start, end)
    if first is None:
        raise DataError(f"no stock has two or more prices between {pd.Timestamp(start).date()} and "
                        f"{pd.Timestamp(end).date()}; widen the backtest period")
    return cached_scores(model, panel, bench, data.vix, start=first, cache_dir=cache_dir or DEFAULT_CACHE_DIR)


# ----------------------------------------------------------------------------- one variant
@dataclass
class VariantTask:
    name: str
    config: dict
    scores_key: str
    params: dict = field(default_factory=dict)   # what this variant changes, for run.json


@dataclass
class VariantOutcome:
    name: str
    metrics: dict = field(default_factory=dict)
    analyzers: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)       # file name -> bytes
    error: str | None = None
    seconds: float = 0.0


def run_variant(task: VariantTask, data, scores_by_key: dict, options: dict | None = None) -> VariantOutcome:
    """One variant in its own Cerebro (pipeline.run with precomputed scores) in a temporary folder;
    returns metrics, analyzer results and the files' bytes. Never raises: an error is returned.
    `options`: extra keywords of pipeline.run shared by all variants (universe, extra_analyzers)."""
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="sweep-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the driver warns once for the base config
            out = Path(tmp) / "run"
            result = pipeline.run(task.config, out, scores=scores_by_key[task.scores_key], progress=False, data=data,
                                  **(options or {}))
            files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
        if "run.json" in files:  # say where the scores came from (pipeline.run assumes a --scores file)
            run_info = json.loads(files["run.json"])
            run_info.update(scores="the model's scores, computed once for the sweep (models/score_cache)",
                            variant=task.name, variant_params=task.params)
            files["run.json"] = (json.dumps(run_info, indent=2, default=str) + "\n").encode()
        return VariantOutcome(task.name, dict(result.metrics), dict(result.analyzers), files,
                              seconds=time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - a broken variant is reported, the others go on
        text = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, AlphaPluginError):
            text += " | " + traceback.format_exc(limit=3).strip().splitlines()[-2].strip()
        return VariantOutcome(task.name, error=text, seconds=time.perf_counter() - t0)


# ----------------------------------------------------------------------------- runners
def run_sequential(tasks, data, scores_by_key, progress=None, options=None) -> list[VariantOutcome]:
    outcomes = []
    for task in tasks:
        outcomes.append(run_variant(task, data, scores_by_key, options))
        _report(progress, outcomes[-1], len(outcomes), len(tasks))
    return outcomes


_WORKER_STATE: dict = {}


def _init_worker(data, scores_by_key, options):
    _WORKER_STATE.update(data=data, scores=scores_by_key, options=options)


def _run_in_worker(task):
    return run_variant(task, _WORKER_STATE["data"], _WORKER_STATE["scores"], _WORKER_STATE["options"])


def run_processes(tasks, data, scores_by_key, workers: int = 2, progress=None, options=None) -> list[VariantOutcome]:
    """Local processes without Ray; each worker receives the data and scores once."""
    import concurrent.futures as cf
    import multiprocessing as mp
    # fork hands the panel over without pickling; the workers never run torch, so forking after
    # torch was imported is safe here
    ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context("spawn")
    by_name = {}
    with cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx, initializer=_init_worker,
                                initargs=(data, scores_by_key, options)) as pool:
        futures = {pool.submit(_run_in_worker, t): t for t in tasks}
        for done, future in enumerate(cf.as_completed(futures), 1):
            task = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died
                outcome = VariantOutcome(task.name, error=f"worker failed: {type(exc).__name__}: {exc}")
            by_name[task.name] = outcome
            _report(progress, outcome, done, len(tasks))
    return [by_name[t.name] for t in tasks]


def _ray_runtime_env(address: str | None) -> dict:
    if address:  # a real cluster: ship the project's code (not results, caches or models)
        return {"working_dir": str(ROOT),
                "excludes": ["results/", "cache/", "models/store/", ".git/", ".venv/", "**/__pycache__/"]}
    return {"env_vars": {"PYTHONPATH": str(ROOT)}}


def run_ray(tasks, data, scores_by_key, address: str | None = None, num_cpus: int = 2,
            progress=None, options=None) -> list[VariantOutcome]:
    """Ray tasks: the data and scores go into the object store once; each task builds its own
    Cerebro and returns its results and files. A local instance unless `address` is given."""
    import ray
    started = False
    if not ray.is_initialized():
        kwargs = dict(runtime_env=_ray_runtime_env(address), log_to_driver=False, ignore_reinit_error=True)
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)
        started = True
    try:
        data_ref, scores_ref, options_ref = ray.put(data), ray.put(scores_by_key), ray.put(options)
        remote = ray.remote(num_cpus=1, max_retries=0)(run_variant)
        pending = {remote.remote(t, data_ref, scores_ref, options_ref): t for t in tasks}
        by_name, done = {}, 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - the worker died (run_variant itself never raises)
                outcome = VariantOutcome(task.name, error=f"ray task failed: {type(exc).__name__}: {exc}")
            by_name[task.name] = outcome
            done += 1
            _report(progress, outcome, done, len(tasks))
        return [by_name[t.name] for t in tasks]
    finally:
        if started:
            ray.shutdown()


def _report(progress, outcome: VariantOutcome, done: int, total: int) -> None:
    if progress:
        state = f"error: {outcome.error}" if outcome.error else f"Sharpe {_fmt(outcome.metrics.get('sharpe'))}"
        progress(f"  [{done}/{total}] {outcome.name}: {state} ({outcome.seconds:.1f}s)")


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    out_dir: Path
    rows: list                   # comparison rows, best Sharpe first, broken variants last
    outcomes: dict               # variant name -> VariantOutcome
    models: int                  # distinct models used
    inference_runs: int          # model.predict calls (cache misses)
    seconds: dict
    engine: str = "cerebro"
    confirmed: list = field(default_factory=list)   # variants replayed in Cerebro on the holdout (vector engine)
    returns: "VariantReturns | None" = None         # every working variant's daily returns, both periods
    selection_outcomes: dict = field(default_factory=dict)   # variant name -> its selection-period outcome
    report: object = None        # analyzers.selection_report.SelectionReport (None when no variant worked)
    periods: "Periods | None" = None


@dataclass
class VariantReturns:
    """Every variant's daily returns, float32, on one calendar (NaN where a variant has no day):
    the days x variants matrix that selection statistics (PBO, selection vs holdout) start from."""

    dates: pd.DatetimeIndex
    names: list
    values: np.ndarray  # float32 [days, variants]

    def matrix(self, start=None, end=None, names=None) -> pd.DataFrame:
        """Returns of `names` (default: all) over [start, end] as a days x variants frame."""
        rows = slice(None)
        if start is not None or end is not None:
            lo = 0 if start is None else self.dates.searchsorted(pd.Timestamp(start), side="left")
            hi = len(self.dates) if end is None else self.dates.searchsorted(pd.Timestamp(end), side="right")
            rows = slice(lo, hi)
        cols = list(range(len(self.names))) if names is None else [self.names.index(n) for n in names]
        return pd.DataFrame(self.values[rows][:, cols], index=self.dates[rows], columns=[self.names[c] for c in cols])

    def equity(self, name: str, cash: float, start=None, end=None) -> pd.Series:
        """A variant's equity curve over [start, end] rebuilt from its returns (float32 precision:
        for plots). A sweep's periods are separate runs: rebuild one period at a time."""
        r = self.matrix(start, end, names=[name])[name].dropna().astype("float64")
        return cash * (1.0 + r).cumprod()


class EngineMismatchError(AlphaPluginError):
    """A variant replayed in Cerebro did not give the vector engine's metrics."""


# ----------------------------------------------------------------------------- the two periods
PERIOD_KEYS = ("selection_start", "selection_end", "holdout_start", "holdout_end")
PERIOD_HELP = ("set them in the variants file's [selection] table (selection_start, selection_end, holdout_start, "
               "holdout_end) or with --selection START,END --holdout START,END")
YARDSTICK = "equal-weight universe"
YARDSTICK_WHY = ("Yardstick: the equal-weight portfolio of the universe's stocks (daily rebalanced, no costs) over the "
                 "same days. Any long-only book on these 20 survivor-picked stocks beats zero without skill, so the "
                 "verdict judges the chosen variant's returns in excess of it, not its Sharpe above zero.")


@dataclass(frozen=True)
class Periods:
    """A sweep's selection period (it ranks the variants) and holdout period (it chooses nothing)."""
    selection: tuple            # (first day, last day) as Timestamps
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
        value = table.get(key)
        try:
            day = pd.Timestamp(value)
        except (TypeError, ValueError):
            day = pd.NaT
        if pd.isna(day):
            raise ConfigError(f"{source}: selection.{key} = {value!r} is not a date (YYYY-MM-DD); {PERIOD_HELP}")
        days[key] = day.normalize()
    periods = Periods((days["selection_start"], days["selection_end"]), (days["holdout_start"], days["holdout_end"]))
    for which in ("selection", "holdout"):
        start, end = getattr(periods, which)
        if start > end:
            raise ConfigError(f"{source}: the {which} period {periods.text(which)} starts after it ends; {PERIOD_HELP}")
    (s0, s1), (h0, h1) = periods.selection, periods.holdout
    if s0 <= h1 and h0 <= s1:
        raise ConfigError(f"{source}: the selection period {periods.text('selection')} overlaps the holdout period "
                          f"{periods.text('holdout')}: a holdout chooses nothing, so it must not share days with the "
                          f"selection; {PERIOD_HELP}")
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


def _refuse_backtest_dates(base: dict, variants: list, source) -> None:
    """A sweep trades its two periods: backtest.start / end (or --start / --end) would be ignored."""
    if base["backtest"].get("start") or base["backtest"].get("end"):
        raise ConfigError(f"{source}: a sweep trades a selection and a holdout period, so backtest.start / "
                          f"backtest.end (or --start / --end) cannot apply; drop them and {PERIOD_HELP}")
    for v in variants:
        if not v.error and {"start", "end"} & set(v.overrides.get("backtest", {})):
            v.error = (f"ConfigError: variant {v.name!r} sets backtest.start / backtest.end; a sweep's periods are "
                       f"the same for every variant: {PERIOD_HELP}")


def period_dates(data, period: tuple) -> pd.DatetimeIndex:
    """The trading days of the data in a period: the score dates a sweep uses there."""
    dates = data.prices.dates
    return dates[(dates >= period[0]) & (dates <= period[1])]


# ----------------------------------------------------------------------------- models
def default_model_for(retrain: bool = False, progress: bool = False, store: Path | None = None):
    """model_for(config, data): the walk-forward selection model of the config's [model] table
    (pipeline.get_selection_model), its folds scoring from the earlier period's start through the
    later period's end; trained once and kept under `store` (models/store/)."""
    def model_for(config: dict, data):
        periods = sweep_periods(config)
        first = min(periods.selection[0], periods.holdout[0])
        last = max(periods.selection[1], periods.holdout[1])
        model, _, _ = pipeline.get_selection_model(config, data, str(first.date()), str(last.date()), retrain=retrain,
                                                   progress=progress, store=store or pipeline.MODEL_STORE)
        return model
    return model_for


def check_selection_unseen(model, data, periods: Periods, variant: str, source) -> None:
    """models.selection.check_unseen for the selection period's score dates, the error naming the sweep."""
    from models.selection import check_unseen
    dates = period_dates(data, periods.selection)
    if len(dates) == 0:
        raise ConfigError(f"{source}: the data has no day in the selection period {periods.text('selection')}; "
                          f"{PERIOD_HELP}")
    try:
        check_unseen(model, dates)
    except ConfigError as exc:
        raise ConfigError(f"{source}: the model of variant {variant!r} (and of every variant with its [model] "
                          f"table): {exc} Nothing was run or written.") from None


def run_sweep(variants_path, out_root=pipeline.RESULTS, name: str | None = None, preset: str = "default",
              overrides: dict | None = None, mode: str = "sequential", workers: int = 2,
              ray_address: str | None = None, model_for=None, data=None, cache_dir=None,
              progress=print, universe=None, extra_analyzers=(), engine: str = "vector",
              confirm: int = 3) -> SweepResult:
    """Run every variant of `variants_path` on the selection and the holdout period, rank them on
    the selection period only, and write results/<stem>/: comparison.csv / .md, selection.json /
    .png, equity_curves.png and the variant folders.

    Periods: the [selection] table (default 2013-2016 selection, 2017-2022 holdout). Scores:
    model_for(config, data) -> fitted model, one per distinct [model] table (default: its
    walk-forward selection model, pipeline.get_selection_model); a model that saw a selection
    score date stops the sweep with one ConfigError before any variant runs, and nothing is written.
    engine "vector": every variant simulated in memory on both periods (strategies/vector.py; chunks
    in `mode`'s processes or Ray tasks), then the best `confirm` by selection rank replayed in Cerebro
    on the holdout period with every report into results/<stem>/<variant>/ (EngineMismatchError if
    a replay's metrics differ from the simulator's). engine "cerebro": every variant in its own
    Cerebro on both periods, every report (the holdout's in <variant>/, the selection's in
    <variant>/selection/). universe and extra_analyzers go to every Cerebro run."""
    from models.score_cache import DEFAULT_CACHE_DIR
    if mode not in MODES:
        raise ConfigError(f"sweep mode {mode!r}; use one of {', '.join(MODES)}")
    if engine not in ENGINES:
        raise ConfigError(f"sweep engine {engine!r}; use one of {', '.join(ENGINES)}")
    if not (isinstance(confirm, int) and confirm >= 0):
        raise ConfigError(f"--confirm {confirm!r}: give the number of variants to replay in Cerebro (0 or more)")
    seconds = {}
    t0 = time.perf_counter()
    base, variants = load_sweep(variants_path, preset, overrides)
    periods = sweep_periods(base, str(variants_path))
    _refuse_backtest_dates(base, variants, variants_path)
    out_dir = pipeline.resolve_out_dir(out_root, name or Path(variants_path).stem)
    for v in variants:
        pipeline.resolve_out_dir(out_dir, v.name)  # refuse a name that climbs out before any work
    data = data or pipeline.load_data(base)
    model_for = model_for or default_model_for(progress=progress is not None)
    seconds["setup"] = time.perf_counter() - t0

    # one model per distinct [model] table, checked on the selection days before anything runs;
    # one inference per (model, period)
    t = time.perf_counter()
    models, failed, scores_by_key, key_of, misses = {}, {}, {}, {}, 0
    period_keys: dict = {}   # variant name -> {"selection": scores key, "holdout": scores key}
    for v in variants:
        if v.error:
            continue
        model_key = json.dumps(v.config["model"], sort_keys=True, default=str)
        if model_key in failed:  # that model could not be made: one error, not one training per variant
            v.error = failed[model_key]
            continue
        if model_key not in models:
            try:
                model = model_for(v.config, data)
            except AlphaPluginError as exc:
                v.error = failed[model_key] = f"{type(exc).__name__}: {exc}"
                continue
            check_selection_unseen(model, data, periods, v.name, variants_path)  # raises: the sweep stops
            models[model_key] = model
            if progress:
                progress(f"model {len(models)}: ready; its scores of the selection period "
                         f"{periods.text('selection')} are out of sample (checked)")
        try:
            keys = {}
            for which in ("selection", "holdout"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "in-sample" warnings speak of the split; check_unseen decides
                    start, end = pipeline.backtest_period(period_config(v.config, getattr(periods, which)), data)
                key = f"{model_key}|{start.date()}|{end.date()}"
                if key not in key_of:
                    scores, hit = period_scores(models[model_key], data, start, end, cache_dir or DEFAULT_CACHE_DIR)
                    key_of[key] = f"scores{len(key_of)}"
                    scores_by_key[key_of[key]] = scores
                    misses += not hit
                    if progress:
                        progress(f"scores {start.date()}..{end.date()} ({which}): "
                                 f"{'from cache' if hit else 'computed and cached'}")
                keys[which] = key_of[key]
            period_keys[v.name] = keys
        except AlphaPluginError as exc:
            v.error = f"{type(exc).__name__}: {exc}"
    seconds["models_and_scores"] = time.perf_counter() - t

    working = [v for v in variants if not v.error]
    tasks = {which: [VariantTask(v.name, period_config(v.config, getattr(periods, which)), period_keys[v.name][which],
                                 flat_params(v.overrides)) for v in working] for which in ("selection", "holdout")}
    options = {"universe": universe, "extra_analyzers": tuple(extra_analyzers)}

    def run_cerebro(chosen):
        if mode == "sequential":
            return run_sequential(chosen, data, scores_by_key, progress, options)
        if mode == "processes":
            return run_processes(chosen, data, scores_by_key, workers, progress, options)
        return run_ray(chosen, data, scores_by_key, ray_address, num_cpus=workers, progress=progress, options=options)

    t = time.perf_counter()
    done, returns = {}, {}
    for which in ("selection", "holdout"):
        if engine == "cerebro":
            done[which] = run_cerebro(tasks[which])
            returns[which] = cerebro_returns(done[which], tasks[which])
        else:
            done[which], returns[which] = run_vector_variants(tasks[which], data, scores_by_key, universe, mode,
                                                              workers, ray_address, progress, label=which)
    seconds["backtests" if engine == "cerebro" else "vector"] = time.perf_counter() - t

    outcomes = {which: {o.name: o for o in done[which]} for which in done}
    for v in variants:  # a variant broken in either period is broken
        errors = {which: outcomes[which][v.name].error for which in ("selection", "holdout")
                  if v.name in outcomes[which] and outcomes[which][v.name].error}
        if v.error or errors:
            texts = list(dict.fromkeys(errors.values()))
            error = v.error or (texts[0] if len(texts) == 1 and len(errors) == 2
                                else "; ".join(f"{which} period: {e}" for which, e in errors.items()))
            for which in ("selection", "holdout"):
                outcomes[which][v.name] = VariantOutcome(v.name, error=error)
    outcomes = {which: {v.name: outcomes[which][v.name] for v in variants} for which in outcomes}
    ok = [v.name for v in variants if not outcomes["selection"][v.name].error]
    combined = combine_returns(returns["selection"], returns["holdout"])

    report = None
    if ok:
        report = rank_variants(ok, [v for v in variants if v.name in ok], combined, data, periods)

    t = time.perf_counter()
    confirmed, mismatches = [], []
    if engine == "vector" and report is not None:
        confirmed = list(report.table["name"][:confirm])
        for replay in run_cerebro([task for task in tasks["holdout"] if task.name in confirmed]):
            vector = outcomes["holdout"][replay.name]
            problem = replay.error or metrics_mismatch(vector.metrics, replay.metrics)
            if problem:
                mismatches.append(f"{replay.name}: {problem}")
            outcomes["holdout"][replay.name] = VariantOutcome(replay.name, replay.metrics or vector.metrics,
                                                              replay.analyzers, replay.files, replay.error,
                                                              replay.seconds)
        seconds["confirm"] = time.perf_counter() - t

    t = time.perf_counter()
    rows = write_sweep(out_dir, variants, outcomes["holdout"], data, returns=returns["holdout"], confirmed=confirmed,
                       cash=float(base["backtest"]["cash"]), selection_outcomes=outcomes["selection"], report=report,
                       periods=periods, engine=engine)
    seconds["write"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    if mismatches:
        raise EngineMismatchError(
            "the vector engine and Cerebro disagree on confirmed variant(s) (holdout period): " + "; ".join(mismatches)
            + f". Results are in {out_dir}; please report this with the variants file (docs/engines.md)")
    return SweepResult(out_dir, rows, outcomes["holdout"], len(models), misses, seconds, engine, confirmed, combined,
                       selection_outcomes=outcomes["selection"], report=report, periods=periods)


def rank_variants(names: list, variants: list, returns: "VariantReturns", data, periods: Periods):
    """The selection report of the working variants: ranked on the selection period's returns only,
    judged on the holdout, against the equal-weight universe over the same days (analyzers.selection_report)."""
    from analyzers.selection_report import selection_report
    sel = returns.matrix(*periods.selection, names=names)
    hold = returns.matrix(*periods.holdout, names=names)
    yardstick = tuple(equal_weight_returns(data, m.index) for m in (sel, hold))
    table = pd.DataFrame({"name": [v.name for v in variants], "params": [v.params_text() for v in variants]})
    report = selection_report(table, sel, hold, periods.labels("selection"), periods.labels("holdout"),
                              benchmark=yardstick, benchmark_name=YARDSTICK)
    report.summary["yardstick"] = YARDSTICK_WHY
    return report


def equal_weight_returns(data, dates: pd.DatetimeIndex) -> np.ndarray:
    """Daily returns of pipeline.equal_weight_curve on `dates` (0 on the first day, as a variant's)."""
    curve = pipeline.equal_weight_curve(data.prices, dates)
    return curve.pct_change().fillna(0.0).to_numpy(dtype="float64")


def cerebro_returns(outcomes: list, tasks: list) -> "VariantReturns":
    """VariantReturns from Cerebro runs' equity.csv: the same float32 daily returns the vector engine keeps."""
    from analyzers import daily_returns
    cash = {task.name: float(task.config["backtest"]["cash"]) for task in tasks}
    columns = {}
    for o in outcomes:
        if not o.error and "equity.csv" in o.files:
            equity = equity_from_csv(o.files["equity.csv"])
            columns[o.name] = (equity.index, daily_returns(equity, cash[o.name]).to_numpy(dtype="float32"))
    return _returns_matrix(columns)


def combine_returns(first: "VariantReturns", second: "VariantReturns") -> "VariantReturns":
    """Two periods' returns on one calendar (the periods share no day)."""
    names = [n for n in first.names if n in second.names]
    columns = {}
    for n in names:
        a, b = first.matrix(names=[n])[n].dropna(), second.matrix(names=[n])[n].dropna()
        columns[n] = (a.index.append(b.index), np.concatenate([a.to_numpy(), b.to_numpy()]).astype("float32"))
    return _returns_matrix(columns)


# ----------------------------------------------------------------------------- the vector engine
def metrics_mismatch(vector: dict, cerebro: dict) -> str | None:
    """None when every metric agrees (numbers to CONFIRM_RTOL), else the first difference."""
    if set(vector) != set(cerebro):
        return f"metric keys differ: {sorted(set(vector) ^ set(cerebro))}"
    for key, theirs in cerebro.items():
        ours = vector[key]
        if isinstance(theirs, float) and isinstance(ours, (int, float)):
            if not math.isclose(ours, theirs, rel_tol=CONFIRM_RTOL, abs_tol=1e-12):
                return f"{key}: vector {ours!r} vs Cerebro {theirs!r}"
        elif ours != theirs:
            return f"{key}: vector {ours!r} vs Cerebro {theirs!r}"
    return None


@dataclass
class VectorTask:
    name: str
    panel_key: str
    params: dict
    cash: float
    commission: float


_VECTOR_STATE: dict = {}


def vector_panels(tasks, data, scores_by_key, universe) -> dict:
    """{scores key: (panel, variant-independent metrics)}: the shared arrays, built once per key."""
    panels = {}
    for task in tasks:
        if task.scores_key in panels:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the driver warned once for this period already
            start, end = pipeline.backtest_period(task.config, data)
        panel = pipeline.vector_panel(data, scores_by_key[task.scores_key], start, end, universe)
        from strategies.vector import panel_benchmark_metrics
        fixed = {**panel_benchmark_metrics(panel), **pipeline.universe_baseline(data.prices, panel.dates)}
        panels[task.scores_key] = (panel, fixed)
    return panels


def run_vector_chunk(chunk: list, panels: dict) -> list:
    """Simulate a chunk of VectorTasks; [(name, metrics, float32 returns or None, error)]."""
    from analyzers import daily_returns
    from strategies.vector import simulate_prepared
    out = []
    for task in chunk:
        try:
            panel, fixed = panels[task.panel_key]
            pipeline.check_enough_stocks(len(panel.tickers), task.params, panel.dates[0], panel.dates[-1])
            result = simulate_prepared(panel, task.params, task.cash, task.commission, trade_log=False,
                                       benchmark_metrics={k: v for k, v in fixed.items() if k.startswith("benchmark_")})
            metrics = {**result.metrics, **fixed}
            metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
            returns = daily_returns(result.equity, task.cash).to_numpy(dtype="float32")
            out.append((task.name, metrics, returns, None))
        except Exception as exc:  # noqa: BLE001 - a broken variant is reported, the others go on
            out.append((task.name, {}, None, f"{type(exc).__name__}: {exc}"))
    return out


def _vector_worker_chunk(chunk):
    return run_vector_chunk(chunk, _VECTOR_STATE["panels"])


def run_vector_variants(tasks, data, scores_by_key, universe, mode="sequential", workers=2, ray_address=None,
                        progress=None, label: str = ""):
    """Every variant on the vector engine: (outcomes, VariantReturns). The panels (prices, scores,
    ranks) are built once and shared: inherited by forked processes, or put in Ray's object store once."""
    t0 = time.perf_counter()
    panels = vector_panels(tasks, data, scores_by_key, universe)
    vtasks = [VectorTask(task.name, task.scores_key, pipeline.strategy_params(task.config),
                         float(task.config["backtest"]["cash"]), float(task.config["backtest"]["commission"]))
              for task in tasks]
    found = simulate_variants(vtasks, panels, mode, workers, ray_address)
    outcomes, columns = [], {}
    seconds = (time.perf_counter() - t0) / max(1, len(tasks))
    for task in tasks:
        metrics, returns, error = found[task.name]
        outcomes.append(VariantOutcome(task.name, metrics, error=error, seconds=seconds))
        if returns is not None:
            columns[task.name] = (panels[task.scores_key][0].dates, returns)
    if progress:
        ok = sum(o.error is None for o in outcomes)
        progress(f"vector engine{' (' + label + ' period)' if label else ''}: {len(tasks)} variants ({ok} ok) in "
                 f"{time.perf_counter() - t0:.1f}s")
    return outcomes, _returns_matrix(columns)


def simulate_variants(vtasks: list, panels: dict, mode: str = "sequential", workers: int = 2,
                      ray_address: str | None = None) -> dict:
    """{name: (metrics, float32 returns, error)} of VectorTasks on shared panels, in chunks:
    one process, forked local processes (which inherit the panels) or Ray tasks (panels put once)."""
    n_chunks = 1 if mode == "sequential" else max(1, workers) * 4
    chunks = [vtasks[i::n_chunks] for i in range(n_chunks) if vtasks[i::n_chunks]]
    if mode == "sequential":
        results = [run_vector_chunk(chunk, panels) for chunk in chunks]
    elif mode == "processes":
        import concurrent.futures as cf
        import multiprocessing as mp
        _VECTOR_STATE["panels"] = panels  # forked workers inherit it: no pickling of the arrays
        ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context("spawn")
        forked = ctx.get_start_method() == "fork"
        try:
            with cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx,
                                        initializer=None if forked else _VECTOR_STATE.update,
                                        initargs=() if forked else ({"panels": panels},)) as pool:
                results = list(pool.map(_vector_worker_chunk, chunks))
        finally:
            _VECTOR_STATE.clear()
    else:
        import ray
        started = False
        if not ray.is_initialized():
            kwargs = dict(runtime_env=_ray_runtime_env(ray_address), log_to_driver=False, ignore_reinit_error=True)
            if ray_address:
                ray.init(address=ray_address, **kwargs)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, **kwargs)
            started = True
        try:
            panels_ref = ray.put(panels)  # once: every task reads the same arrays
            remote = ray.remote(num_cpus=1, max_retries=0)(run_vector_chunk)
            results = ray.get([remote.remote(chunk, panels_ref) for chunk in chunks])
        finally:
            if started:
                ray.shutdown()
    return {name: (metrics, returns, error) for chunk in results for name, metrics, returns, error in chunk}


def _returns_matrix(columns: dict) -> VariantReturns:
    names = list(columns)
    dates = pd.DatetimeIndex([])
    for index, _ in columns.values():
        dates = dates.union(index)
    values = np.full((len(dates), len(names)), np.nan, dtype="float32")
    for c, (index, returns) in enumerate(columns.values()):
        values[dates.get_indexer(index), c] = returns
    return VariantReturns(dates, names, values)


# ----------------------------------------------------------------------------- writing
def comparison_rows(variants: list[Variant], outcomes: dict, selection_outcomes: dict | None = None,
                    report=None) -> list[dict]:
    """One row per variant: variant, status, error, params, then (analyzers.selection_report.
    comparison_columns) selection_sharpe, holdout_sharpe, selection_rank, holdout_rank, chosen and
    every other metric per period as selection_<key> / holdout_<key>. Best selection rank first,
    broken variants last. `outcomes`: the holdout period's."""
    from analyzers.selection_report import comparison_columns
    by_name = {v.name: v for v in variants}
    rows = []
    if report is not None:
        ok = list(report.table["name"])
        columns = comparison_columns(report, {n: selection_outcomes[n].metrics for n in ok},
                                     {n: outcomes[n].metrics for n in ok})
        for record in columns.to_dict(orient="records"):
            name = record.pop("name")
            record.pop("params")
            rows.append({"variant": name, "status": "ok", "error": "", "params": by_name[name].params_text(),
                         **{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                            for k, v in record.items()}})
    ranked = {r["variant"] for r in rows}
    for v in variants:
        if v.name not in ranked:
            error = outcomes[v.name].error or "not ranked"
            rows.append({"variant": v.name, "status": "error", "error": error, "params": v.params_text()})
    return rows


def write_sweep(out_dir: Path, variants: list[Variant], outcomes: dict, data, returns=None, confirmed=(),
                cash: float = 100_000.0, selection_outcomes: dict | None = None, report=None,
                periods: Periods | None = None, engine: str = "vector") -> list[dict]:
    """Per-variant folders (the holdout run's files; a Cerebro sweep's selection run in
    <variant>/selection/; a vector sweep writes only the variants replayed in Cerebro and the broken
    ones), comparison.csv / .md of every variant, selection.json / .png, equity_curves.png (holdout)."""
    from analyzers.selection_report import write_selection
    out_dir.mkdir(parents=True, exist_ok=True)
    selection_outcomes = selection_outcomes or {}
    for v in variants:
        o = outcomes[v.name]
        if not o.files and not o.error:
            continue  # screened in memory: its row in comparison.csv is its record
        with atomic_dir(pipeline.resolve_out_dir(out_dir, v.name)) as tmp:
            if o.error:
                (tmp / "error.txt").write_text(o.error + "\n")
            for file_name, content in o.files.items():
                (tmp / file_name).write_bytes(content)
            selection = selection_outcomes.get(v.name)
            if selection is not None and selection.files:
                (tmp / "selection").mkdir()
                for file_name, content in selection.files.items():
                    (tmp / "selection" / file_name).write_bytes(content)
    rows = comparison_rows(variants, outcomes, selection_outcomes, report)
    write_text(out_dir / "comparison.csv", pd.DataFrame(rows).to_csv(index=False))
    write_text(out_dir / "comparison.md", comparison_markdown(rows, data, report, periods, engine, confirmed))
    if report is not None:
        report.summary["engine"] = engine
        report.summary["confirmed_in_cerebro"] = {"period": "holdout", "variants": list(confirmed)}
        write_selection(out_dir, report)
    curves = {o.name: equity_from_csv(o.files["equity.csv"]) for o in outcomes.values()
              if not o.error and "equity.csv" in o.files}
    band = None
    if returns is not None and len(returns.names):
        growth = np.nancumprod(1.0 + returns.values.astype("float64"), axis=0) * cash
        band = pd.DataFrame({"low": np.nanmin(growth, axis=1), "high": np.nanmax(growth, axis=1)}, index=returns.dates)
    if curves or band is not None:
        write_equity_curves_png(curves, data.benchmark, out_dir / "equity_curves.png", data.benchmark_name, band=band,
                                n_variants=len(returns.names) if returns is not None else len(curves))
    return rows


def _fmt(value, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if pct:
        return f"{100 * value:+.1f}%"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def comparison_markdown(rows: list[dict], data, report=None, periods: Periods | None = None, engine: str = "vector",
                        confirmed=()) -> str:
    from analyzers.selection_report import selection_markdown
    ok = [r for r in rows if r["status"] == "ok"]
    broken = [r for r in rows if r["status"] != "ok"]
    lines = ["# Variant comparison", ""]
    if periods is not None:
        lines += [f"Ranked on the selection period {periods.text('selection')} only; the holdout period "
                  f"{periods.text('holdout')} chose nothing (its numbers are reported after the fact). "
                  f"Engine: {engine}.", ""]
    if ok:
        first = ok[0]
        lines += [f"Benchmark {data.benchmark_name} over the holdout: total return "
                  f"{_fmt(first.get('holdout_benchmark_total_return'), True)}, Sharpe "
                  f"{_fmt(first.get('holdout_benchmark_sharpe'))}; equal-weight universe: total return "
                  f"{_fmt(first.get('holdout_universe_ew_total_return'), True)}, Sharpe "
                  f"{_fmt(first.get('holdout_universe_ew_sharpe'))}.", "", YARDSTICK_WHY, ""]
        if engine == "vector":
            lines += [f"Replayed in Cerebro on the holdout period with every report (same metrics as the vector "
                      f"engine): {', '.join(confirmed) or 'none'}.", ""]
        cols = [("selection_sharpe", "selection Sharpe", False), ("holdout_sharpe", "holdout Sharpe", False),
                ("holdout_rank", "holdout rank", False), ("holdout_total_return", "holdout return", True),
                ("holdout_max_drawdown", "holdout max DD", True), ("holdout_n_trades", "holdout trades", False)]
        lines.append("| selection rank | variant | params | " + " | ".join(c[1] for c in cols) + " |")
        lines.append("|---:|---|---|" + "---:|" * len(cols))
        for r in ok:
            mark = " (chosen)" if r.get("chosen") else ""
            cells = [_fmt(r.get(key), pct) for key, _, pct in cols]
            lines.append(f"| {r['selection_rank']} | {r['variant']}{mark} | {r['params']} | "
                         + " | ".join(cells) + " |")
    if report is not None:
        lines += ["", selection_markdown(report).rstrip()]
    if broken:
        lines += ["", "## Broken variants", ""]
        lines += [f"- **{r['variant']}** ({r['params']}): {r['error']}" for r in broken]
    lines += ["", *[f"Caveat: {c}" for c in data.caveats]]
    return "\n".join(lines) + "\n"


def equity_from_csv(content: bytes) -> pd.Series:
    frame = pd.read_csv(io.BytesIO(content), parse_dates=["date"], index_col="date")
    return frame["value"]


def write_equity_curves_png(curves: dict, benchmark: pd.Series, path: Path, bench_name: str, band=None,
                            n_variants: int = 0) -> None:
    """The curves of `curves` (the confirmed variants, or every variant of a Cerebro sweep) and the
    benchmark; `band` (low/high per day) draws every screened variant as a faint envelope."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from analyzers import align_benchmark
    fig, ax = plt.subplots(figsize=(11, 5.5))
    if band is not None:
        ax.fill_between(band.index, band["low"].values, band["high"].values, color="tab:blue", alpha=0.12,
                        linewidth=0, label=f"all {n_variants} variants (range)")
    for name, equity in curves.items():
        ax.plot(equity.index, equity.values, label=name, linewidth=1.0)
    first = next(iter(curves.values())) if curves else pd.Series(band["high"].values, index=band.index)
    bench = align_benchmark(benchmark, first.index, base=float(first.iloc[0]))
    ax.plot(bench.index, bench.values, label=f"{bench_name} (rebased)", color="black", linewidth=1.6, linestyle="--")
    ax.set_ylabel("portfolio value")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, ncol=2 if len(curves) > 8 else 1)
    fig.autofmt_xdate()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


# ----------------------------------------------------------------------------- command line
def overrides_from_args(args) -> dict:
    """The run_backtest.py options that apply to every variant, as config overrides."""
    overrides: dict = {}

    def put(section, key, value):
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    put("strategy", "cross_section", getattr(args, "cross_section", None))
    source = getattr(args, "source", None) or ("csv" if getattr(args, "data", None) else None)
    put("data", "source", source)
    put("data", "dir", getattr(args, "data", None))
    put("data", "benchmark", getattr(args, "benchmark", None))
    for key in ("start", "end", "cash", "commission"):
        put("backtest", key, getattr(args, key, None))
    put("model", "seed", getattr(args, "seed", None))
    for option in ("selection", "holdout"):
        if getattr(args, option, None):
            overrides.setdefault("selection", {}).update(parse_period(getattr(args, option), f"--{option}"))
    return overrides


def run_cli(args) -> int:
    """`run_backtest.py --variants FILE [--ray [--ray-address A]] [--workers N]`."""
    if getattr(args, "config", None):
        raise ConfigError("--variants FILE is the config of a sweep (it names its base); drop --config")
    if getattr(args, "scores", None):
        raise ConfigError("--variants runs the model's cached scores; --scores cannot be combined with it")
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: give at least 1")
    use_ray = bool(getattr(args, "ray", False) or getattr(args, "ray_address", None))
    mode = "ray" if use_ray else ("processes" if workers and workers > 1 else "sequential")
    quiet = getattr(args, "no_progress", False)
    store = Path(args.model_store) if getattr(args, "model_store", None) else None
    universe = None
    if getattr(args, "universe", None):
        from feeds import Membership
        universe = Membership.from_csv(args.universe)
    engine = getattr(args, "engine", None) or "vector"
    result = run_sweep(args.variants, out_root=args.out, name=getattr(args, "name", None), preset=args.preset,
                       overrides=overrides_from_args(args), mode=mode, workers=workers or 2,
                       engine=engine, confirm=getattr(args, "confirm", 3),
                       ray_address=getattr(args, "ray_address", None),
                       model_for=default_model_for(retrain=getattr(args, "retrain", False), progress=not quiet,
                                                   store=store),
                       progress=print, universe=universe, extra_analyzers=getattr(args, "analyzer", None) or ())
    print_comparison(result)
    return 0 if any(r["status"] == "ok" for r in result.rows) else 1


def print_comparison(result: SweepResult) -> None:
    print()
    print(f"Sweep results in {result.out_dir} ({len(result.rows)} variants, {result.models} model(s), "
          f"{result.inference_runs} inference run(s), engine {result.engine}; {result.seconds['total']:.1f}s)")
    print("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items() if k != "total"))
    if result.periods is not None:
        print(f"  ranked on the selection period {result.periods.text('selection')}; "
              f"holdout {result.periods.text('holdout')} (chooses nothing)")
    if result.engine == "vector":
        print(f"  confirmed in Cerebro on the holdout (same metrics as the vector engine): "
              f"{', '.join(result.confirmed) or 'none'}")
    shown = 0
    print(f"  {'variant':32} {'sel. Sharpe':>11} {'holdout Sharpe':>14} {'holdout return':>14} {'trades':>7}")
    for r in result.rows:
        if r["status"] == "ok" and shown >= 20:
            continue  # comparison.csv / .md list every variant
        shown += r["status"] == "ok"
        if r["status"] == "ok":
            print(f"  {r['variant'][:32]:32} {_fmt(r.get('selection_sharpe')):>11} {_fmt(r.get('holdout_sharpe')):>14} "
                  f"{_fmt(r.get('holdout_total_return'), True):>14} {_fmt(r.get('holdout_n_trades')):>7}")
        else:
            print(f"  {r['variant'][:32]:32} BROKEN: {r['error']}")
    if result.report is not None:
        s = result.report.summary
        chosen = s["chosen"]
        excess = s["excess"]["chosen"] if s.get("excess") else {}
        print(f"  chosen: {chosen['name']} (selection rank 1 of {s['n_trials']}): deflated Sharpe "
              f"{_fmt(chosen['deflated_sharpe'])} ({_fmt(excess.get('deflated_sharpe'))} over the {YARDSTICK}), "
              f"holdout Sharpe {_fmt(chosen['holdout_sharpe'])}, PBO {_fmt((s.get('pbo') or {}).get('pbo'))}")
        print(f"  verdict: {result.report.verdict}")
    print(f"  comparison.csv, comparison.md, selection.json, selection.png, equity_curves.png in {result.out_dir}")
