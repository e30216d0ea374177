"""Wiring: data -> model -> Cerebro -> analyzers -> results folder.

run_backtest.py (the command line) and the sweep/ package (variants, Ray) call these functions; nothing
here parses arguments or prints tables. Each function does one step and can be used alone from a
notebook.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd

import analyzers as A
from analyzers.tearsheet import benchmark_returns, strategy_returns, write_tearsheet
from core.io import atomic_dir, write_json, write_text
from feeds import (
    CAVEATS,
    ArrayData,
    ConfigError,
    DataError,
    LeanBroker,
    Membership,
    PricePanel,
    load_embedded,
    series_fingerprint,
)
from models import AlphaIndicator, LSTMAlpha, ModelConfig, make_model
from strategies import AlphaRankStrategy, ScoreAlpha

ROOT = Path(__file__).resolve().parent
MODEL_STORE = ROOT / "models" / "store"
RESULTS = ROOT / "results"
BENCHMARK_NAME_IN_CEREBRO = "__benchmark__"


# ----------------------------------------------------------------------------- data
@dataclass
class MarketData:
    prices: PricePanel
    benchmark: pd.Series
    vix: pd.Series | None = None
    caveats: list = field(default_factory=list)

    @property
    def benchmark_name(self) -> str:
        return str(self.benchmark.name or "benchmark")


def load_data(config: dict) -> MarketData:
    """The prices named by config['data']: embedded (default), a CSV folder, or the yfinance cache."""
    data = config["data"]
    source = data.get("source", "embedded")
    if source == "embedded":
        prices, bench = load_embedded()
        return MarketData(prices, bench, None, [CAVEATS])
    if source == "csv":
        from feeds import load_csv_folder

        if not data.get("dir"):
            raise ConfigError("data.source = 'csv' needs data.dir (or --data DIR): the folder of one CSV per ticker")
        if not data.get("benchmark"):
            raise ConfigError(
                "a CSV folder needs --benchmark TICKER (data.benchmark): "
                "the file in that folder to use as the benchmark"
            )
        prices, bench = load_csv_folder(data["dir"], benchmark=data["benchmark"])
        return MarketData(
            prices,
            bench.rename(data["benchmark"]),
            None,
            [f"CSV folder {data['dir']}: whatever survivorship its ticker list has, the results have too."],
        )
    if source == "yfinance":
        from feeds import load_cache

        cache = data.get("dir") or str(ROOT / "cache" / "yfinance")
        prices, bench, vix = load_cache(cache, benchmark=data.get("benchmark") or "SPY")
        return MarketData(
            prices,
            bench,
            vix,
            [
                f"yfinance cache {cache}: today's index members are survivors; use a point-in-time membership "
                "file (--universe) for a fair backtest."
            ],
        )
    raise ConfigError(f"data.source = {source!r}; use 'embedded', 'csv' or 'yfinance'")


# ----------------------------------------------------------------------------- model
def planted_data(
    n_tickers: int = 150, n_days: int = 1500, planted_ic: float = 0.10, seed: int = 0, start: str = "2010-01-04"
) -> MarketData:
    """The positive control: a synthetic close-only universe with a planted 20-day reversal whose rank
    IC against the 10-day forward excess return is about `planted_ic` (feeds/synthetic.py). Run it
    with model.split = "auto" (resolve_split gives 60/20/20 % of its dates)."""
    from feeds.synthetic import PLANTED_FEATURE, SYNTHETIC_LABEL, make_synthetic_universe

    prices, bench = make_synthetic_universe(
        n_tickers=n_tickers, n_days=n_days, start=start, seed=seed, ohlcv=False, planted_ic=planted_ic
    )
    return MarketData(
        prices,
        bench,
        None,
        [
            SYNTHETIC_LABEL,
            f"planted signal: minus {PLANTED_FEATURE}, "
            f"rank IC about {planted_ic:g} against 10-day forward excess returns",
        ],
    )


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


def model_config(config: dict) -> ModelConfig:
    """The model's hyperparameters ([model] without `kind`, which names the zoo model), with the split
    resolved to dates."""
    if not isinstance(config["model"].get("split"), dict) or not config["model"]["split"].get("test_end"):
        raise ConfigError("model.split is 'auto' or has empty dates: call pipeline.resolve_split(config, data) first")
    return ModelConfig.from_dict({k: v for k, v in config["model"].items() if k != "kind"})


def model_kind(config: dict) -> str:
    """The zoo model of [model] kind (--model NAME): lstm, logistic, lightgbm, mlp, momentum, random."""
    return str(config["model"].get("kind", "lstm"))


def artifact_dir(config: dict, cfg: ModelConfig, data: MarketData, store: Path = MODEL_STORE) -> Path:
    """Where the model for this (kind, configuration, data) lives: the name carries the kind and
    the fingerprints, so another model, changed data or changed hyperparameters never reuse a
    stale model."""
    kind = model_kind(config)
    key = hashlib.sha256(
        f"{kind}:{cfg.fingerprint()}:{data.prices.fingerprint()}:{series_fingerprint(data.benchmark)}".encode()
    ).hexdigest()[:12]
    return store / f"{config.get('preset', 'custom')}-{kind}-{key}"


def walk_forward_params(config: dict) -> dict | None:
    wf = dict(config.get("walk_forward", {}))
    if not wf.pop("enabled", False):
        return None
    wf.pop("workers", None)
    split = config["model"]["split"]
    return {"first_test": split["test_start"], "last_test": split["test_end"], **wf}


def get_model(
    config: dict,
    data: MarketData,
    retrain: bool = False,
    progress: bool = True,
    store: Path = MODEL_STORE,
    ray: bool = False,
) -> tuple:
    """(model, path, reused): the saved artifact whose kind, data and configuration match, or a new
    fit of the zoo model [model] kind. With walk_forward.enabled, a WalkForwardModel (a bundle of
    yearly refits of that model)."""
    from models.artifact import read_meta
    from models.dataset import check_split_covers
    from models.registry import load_model

    config = resolve_split(config, data)
    cfg = model_config(config)
    check_split_covers(cfg.split, data.prices.dates)
    kind = model_kind(config)
    path = artifact_dir(config, cfg, data, store)
    wf = walk_forward_params(config)
    if wf is not None:
        return _get_walk_forward(config, cfg, wf, data, path, retrain, progress, ray)
    if path.exists() and not retrain:
        meta = read_meta(path)
        if (
            meta.get("model", "lstm") == kind
            and meta.get("config_fingerprint") == make_model(kind, cfg).config.fingerprint()
            and meta.get("data_fingerprint", {}).get("prices") == data.prices.fingerprint()
        ):
            return load_model(path), path, True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = make_model(kind, cfg).fit(data.prices, data.benchmark, vix=data.vix, progress=progress)
    for w in caught:
        message = str(w.message)
        if config.get("preset") == "seed" and "k_upper" in message:
            message += " (the seed's model used k_upper, the candle's upper shadow; close-only data cannot give it)"
        warnings.warn(message, UserWarning, stacklevel=2)
    model.save(path)
    return model, path, False


def get_selection_model(
    config: dict,
    data: MarketData,
    selection_start="2013-01-01",
    holdout_end="2022-12-31",
    retrain: bool = False,
    progress: bool = True,
    store: Path = MODEL_STORE,
    ray: bool = False,
) -> tuple:
    """(model, path, reused): the walk-forward model a sweep selects on, trained once and kept under
    `store` like get_model's. Yearly refits (the [walk_forward] table's plan: refit_every_months,
    window, valid_years) with the first fold scoring from `selection_start` and the last through
    `holdout_end`, so every score of the selection and holdout periods is out of sample
    (models.selection.check_unseen proves it for the dates a sweep uses)."""
    from models.selection import selection_walk_forward

    config = resolve_split(config, data)
    cfg = model_config(config)
    plan = {k: v for k, v in config.get("walk_forward", {}).items() if k not in ("enabled", "workers")}
    plan_model = selection_walk_forward(cfg, selection_start, holdout_end, **plan)  # validates the plan
    return _get_walk_forward(
        config, cfg, plan_model.params, data, artifact_dir(config, cfg, data, store), retrain, progress, ray
    )


def _get_walk_forward(config, cfg, wf, data, base_path, retrain, progress, ray):
    from models.walkforward import WalkForwardModel

    key = hashlib.sha256(json.dumps(wf, sort_keys=True).encode()).hexdigest()[:8]
    path = base_path.with_name(f"{base_path.name}-wf{key}")
    if path.exists() and not retrain:
        return WalkForwardModel.load(path), path, True
    model = WalkForwardModel(cfg, **wf, model=model_kind(config))
    model = model.fit(
        data.prices,
        data.benchmark,
        vix=data.vix,
        progress=progress,
        workers=int(config["walk_forward"].get("workers", 1)),
        ray=ray,
    )
    model.save(path)
    return model, path, False


# ----------------------------------------------------------------------------- period
def needs_split(config: dict, model_used: bool = True) -> bool:
    """False only for a run without a model whose --start and --end are both given: there the
    split decides nothing (and a short scores-only data set need not fit the auto split)."""
    return model_used or not (config["backtest"].get("start") and config["backtest"].get("end"))


def backtest_period(config: dict, data: MarketData) -> tuple[pd.Timestamp, pd.Timestamp]:
    bt_cfg = config["backtest"]
    if not needs_split(config, model_used=False):
        start, end = pd.Timestamp(bt_cfg["start"]), min(pd.Timestamp(bt_cfg["end"]), data.prices.dates[-1])
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
    start = pd.Timestamp(bt_cfg.get("start") or split["test_start"])
    end = pd.Timestamp(bt_cfg.get("end") or split["test_end"])
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


# ----------------------------------------------------------------------------- Cerebro
def strategy_params(config: dict) -> dict:
    """The [strategy] table's AlphaRankStrategy params (the strategy's own list decides)."""
    allowed = set(AlphaRankStrategy.params._getkeys())
    return {k: v for k, v in config["strategy"].items() if k in allowed}


def fed_frames(data: MarketData, start, end, min_bars: int = 2) -> dict:
    """{ticker: bars in [start, end]} of the stocks a backtest trades: those with `min_bars` or more bars."""
    frames = {}
    for ticker, frame in data.prices.items():
        frame = frame.loc[start:end]
        if len(frame) >= min_bars:
            frames[ticker] = frame
    return frames


def check_enough_stocks(n: int, params: dict, start, end) -> None:
    if n < params.get("top_k", 5):
        raise DataError(
            f"only {n} stocks have prices between {start.date()} and {end.date()}, fewer than "
            f"top_k={params.get('top_k', 5)}; lower top_k or widen the period"
        )


def build_cerebro(
    data: MarketData,
    start,
    end,
    alpha_for,
    params: dict,
    cash: float,
    commission: float,
    universe: Membership | None = None,
    lean: bool = True,
    make_feed=None,
    strategy=AlphaRankStrategy,
    min_bars: int = 2,
) -> bt.Cerebro:
    """A Cerebro fed only the backtest period (warm-up history goes to the alpha, not the feeds),
    the benchmark as a data named after it, and AlphaRankStrategy with `alpha_for(benchmark_data)`
    as its alpha. make_feed(frame_or_series) makes each feed (default ArrayData); `strategy` may be a
    subclass; a stock needs `min_bars` bars in the period to be added (papertrade.py uses these)."""
    make_feed = make_feed or (lambda frame: ArrayData(dataname=frame, lean=lean))
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    cerebro.setbroker(LeanBroker())  # same fills and values as BackBroker (tested), skips flat positions
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=commission)
    bench = data.benchmark.loc[start:end]
    if bench.empty:
        raise DataError(f"benchmark {data.benchmark_name!r} has no prices between {start.date()} and {end.date()}")
    bench_feed = cerebro.adddata(make_feed(bench), name=data.benchmark_name)
    frames = fed_frames(data, start, end, min_bars)
    for ticker, frame in frames.items():
        cerebro.adddata(make_feed(frame), name=ticker)
    check_enough_stocks(len(frames), params, start, end)
    cerebro.addstrategy(
        strategy, alpha=alpha_for(bench_feed), benchmark=data.benchmark_name, universe=universe, **params
    )
    return cerebro


def indicator_class(model) -> type:
    """LSTMAlpha for the LSTM (alone or walk-forward), AlphaIndicator for every other model."""
    name = getattr(model, "model_name", None) or getattr(model, "NAME", "lstm")
    return LSTMAlpha if name == "lstm" else AlphaIndicator


def model_alpha(model, data: MarketData, start):
    """The model's indicator factory for a Cerebro that starts at `start`: history before it warms up."""
    before = pd.Timestamp(start) - pd.Timedelta(days=1)

    def alpha_for(bench_feed):
        return indicator_class(model).factory(
            model,
            benchmark=bench_feed,
            history=data.prices.between(None, before),
            history_benchmark=data.benchmark.loc[:before],
        )

    return alpha_for


