"""The main job: data -> model -> Cerebro (or the vector engine) -> analyzers -> results folder.

run_backtest.py (the command line) calls run_main; the sweep replays variants through run. Each
function does one step and can be used alone from a notebook:

    from jobs.backtest import RunOptions, run
    result = run(config, out_dir, RunOptions(scores=scores))
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import backtrader as bt
import pandas as pd

import analyzers as A
from analyzers.cost_plot import write_cost_png
from analyzers.notes import run_notes, trade_histogram_skip
from analyzers.tearsheet import benchmark_returns, skip_reason, strategy_returns, write_tearsheet
from core.io import atomic_dir, write_json, write_text
from feeds import Membership
from jobs.engines import (
    backtest_costs,
    build_cerebro,
    check_enough_stocks,
    equal_weight_curve,
    indicator_class,
    model_alpha,
    period_scores,
    score_alpha,
    strategy_params,
    universe_baseline,
    vector_panel,
)
from jobs.market import MarketData, load_data
from jobs.periods import backtest_period, describe_split, needs_split, resolve_split
from jobs.store import MODEL_STORE, get_model, model_diagnostics, model_kind
from strategies import scores_csv
from strategies.alpha_rank import no_trade_reason
from strategies.cost_sensitivity import cost_sensitivity, metrics_fields, yardstick_returns

__all__ = [
    "OUR_ANALYZERS",
    "ProgressBar",
    "RunOptions",
    "RunResult",
    "add_analyzers",
    "importance_writer",
    "main_job",
    "main_model",
    "notes_of",
    "run",
    "run_vector",
    "traded_bars",
    "with_notes",
    "write_costs_and_scores",
    "write_equity_png",
    "write_importance",
    "write_reports",
]


@dataclass
class RunOptions:
    """What one backtest uses besides its config. Whatever the caller already has (data, a model,
    scores) is used as given; what it lacks is loaded or trained. `seconds` carries the time the
    caller already spent (e.g. {"data": 0.4, "model": 12.1}), so the run's timings stay true."""

    scores: pd.DataFrame | None = None  # precomputed scores instead of the model (ScoreAlpha)
    data: MarketData | None = None
    model: object = None
    model_path: Path | None = None
    model_reused: bool | None = None
    retrain: bool = False
    progress: bool = True
    universe: Membership | None = None  # point-in-time membership for the strategy
    extra_analyzers: tuple = ()  # dotted names of more Backtrader analyzers
    pyfolio: bool = False
    bt_plot: bool = False
    write_extra: object = None  # write_extra(folder): more reports into the same folder
    seconds: dict = field(default_factory=dict)


@dataclass
class RunResult:
    out_dir: Path
    metrics: dict
    trades: pd.DataFrame
    equity: pd.Series
    analyzers: dict
    model_path: Path | None
    model_reused: bool | None
    seconds: dict
    rejected_orders: int
    alpha: dict | None = None
    costs: object = None  # jobs.engines.Costs
    cost_sensitivity: dict | None = None  # metrics.json's cost fields (strategies.cost_sensitivity.metrics_fields)


