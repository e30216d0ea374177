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
that table (jobs.store.get_selection_model: yearly refits from the selection start, so no score of
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

from configs import load_config
from core.errors import AlphaPluginError, ConfigError, DataError
from core.io import atomic_dir, atomic_path, write_text
from jobs.engines import equal_weight_curve, period_scores
from jobs.market import load_data
from jobs.periods import backtest_period
from jobs.store import MODEL_STORE, RESULTS, get_selection_model, resolve_out_dir
from jobs.sweep.report import (
    COMPARISON_METRICS,
    chosen_cost_line,
    comparison_markdown,
    comparison_rows,
    equity_from_csv,
    print_comparison,
    write_equity_curves_png,
    write_sweep,
)
from jobs.sweep.runners import (
    CONFIRM_RTOL,
    MEMORY_BOUND,
    MODES,
    EngineMismatchError,
    Spill,
    VariantOutcome,
    VariantReturns,
    VariantTask,
    VectorTask,
    metrics_mismatch,
    run_in_cerebro,
    run_processes,
    run_ray,
    run_sequential,
    run_variant,
    run_vector_chunk,
    run_vector_variants,
    simulate_variants,
    variant_returns,
    vector_panels,
    warm_vector_engine,
)
from jobs.sweep.spec import (
    PERIOD_HELP,
    PERIOD_KEYS,
    VARIANT_SECTIONS,
    YARDSTICK,
    YARDSTICK_WHY,
    Periods,
    Variant,
    expand_variants,
    flat_params,
    grid_variants,
    list_variants,
    load_sweep,
    parse_period,
    period_config,
    period_dates,
    refuse_backtest_dates,
    sweep_periods,
)

__all__ = [
    "COMPARISON_METRICS",
    "CONFIRM_RTOL",
    "ENGINES",
    "EngineMismatchError",
    "MODES",
    "PERIOD_HELP",
    "PERIOD_KEYS",
    "Periods",
    "SweepResult",
    "VARIANT_SECTIONS",
    "Variant",
    "VariantOutcome",
    "VariantReturns",
    "VariantTask",
    "VectorTask",
    "YARDSTICK",
    "YARDSTICK_WHY",
    "cerebro_returns",
    "check_selection_unseen",
    "check_sweep_options",
    "chosen_cost_line",
    "combine_returns",
    "comparison_markdown",
    "comparison_rows",
    "default_model_for",
    "equal_weight_returns",
    "equity_from_csv",
    "expand_variants",
    "flat_params",
    "grid_variants",
    "list_variants",
    "load_sweep",
    "metrics_mismatch",
    "models_and_scores",
    "parse_period",
    "period_config",
    "period_dates",
    "period_outcomes",
    "print_comparison",
    "rank_variants",
    "run_in_cerebro",
    "run_processes",
    "run_ray",
    "run_sequential",
    "run_sweep",
    "run_variant",
    "run_vector_chunk",
    "run_vector_variants",
    "simulate_variants",
    "sweep_periods",
    "take_replays",
    "vector_panels",
    "warm_vector_engine",
    "write_equity_curves_png",
    "write_sweep",
]

ENGINES = ("vector", "cerebro")


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    out_dir: Path
    rows: list  # comparison rows, best Sharpe first, broken variants last
    outcomes: dict  # variant name -> VariantOutcome
    models: int  # distinct models used
    inference_runs: int  # model.predict calls (cache misses)
    seconds: dict
    engine: str = "cerebro"
    confirmed: list = field(default_factory=list)  # variants replayed in Cerebro on the holdout (vector engine)
    returns: "VariantReturns | None" = None  # every working variant's daily returns, both periods
    selection_outcomes: dict = field(default_factory=dict)  # variant name -> its selection-period outcome
    report: object = None  # analyzers.selection_report.SelectionReport (None when no variant worked)
    periods: "Periods | None" = None
    files: list = field(default_factory=list)  # the files written at the top of out_dir


# ----------------------------------------------------------------------------- models
def default_model_for(retrain: bool = False, progress: bool = False, store: Path | None = None):
    """model_for(config, data): the walk-forward selection model of the config's [model] table
    (jobs.store.get_selection_model), its folds scoring from the earlier period's start through the
    later period's end; trained once and kept under `store` (models/store/)."""

    def model_for(config: dict, data):
        periods = sweep_periods(config)
        first = min(periods.selection[0], periods.holdout[0])
        last = max(periods.selection[1], periods.holdout[1])
        model, _, _ = get_selection_model(
            config,
            data,
            str(first.date()),
            str(last.date()),
            retrain=retrain,
            progress=progress,
            store=store or MODEL_STORE,
        )
        return model

    return model_for


def check_selection_unseen(model, data, periods: Periods, variant: str, source) -> None:
    """models.selection.check_unseen for the selection period's score dates, the error naming the sweep."""
    from models.selection import check_unseen

    dates = period_dates(data, periods.selection)
    if len(dates) == 0:
        raise ConfigError(
            f"{source}: the data has no day in the selection period {periods.text('selection')}; {PERIOD_HELP}"
        )
    try:
        check_unseen(model, dates)
    except ConfigError as exc:
        raise ConfigError(
            f"{source}: the model of variant {variant!r} (and of every variant with its [model] "
            f"table): {exc} Nothing was run or written."
        ) from None


def models_and_scores(
    variants: list, data, periods: Periods, model_for, variants_path, cache_dir, progress
) -> tuple[dict, dict]:
    """One model per distinct [model] table, checked on the selection days before anything runs
    (a model that saw one raises: the sweep stops); one inference per (model, period), cached.
    Returns ({scores key: score frame}, {variant: {"selection": key, "holdout": key}}, the number
    of models, the number of inferences run (cache misses)); a variant
    whose model or scores cannot be made gets its .error instead."""
    models, failed, scores_by_key, key_of, misses = {}, {}, {}, {}, 0
    period_keys: dict = {}  # variant name -> {"selection": scores key, "holdout": scores key}
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
                progress(
                    f"model {len(models)}: ready; its scores of the selection period "
                    f"{periods.text('selection')} are out of sample (checked)"
                )
        try:
            keys = {}
            for which in ("selection", "holdout"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "in-sample" warnings speak of the split; check_unseen decides
                    start, end = backtest_period(period_config(v.config, getattr(periods, which)), data)
                key = f"{model_key}|{start.date()}|{end.date()}"
                if key not in key_of:
                    scores, hit = period_scores(models[model_key], data, start, end, cache_dir)
                    key_of[key] = f"scores{len(key_of)}"
                    scores_by_key[key_of[key]] = scores
                    misses += not hit
                    if progress:
                        progress(
                            f"scores {start.date()}..{end.date()} ({which}): "
                            f"{'from cache' if hit else 'computed and cached'}"
                        )
                keys[which] = key_of[key]
            period_keys[v.name] = keys
        except AlphaPluginError as exc:
            v.error = f"{type(exc).__name__}: {exc}"
    return scores_by_key, period_keys, len(models), misses


def period_outcomes(variants: list, done: dict) -> dict:
    """{period: {variant: outcome}} in the variants' order; a variant broken in either period (or
    before running) is broken in both, with one error text."""
    outcomes = {which: {o.name: o for o in done[which]} for which in done}
    for v in variants:
        errors = {
            which: outcomes[which][v.name].error
            for which in ("selection", "holdout")
            if v.name in outcomes[which] and outcomes[which][v.name].error
        }
        if v.error or errors:
            texts = list(dict.fromkeys(errors.values()))
            error = v.error or (
                texts[0]
                if len(texts) == 1 and len(errors) == 2
                else "; ".join(f"{which} period: {e}" for which, e in errors.items())
            )
            for which in ("selection", "holdout"):
                outcomes[which][v.name] = VariantOutcome(v.name, error=error)
    return {which: {v.name: outcomes[which][v.name] for v in variants} for which in outcomes}


def take_replays(holdout: dict, replays: list) -> list[str]:
    """Put Cerebro's replays (every report) in place of the vector outcomes of the same variants;
    the list of those whose metrics differ from the simulator's (or that failed)."""
    mismatches = []
    for replay in replays:
        vector = holdout[replay.name]
        problem = replay.error or metrics_mismatch(vector.metrics, replay.metrics)
        if problem:
            mismatches.append(f"{replay.name}: {problem}")
        holdout[replay.name] = VariantOutcome(
            replay.name, replay.metrics or vector.metrics, replay.analyzers, replay.files, replay.error, replay.seconds
        )
    return mismatches


def check_sweep_options(mode: str, engine: str, confirm) -> None:
    if mode not in MODES:
        raise ConfigError(f"sweep mode {mode!r}; use one of {', '.join(MODES)}")
    if engine not in ENGINES:
        raise ConfigError(f"sweep engine {engine!r}; use one of {', '.join(ENGINES)}")
    if not (isinstance(confirm, int) and confirm >= 0):
        raise ConfigError(f"--confirm {confirm!r}: give the number of variants to replay in Cerebro (0 or more)")


def run_sweep(
    variants_path,
    out_root=RESULTS,
    name: str | None = None,
    preset: str = "default",
    overrides: dict | None = None,
    mode: str = "sequential",
    workers: int = 2,
    ray_address: str | None = None,
    model_for=None,
    data=None,
    cache_dir=None,
    progress=print,
    universe=None,
    extra_analyzers=(),
    engine: str = "vector",
    confirm: int = 3,
    memory_bound: int = MEMORY_BOUND,
) -> SweepResult:
    """Run every variant of `variants_path` on the selection and the holdout period, rank them on
    the selection period only, and write results/<stem>/: comparison.csv / .md, selection.json /
    .png, equity_curves.png and the variant folders.

    Periods: the [selection] table (default 2013-2016 selection, 2017-2022 holdout). Scores:
    model_for(config, data) -> fitted model, one per distinct [model] table (default: its
    walk-forward selection model, jobs.store.get_selection_model); a model that saw a selection
    score date stops the sweep with one ConfigError before any variant runs, and nothing is written.
    engine "vector": every variant simulated in memory on both periods (strategies/vector.py; chunks
    in `mode`'s processes or Ray tasks), then the best `confirm` by selection rank replayed in Cerebro
    on the holdout period with every report into results/<stem>/<variant>/ (EngineMismatchError if
    a replay's metrics differ from the simulator's). engine "cerebro": every variant in its own
    Cerebro on both periods, every report (the holdout's in <variant>/, the selection's in
    <variant>/selection/). universe and extra_analyzers go to every Cerebro run. memory_bound:
    bytes of a returns matrix (days x variants, float32) held in memory; a larger one is kept in a
    float32 file beside the results folder while the sweep runs (sweep.runners.Spill).

    Long because: it is the sweep's recipe read top to bottom (set-up, models and scores, both
    periods, ranking, confirmation, files), each step one call and one timing."""
    from models.score_cache import DEFAULT_CACHE_DIR

    check_sweep_options(mode, engine, confirm)
    seconds = {}
    t0 = time.perf_counter()
    base, variants = load_sweep(variants_path, preset, overrides)
    periods = sweep_periods(base, str(variants_path))
    refuse_backtest_dates(base, variants, variants_path)
    out_dir = resolve_out_dir(out_root, name or Path(variants_path).stem)
    for v in variants:
        resolve_out_dir(out_dir, v.name)  # refuse a name that climbs out before any work
    data = data or load_data(base)
    if universe is not None:  # before any model: a universe of unknown tickers is a DataError
        unknown = universe.check_tickers(data.prices.tickers)
        if unknown and progress:
            progress(
                f"universe {universe.source}: {len(unknown)} ticker(s) not in the data, never bought: {unknown[:10]}"
            )
    model_for = model_for or default_model_for(progress=progress is not None)
    spill = Spill(memory_bound, out_dir.parent, out_dir.name)
    if progress:
        progress(grid_size_text(variants, data, periods, spill))
    seconds["setup"] = time.perf_counter() - t0

    t = time.perf_counter()
    warming = warm_vector_engine() if engine == "vector" else None  # compiles while the folds train
    try:
        scores_by_key, period_keys, n_models, misses = models_and_scores(
            variants, data, periods, model_for, variants_path, cache_dir or DEFAULT_CACHE_DIR, progress
        )
    finally:
        if warming is not None:
            warming.join()  # before the vector and Cerebro pools fork
    seconds["models_and_scores"] = time.perf_counter() - t

    working = [v for v in variants if not v.error]
    tasks = {
        which: [
            VariantTask(
                v.name,
                period_config(v.config, getattr(periods, which)),
                period_keys[v.name][which],
                flat_params(v.overrides),
            )
            for v in working
        ]
        for which in ("selection", "holdout")
    }
    options = {"universe": universe, "extra_analyzers": tuple(extra_analyzers)}

    def run_cerebro(chosen):
        return run_in_cerebro(chosen, data, scores_by_key, mode, workers, ray_address, progress, options)

    try:
        t = time.perf_counter()
        done, returns = {}, {}
        for which in ("selection", "holdout"):
            if engine == "cerebro":
                done[which] = run_cerebro(tasks[which])
                returns[which] = cerebro_returns(done[which], tasks[which])
            else:
                done[which], returns[which] = run_vector_variants(
                    tasks[which], data, scores_by_key, universe, mode, workers, ray_address, progress, which, spill
                )
        seconds["backtests" if engine == "cerebro" else "vector"] = time.perf_counter() - t

        t = time.perf_counter()
        outcomes = period_outcomes(variants, done)
        ok = [v.name for v in variants if not outcomes["selection"][v.name].error]
        combined = combine_returns(returns["selection"], returns["holdout"], ok, spill)
        del returns  # the period matrices: the combined one holds what is left to read
        report = None
        if ok:
            report = rank_variants(ok, [v for v in variants if v.name in ok], combined, data, periods)
        seconds["ranking"] = time.perf_counter() - t

        t = time.perf_counter()
        confirmed, mismatches = [], []
        if engine == "vector" and report is not None:
            confirmed = list(report.table["name"][:confirm])
            replays = run_cerebro([task for task in tasks["holdout"] if task.name in confirmed])
            mismatches = take_replays(outcomes["holdout"], replays)
            seconds["confirm"] = time.perf_counter() - t

        t = time.perf_counter()
        rows, files = write_sweep(
            out_dir,
            variants,
            outcomes["holdout"],
            data,
            returns=combined.between(*periods.holdout),
            confirmed=confirmed,
            cash=float(base["backtest"]["cash"]),
            selection_outcomes=outcomes["selection"],
            report=report,
            periods=periods,
            engine=engine,
        )
        seconds["write"] = time.perf_counter() - t
    finally:
        spill.close()
    seconds["total"] = time.perf_counter() - t0
    if mismatches:
        raise EngineMismatchError(
            "the vector engine and Cerebro disagree on confirmed variant(s) (holdout period): "
            + "; ".join(mismatches)
            + f". Results are in {out_dir}; please report this with the variants file (docs/engines.md)"
        )
    return SweepResult(
        out_dir,
        rows,
        outcomes["holdout"],
        n_models,
        misses,
        seconds,
        engine,
        confirmed,
        combined,
        selection_outcomes=outcomes["selection"],
        report=report,
        periods=periods,
        files=files,
    )


METRICS_BYTES = 6_000  # estimated: a variant's two metrics dicts (~30 numbers each), its row and report entry


def grid_size_text(variants: list, data, periods: Periods, spill: Spill) -> str:
    """What the sweep is about to hold: variants x days of float32 returns per period (and the
    combined matrix), where they will live, and the Python objects of the metrics and tables."""
    days = {which: len(period_dates(data, getattr(periods, which))) for which in ("selection", "holdout")}
    n = len(variants)
    total = sum(days.values())
    returns = 2 * 4 * n * total  # the two period matrices, then the combined one (the same size)
    where = (
        f"in float32 files beside the results (each matrix is above the {spill.bound / 2**20:,.0f} MB memory bound)"
        if spill.on_disk((total, n))
        else "in memory"
    )
    objects = METRICS_BYTES * n
    return (
        f"sweep: {n:,} variants x 2 periods ({days['selection']:,} + {days['holdout']:,} days): returns "
        f"{returns / 2**20:,.1f} MB {where}; metrics and tables ~{objects / 2**20:,.1f} MB in memory"
    )


def rank_variants(names: list, variants: list, returns: "VariantReturns", data, periods: Periods):
    """The selection report of the working variants: ranked on the selection period's returns only,
    judged on the holdout, against the equal-weight universe over the same days (analyzers.selection_report)."""
    from analyzers.selection_report import selection_report

    sel, hold = (returns.between(*getattr(periods, which)).select(names) for which in ("selection", "holdout"))
    yardstick = tuple(equal_weight_returns(data, m.dates) for m in (sel, hold))
    table = pd.DataFrame({"name": [v.name for v in variants], "params": [v.params_text() for v in variants]})
    report = selection_report(
        table,
        sel.values,  # float32, maybe a np.memmap: selection_report reads it in column blocks
        hold.values,
        periods.labels("selection"),
        periods.labels("holdout"),
        benchmark=yardstick,
        benchmark_name=YARDSTICK,
    )
    report.summary["yardstick"] = YARDSTICK_WHY
    return report


def equal_weight_returns(data, dates: pd.DatetimeIndex) -> np.ndarray:
    """Daily returns of jobs.engines.equal_weight_curve on `dates` (0 on the first day, as a variant's)."""
    curve = equal_weight_curve(data.prices, dates)
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
    return variant_returns(columns)


def combine_returns(
    first: "VariantReturns", second: "VariantReturns", names=None, spill: "Spill | None" = None
) -> "VariantReturns":
    """Two periods' returns on one calendar (the periods share no day, so one period's rows all
    come before the other's): the columns of `names` (default: every name in both), copied in
    blocks of columns into one matrix (`spill` decides memory or file)."""
    names = [n for n in first.names if n in set(second.names)] if names is None else list(names)
    parts = sorted((first, second), key=lambda r: r.dates[0] if len(r.dates) else pd.Timestamp.max)
    dates = parts[0].dates.append(parts[1].dates)
    if not dates.is_monotonic_increasing or dates.has_duplicates:
        raise ValueError("combine_returns: the two periods' calendars overlap")
    values = (spill or Spill()).array((len(dates), len(names)))
    row = 0
    for part in parts:
        index = {n: c for c, n in enumerate(part.names)}
        columns = np.array([index[n] for n in names], dtype=np.int64)
        rows = slice(row, row + len(part.dates))
        for lo in range(0, len(names), COPY_COLUMNS):
            values[rows, lo : lo + COPY_COLUMNS] = part.values[:, columns[lo : lo + COPY_COLUMNS]]
        row += len(part.dates)
    return VariantReturns(dates, names, values)


COPY_COLUMNS = 2048  # columns per block copy: ~12 MB of float32 for 1,510 days