lstm_alpha = model_alpha  # the name the LSTM-only project used


def score_alpha(scores: pd.DataFrame):
    def alpha_for(_bench_feed):
        return ScoreAlpha.factory(scores)

    return alpha_for


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


# ----------------------------------------------------------------------------- one run
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


def resolve_out_dir(root, name: str) -> Path:
    """results/<name>, refusing a name that climbs out of the results folder."""
    root = Path(root).resolve()
    target = (root / name).resolve()
    if not name or root not in target.parents:
        raise ConfigError(f"run name {name!r} would write outside {root}; use a plain name such as 'default'")
    return target


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
    bt_cfg = config["backtest"]
    cerebro = build_cerebro(
        data,
        start,
        end,
        alpha_for,
        strategy_params(config),
        float(bt_cfg["cash"]),
        float(bt_cfg["commission"]),
        universe=opts.universe,
    )
    with atomic_dir(out_dir) as tmp:  # a run that fails leaves no half-written results folder
        add_analyzers(cerebro, config, data, start, end, tmp, opts)
        t = time.perf_counter()
        strategy = cerebro.run()[0]
        seconds["backtest"] = time.perf_counter() - t
        metrics, results, log, equity = write_reports(strategy, data, start, end, tmp, opts)
        write_json(
            tmp / "run.json",
            {
                "config": config,
                "period": [str(start.date()), str(end.date())],
                "model_path": str(model_path) if model_path else None,
                "model_reused": reused,
                "seconds": {k: round(v, 2) for k, v in seconds.items()},
                "rejected_orders": strategy.rejected_orders,
                "caveats": data.caveats,
                "scores": "precomputed file (--scores)"
                if opts.scores is not None
                else f"{indicator_class(model).__name__} indicator ({model_kind(config)} model)",
            },
        )
    alpha = strategy.analyzers.alpha_quality.get_analysis() if opts.scores is None else None
    return RunResult(
        out_dir, metrics, log, equity, results, model_path, reused, seconds, strategy.rejected_orders, alpha=alpha
    )


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