def run(config: dict, out_dir: Path, options: RunOptions | None = None, **fields) -> RunResult:
    """One backtest in Cerebro, written whole to `out_dir` (atomically: a failed run leaves no half
    folder). `options` is a RunOptions; its fields may also be given as keywords."""
    opts = options or RunOptions(**fields)
    seconds = dict(opts.seconds)
    t = time.perf_counter()
    data = opts.data or load_data(config)
    if needs_split(config, model_used=opts.scores is None):
        config = resolve_split(config, data)  # run.json records the dates used
    seconds.setdefault("data", time.perf_counter() - t)
    model, model_path, reused = opts.model, opts.model_path, opts.model_reused
    t = time.perf_counter()
    if opts.scores is None and model is None:
        model, model_path, reused = get_model(config, data, retrain=opts.retrain, progress=opts.progress)
    seconds.setdefault("model", time.perf_counter() - t)
    start, end = backtest_period(config, data)
    alpha_for = score_alpha(opts.scores) if opts.scores is not None else model_alpha(model, data, start)
    costs = backtest_costs(config, data)
    cerebro = build_cerebro(
        data,
        start,
        end,
        alpha_for,
        {**strategy_params(config), **costs.strategy_params()},
        float(config["backtest"]["cash"]),
        costs.commission,
        universe=opts.universe,
        slippage=costs.slippage,
    )
    with atomic_dir(out_dir) as tmp:  # a run that fails leaves no half-written results folder
        add_analyzers(cerebro, config, data, start, end, tmp, opts)
        t = time.perf_counter()
        strategy = cerebro.run()[0]
        seconds["backtest"] = time.perf_counter() - t
        t = time.perf_counter()
        panel = vector_panel(data, strategy.scores_read(), start, end, opts.universe)  # what it traded
        turnover = strategy.analyzers.metrics.get_analysis().get("turnover")
        sensitivity = write_costs_and_scores(tmp, config, data, panel, costs, turnover)
        seconds["cost_sensitivity"] = time.perf_counter() - t
        metrics, results, log, equity = write_reports(strategy, data, start, end, tmp, opts, sensitivity)
        write_json(
            tmp / "run.json",
            {
                "config": config,
                "period": [str(start.date()), str(end.date())],
                "traded_bars": traded_bars(equity),
                "model_path": str(model_path) if model_path else None,
                "model_reused": reused,
                "seconds": {k: round(v, 2) for k, v in seconds.items()},
                "rejected_orders": strategy.rejected_orders,
                "costs": costs.record(),
                "caveats": data.caveats,
                "scores": "precomputed file (--scores)"
                if opts.scores is not None
                else f"{indicator_class(model).__name__} indicator ({model_kind(config)} model)",
                **notes_of(metrics),
            },
        )
    alpha = strategy.analyzers.alpha_quality.get_analysis() if opts.scores is None else None
    return RunResult(
        out_dir,
        metrics,
        log,
        equity,
        results,
        model_path,
        reused,
        seconds,
        strategy.rejected_orders,
        alpha=alpha,
        costs=costs,
        cost_sensitivity=sensitivity,
    )


def write_costs_and_scores(folder: Path, config: dict, data: MarketData, panel, costs, turnover) -> dict:
    """scores.csv and cost_sensitivity.png of a run whose trades are `panel`'s (the vector
    engine's arrays of the run's own prices and scores) and whose costs are `costs` (a
    jobs.engines.Costs); returns metrics.json's cost fields.

    scores.csv: the scores the strategy read (a stock's score on each of its bars, before the
    cross-section; empty without a bar or a score), on the run's calendar, in the format --scores
    reads back bit for bit. The cost table: the run re-traded at each cost a side of
    strategies.cost_sensitivity.GRID_BP (the run's commission first, the rest as slippage; its
    volume cap kept), against the equal-weight yardstick of the reports."""
    read = pd.DataFrame(panel.raw, index=pd.DatetimeIndex(panel.dates, name="date"), columns=panel.tickers)
    write_text(folder / "scores.csv", scores_csv(read))
    yardstick = yardstick_returns(equal_weight_curve(data.prices, panel.dates))
    params = {**strategy_params(config), **costs.strategy_params()}
    cash = float(config["backtest"]["cash"])
    block = cost_sensitivity(panel, params, cash, yardstick, commission=costs.commission)
    write_cost_png(
        block["table"],
        block["breakeven"],
        folder / "cost_sensitivity.png",
        turnover=turnover,
        title=f"{config.get('name', 'run')}: cost a side vs Sharpe",
    )
    return metrics_fields(block)


def traded_bars(equity: pd.Series) -> list:
    """The first and the last bar the run traded over (run.json's `traded_bars`, beside the
    requested `period`: a period that starts on a holiday starts trading on the next bar)."""
    if equity.empty:
        return [None, None]
    dates = pd.DatetimeIndex(equity.index)
    return [str(dates[0].date()), str(dates[-1].date())]


OUR_ANALYZERS = ("progress", "tradelog", "metrics", "tearsheet", "pyfolio", "alpha_quality")