def write_reports(strategy, data: MarketData, start, end, folder: Path, opts: RunOptions) -> tuple:
    """metrics.json (with the equal-weight yardstick), analyzers.json, equity.png, the optional
    pyfolio and Backtrader plots, trade_returns.png: (metrics, analyzer results, trade log, equity)."""
    equity = strategy.analyzers.metrics.equity()
    # PortfolioMetrics wrote metrics.json and equity.csv; add the universe yardstick to the former
    metrics = {**strategy.analyzers.metrics.get_analysis(), **universe_baseline(data.prices, equity.index)}
    write_json(folder / "metrics.json", metrics)
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
    log = strategy.analyzers.tradelog.to_frame()
    if len(log):
        A.trade_histogram_png(log, folder / "trade_returns.png")
    return metrics, results, log, equity


def strategy_sharpe(config: dict, data: MarketData, scores: pd.DataFrame) -> float:
    """Sharpe of the configured strategy trading `scores` over the backtest period, without the
    reports: the vector engine (trade for trade Cerebro's, tests/test_vector.py)."""
    from strategies.vector import simulate_prepared

    start, end = backtest_period(config, data)
    bt_cfg = config["backtest"]
    result = simulate_prepared(
        vector_panel(data, scores, start, end),
        strategy_params(config),
        float(bt_cfg["cash"]),
        float(bt_cfg["commission"]),
    )
    sharpe = result.metrics.get("sharpe")
    return float("nan") if sharpe is None else float(sharpe)


# ----------------------------------------------------------------------------- the vector engine
def vector_panel(data: MarketData, scores: pd.DataFrame, start, end, universe: Membership | None = None):
    """The vector engine's shared arrays for a backtest of [start, end]: the stocks build_cerebro
    feeds, the benchmark's days in the calendar (it is a data of that Cerebro), metrics against
    the benchmark up to `end` (as PortfolioMetrics gets it)."""
    from strategies.vector import prepare

    panel = prepare(fed_frames(data, start, end), scores, start, end, universe=universe, benchmark=data.benchmark)
    if panel.benchmark is not None:
        panel.benchmark = data.benchmark.loc[:end]
    return panel


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
    from strategies.vector import simulate_prepared

    seconds = dict(seconds or {})
    start, end = backtest_period(config, data)
    params = strategy_params(config)
    t = time.perf_counter()
    panel = vector_panel(data, scores, start, end, universe)
    check_enough_stocks(len(panel.tickers), params, start, end)
    bt_cfg = config["backtest"]
    cash = float(bt_cfg["cash"])
    result = simulate_prepared(panel, params, cash, float(bt_cfg["commission"]))
    seconds["backtest"] = time.perf_counter() - t
    equity = result.equity
    metrics = {**result.metrics, **universe_baseline(data.prices, equity.index)}
    with atomic_dir(out_dir) as tmp:
        write_text(tmp / "trades.csv", A.trade_rows_csv(result.trade_rows))
        write_text(tmp / "equity.csv", A.equity_csv(equity))
        write_json(tmp / "metrics.json", metrics)
        returns = strategy_returns(equity.index, equity.to_numpy(), cash)
        if len(returns) >= 2:
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
                "engine": "vector",
                "model_path": str(model_path) if model_path else None,
                "model_reused": model_reused,
                "seconds": {k: round(v, 2) for k, v in seconds.items()},
                "rejected_orders": 0,
                "caveats": data.caveats,
                "scores": "the model's scores (models/score_cache) traded by strategies/vector.py",
            },
        )
    return RunResult(out_dir, metrics, result.trades, equity, {}, model_path, model_reused, seconds, 0)