def add_analyzers(
    cerebro: bt.Cerebro, config: dict, data: MarketData, start, end, folder: Path, opts: RunOptions
) -> None:
    """The run's analyzers, writing into `folder`: progress, trade log, metrics, QuantStats,
    alpha quality (with a model), pyfolio positions (on request) and any extra analyzer."""
    n_bars = int(((data.benchmark.index >= start) & (data.benchmark.index <= end)).sum())
    bench_upto_end = data.benchmark.loc[:end]
    cerebro.addanalyzer(ProgressBar, total=n_bars, disable=not opts.progress, _name="progress")
    cerebro.addanalyzer(A.TradeLog, path=str(folder / "trades.csv"), _name="tradelog")
    cerebro.addanalyzer(A.PortfolioMetrics, benchmark=bench_upto_end, out_dir=str(folder), _name="metrics")
    cerebro.addanalyzer(
        A.QuantStatsTearsheet,
        benchmark=bench_upto_end,
        path=str(folder / "tearsheet.html"),
        title=f"{config.get('name', 'run')}: AlphaRankStrategy vs {data.benchmark_name}",
        strategy_title="AlphaRankStrategy",
        _name="tearsheet",
    )
    if opts.scores is None:
        cerebro.addanalyzer(A.AlphaQuality, benchmark=bench_upto_end, out_dir=str(folder), _name="alpha_quality")
    if opts.pyfolio:
        cerebro.addanalyzer(A.PyFolioPositions, _name="pyfolio")
    for dotted in list(config.get("analyzers", {}).get("extra", [])) + list(opts.extra_analyzers):
        cls = A.import_analyzer(dotted)
        cerebro.addanalyzer(cls, _name=cls.__name__)


class ProgressBar(bt.Analyzer):
    """A tqdm bar over the backtest's bars."""

    params = (("total", None), ("disable", False))

    def start(self):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.p.total, desc="backtest", unit="bar", disable=self.p.disable)

    def next(self):
        self.bar.update(1)

    def stop(self):
        self.bar.close()

    def get_analysis(self):
        return {}


def write_reports(
    strategy, data: MarketData, start, end, folder: Path, opts: RunOptions, costs: dict | None = None
) -> tuple:
    """metrics.json (with the equal-weight yardstick and the `costs` fields: the cost table), analyzers.json,
    equity.png, the optional pyfolio and Backtrader plots, trade_returns.png: (metrics without the
    cost fields, analyzer results, trade log, equity)."""
    equity = strategy.analyzers.metrics.equity()
    log = strategy.analyzers.tradelog.to_frame()
    # PortfolioMetrics wrote metrics.json and equity.csv; add the universe yardstick to the former,
    # and the notes of a run that could not compute everything (one that never traded)
    metrics = {**strategy.analyzers.metrics.get_analysis(), **universe_baseline(data.prices, equity.index)}
    skipped = (strategy.analyzers.tearsheet.get_analysis().get("skipped"), trade_histogram_skip(len(log)))
    if opts.pyfolio and not len(log):
        skipped += ("pyfolio_transactions.png and pyfolio_round_trips.png not written: no transaction",)
    reason = no_trade_reason(strategy.entry_summary()) if hasattr(strategy, "entry_summary") else None
    metrics = with_notes(metrics, run_notes(metrics, reason, skipped))
    write_json(folder / "metrics.json", {**metrics, **(costs or {})})
    results = A.analyzer_results(strategy)
    write_equity_png(
        equity,
        data.benchmark,
        folder / "equity.png",
        data.benchmark_name,
        equal_weight=equity.iloc[0] * equal_weight_curve(data.prices, equity.index),
    )
    write_json(folder / "analyzers.json", {k: v for k, v in results.items() if k not in OUR_ANALYZERS})
    if opts.pyfolio:
        rets, positions, transactions, _ = strategy.analyzers.pyfolio.get_pf_items()
        bench_rets = data.benchmark.pct_change().loc[start:end]
        A.write_pyfolio_tearsheet(rets, positions, transactions, bench_rets, folder / "pyfolio.png")
    if opts.bt_plot:
        A.save_bt_plot(strategy, folder / "bt_plot.png")
    if opts.write_extra is not None:  # more reports into the same all-or-nothing folder
        opts.write_extra(folder)
    if len(log):
        A.trade_histogram_png(log, folder / "trade_returns.png")
    return metrics, results, log, equity