def equal_weight_curve(prices: PricePanel, dates: pd.DatetimeIndex) -> pd.Series:
    """Growth of 1 in an equal-weight portfolio of every stock that trades each day, rebalanced
    daily, no costs, over `dates` (the first day is the start, as the strategy's cash)."""
    close = prices.close.reindex(dates)
    daily = close.pct_change(fill_method=None).mean(axis=1, skipna=True).fillna(0.0)
    daily.iloc[0] = 0.0
    return (1 + daily).cumprod()


def universe_baseline(prices: PricePanel, dates: pd.DatetimeIndex) -> dict:
    """The honest yardstick on a hand-picked universe: the equal-weight portfolio of its stocks.
    A strategy that only matches it has shown no skill at picking among these names, whatever
    it does against the index."""
    m = A.compute_metrics(equal_weight_curve(prices, dates), initial_value=1.0)
    return {
        "universe_ew_total_return": m["total_return"],
        "universe_ew_cagr": m["cagr"],
        "universe_ew_volatility": m["volatility"],
        "universe_ew_sharpe": m["sharpe"],
        "universe_ew_max_drawdown": m["max_drawdown"],
    }


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


# ----------------------------------------------------------------------------- model diagnostics
def model_diagnostics(model, data: MarketData, config: dict, scores: pd.DataFrame | None = None) -> dict:
    """Validation and test rank IC (t of non-overlapping days), the spread of p, and how often a
    raw 2p - 1 > 0.2 gate would fire: the numbers that say whether the signal is worth trading.


    `<period>_rank_ic` is the signal rank IC (forward return from the close the score was made at);
    `<period>_tradeable_rank_ic` measures the same horizon from the fill day (the next bar's close on
    close-only data), the return an order decided on the score can earn.

    The spread of p and the gate's rate are measured on the validation period (the period that
    may choose things); the test rank IC is an after-the-fact report. `scores`: the model's predict
    on data, when already computed."""
    from analyzers.ic import daily_ic, forward_excess_returns_from, ic_summary

    if scores is None:
        scores = model.predict(data.prices, data.benchmark, vix=data.vix)
    h = model.config.horizon
    fwd = {
        "": forward_excess_returns_from(data.prices.close, data.benchmark, h, lag=0),
        "tradeable_": forward_excess_returns_from(data.prices.close, data.benchmark, h, lag=1),
    }
    split = model.config.split
    out = {"horizon": h}
    for name in ("valid", "test"):
        s, e = split.period(name)
        for kind, f in fwd.items():
            ic = daily_ic(scores.loc[s:e], f.loc[s:e], method="spearman")
            out[f"{name}_{kind}rank_ic"] = ic_summary(ic, h)
    valid = scores.loc[split.valid_start : split.valid_end].to_numpy()
    valid = valid[np.isfinite(valid)]  # empty for a walk-forward model: it scores nothing before its first fold
    if len(valid):
        if model.config.label == "classification":
            p = (valid + 1) / 2
            out["valid_p_percentiles_1_99"] = [float(np.percentile(p, 1)), float(np.percentile(p, 99))]
        out["share_valid_score_above_0.2"] = float(np.mean(valid > 0.2))
    return out