def run_vector(
    config: dict,
    out_dir: Path,
    scores: pd.DataFrame,
    data: MarketData,
    universe: Membership | None = None,
    model_path=None,
    model_reused: bool | None = None,
    seconds: dict | None = None,
) -> RunResult:
    """The main job on the vector engine: the same rules and the same files as `run` (trades.csv,
    equity.csv, metrics.json, tearsheet.html, equity.png, run.json) from a score frame. `seconds`:
    the time the caller already spent (data, model)."""
    from strategies.vector import entry_summary, simulate_prepared

    seconds = dict(seconds or {})
    start, end = backtest_period(config, data)
    costs = backtest_costs(config, data)
    params = {**strategy_params(config), **costs.strategy_params()}
    t = time.perf_counter()
    panel = vector_panel(data, scores, start, end, universe)
    check_enough_stocks(len(panel.tickers), params, start, end)
    cash = float(config["backtest"]["cash"])
    result = simulate_prepared(panel, params, cash, costs.commission, slippage=costs.slippage)
    seconds["backtest"] = time.perf_counter() - t
    equity = result.equity
    metrics = {**result.metrics, **universe_baseline(data.prices, equity.index)}
    returns = strategy_returns(equity.index, equity.to_numpy(), cash)
    reason = no_trade_reason(entry_summary(panel, params)) if metrics.get("n_trades") == 0 else None
    metrics = with_notes(
        metrics, run_notes(metrics, reason, (skip_reason(returns), trade_histogram_skip(len(result.trades))))
    )
    with atomic_dir(out_dir) as tmp:
        t = time.perf_counter()
        sensitivity = write_costs_and_scores(tmp, config, data, panel, costs, metrics.get("turnover"))
        seconds["cost_sensitivity"] = time.perf_counter() - t
        write_text(tmp / "trades.csv", A.trade_rows_csv(result.trade_rows))
        write_text(tmp / "equity.csv", A.equity_csv(equity))
        write_json(tmp / "metrics.json", {**metrics, **sensitivity})
        if skip_reason(returns) is None:
            bench = benchmark_returns(panel.benchmark, returns.index)
            write_tearsheet(
                returns,
                bench,
                tmp / "tearsheet.html",
                title=f"{config.get('name', 'run')}: AlphaRankStrategy vs {data.benchmark_name}",
                strategy_title="AlphaRankStrategy",
            )
        write_equity_png(
            equity,
            data.benchmark,
            tmp / "equity.png",
            data.benchmark_name,
            equal_weight=equity.iloc[0] * equal_weight_curve(data.prices, equity.index),
        )
        if len(result.trades):
            A.trade_histogram_png(result.trades, tmp / "trade_returns.png")
        write_json(
            tmp / "run.json",
            {
                "config": config,
                "period": [str(start.date()), str(end.date())],
                "traded_bars": traded_bars(equity),
                "engine": "vector",
                "model_path": str(model_path) if model_path else None,
                "model_reused": model_reused,
                "seconds": {k: round(v, 2) for k, v in seconds.items()},
                "rejected_orders": 0,
                "costs": costs.record(),
                "caveats": data.caveats,
                "scores": "the model's scores (models/score_cache) traded by strategies/vector.py",
                **notes_of(metrics),
            },
        )
    return RunResult(
        out_dir,
        metrics,
        result.trades,
        equity,
        {},
        model_path,
        model_reused,
        seconds,
        0,
        costs=costs,
        cost_sensitivity=sensitivity,
    )


def with_notes(metrics: dict, notes: list[str]) -> dict:
    """metrics.json's dict with a "notes" list when there is something to say (a run that did not
    trade); a run that traded keeps exactly its keys."""
    return {**metrics, "notes": notes} if notes else metrics


def notes_of(metrics: dict) -> dict:
    """run.json's "notes" entry: the same notes as metrics.json, when there are any."""
    return {"notes": metrics["notes"]} if metrics.get("notes") else {}


def write_equity_png(
    equity: pd.Series, benchmark: pd.Series, path: Path, bench_name: str, equal_weight: pd.Series | None = None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import atomic_path

    bench = A.align_benchmark(benchmark, equity.index, base=float(equity.iloc[0]))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(equity.index, equity.values, label="AlphaRankStrategy", color="tab:blue")
    ax.plot(bench.index, bench.values, label=f"{bench_name} (rebased)", color="grey")
    if equal_weight is not None:
        ax.plot(
            equal_weight.index,
            equal_weight.values,
            label="universe equal-weight (no costs)",
            color="tab:orange",
            lw=1,
            alpha=0.8,
        )
    ax.set_ylabel("portfolio value")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def write_importance(importance: pd.DataFrame, out_dir: Path) -> None:
    """importance.csv and a bar chart (mean loss rise, error bars = std over repeats)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import atomic_path, write_text

    write_text(out_dir / "importance.csv", importance.to_csv(index=False))
    ordered = importance.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(ordered) + 1.2))
    ax.barh(ordered["feature"], ordered["loss_increase"], xerr=ordered["std"], color="tab:blue", alpha=0.8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("validation loss increase when shuffled")
    ax.set_title("Permutation importance (validation period)")
    with atomic_path(out_dir / "importance.png", suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def importance_writer(model, data: MarketData, say=print):
    """Permutation importance on the validation period, said line by line; returns the writer of
    its files (importance.csv/png), for RunOptions.write_extra."""
    from models.importance import permutation_importance

    importance = permutation_importance(model, data.prices, data.benchmark, vix=data.vix)
    say("permutation importance (validation period, loss increase when shuffled):")
    for row in importance.itertuples():
        say(f"  {row.feature:14} {row.loss_increase:+.5f} ± {row.std:.5f}")
    return lambda out: write_importance(importance, out)


def main_model(config: dict, data: MarketData, opts: RunOptions, store: Path, ray: bool, say=print) -> tuple:
    """(model, path, reused, diagnostics) of the main job: get_model (every warning shown, even a
    repeated one) and the model's rank-IC diagnostics."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        model, path, reused = get_model(
            config, data, retrain=opts.retrain, progress=opts.progress, store=store, ray=ray
        )
    say(f"model: {'reused' if reused else 'trained and saved'} {path}")
    if hasattr(model, "fold_table"):
        say("walk-forward folds (each scores only its test period; fitted on labels ending before it):")
        say(model.fold_table().to_string())
    return model, path, reused, model_diagnostics(model, data, config)


def main_job(
    config: dict,
    out_dir: Path,
    opts: RunOptions,
    engine: str = "cerebro",
    store: Path = MODEL_STORE,
    ray: bool = False,
    importance: bool = False,
    say=print,
) -> tuple:
    """The main job end to end, (result, data, config with its split resolved, model diagnostics
    or None): the configured data (or opts.data), the model (or opts.scores), then `engine`
    ("cerebro": run with every report; "vector": the model's cached scores traded by the compiled
    simulator, run_vector). `say` gets the console lines (the split, the model, the scores)."""
    t0 = time.perf_counter()
    data = opts.data or load_data(config)
    seconds = {**opts.seconds, "data": opts.seconds.get("data", 0.0) + time.perf_counter() - t0}
    if needs_split(config, model_used=opts.scores is None):
        config = resolve_split(config, data)
        say(describe_split(config))
    if opts.universe is not None:  # before any training: a universe of unknown tickers is an error
        unknown = opts.universe.check_tickers(data.prices.tickers)
        if unknown:
            shown = f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}"
            say(f"universe {opts.universe.source}: {len(unknown)} ticker(s) not in the data, never bought: {shown}")
    model = path = reused = diagnostics = None
    if opts.scores is None:
        t = time.perf_counter()
        model, path, reused, diagnostics = main_model(config, data, opts, store, ray, say)
        seconds["model"] = time.perf_counter() - t
    write_extra = importance_writer(model, data, say) if importance and model is not None else opts.write_extra
    if engine == "vector":
        scores = opts.scores
        if scores is None:
            start, end = backtest_period(config, data)
            scores, hit = period_scores(model, data, start, end)
            say(f"scores: {'from cache' if hit else 'computed and cached'}")
        result = run_vector(config, out_dir, scores, data, opts.universe, path, reused, seconds)
    else:
        opts = replace(
            opts, data=data, model=model, model_path=path, model_reused=reused, write_extra=write_extra, seconds=seconds
        )
        result = run(config, out_dir, opts)
    return result, data, config, diagnostics
