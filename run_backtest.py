#!/usr/bin/env python
"""The command line. With no arguments: the embedded data, the default preset, train the model (or
reuse the saved one whose data and configuration match), backtest the untouched test period in
Cerebro with the LSTM indicator, and write results/<run name>/.

    python run_backtest.py                              # main job
    python run_backtest.py --preset seed                # the seed project's set-up
    python run_backtest.py --scores my_scores.csv       # your own scores instead of the model
    python run_backtest.py --model lightgbm             # any model of the zoo behind the indicator
    python run_backtest.py zoo                          # every model x 5 seeds: results/zoo/zoo.md
    python run_backtest.py zoo --synthetic-planted      # the positive control (SYNTHETIC planted signal)
    python run_backtest.py trade-stats results/default/trades.csv
    python run_backtest.py download --tickers AAPL MSFT --start 2015-01-01
    python run_backtest.py paper init NAME --start 2021-01-04 / paper step NAME / paper status NAME
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.cli import add_shared_options
from core.dates import day_argument
from core.errors import AlphaPluginError, ConfigError

ROOT = Path(__file__).resolve().parent

MODEL_NAMES = ("lstm", "logistic", "lightgbm", "mlp", "momentum", "random")  # models.registry.MODEL_NAMES


def main_parser() -> argparse.ArgumentParser:
    """The main job's options. Long because: one add_argument per option, with its help text."""
    p = argparse.ArgumentParser(
        prog="run_backtest.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Backtest the LSTM cross-sectional alpha with AlphaRankStrategy in Backtrader.",
        epilog="Other commands: 'run_backtest.py zoo --help', 'run_backtest.py trade-stats FILE.csv', "
        "'run_backtest.py download --help', 'run_backtest.py paper --help'.",
    )
    p.add_argument(
        "--preset",
        choices=["default", "seed"],
        default="default",
        help="default: leak-free classifier, 5 bp costs, cross-sectional rank. seed: the seed project's "
        "model and rules (regression score, raw thresholds, 7-bar reviews, no costs)",
    )
    p.add_argument(
        "--config", metavar="FILE.toml", help="a TOML file overriding preset keys (it may name its own 'base' preset)"
    )
    p.add_argument(
        "--cross-section",
        choices=["rank", "none"],
        help="rank: each day's scores become percentile ranks in [-1, 1] before the thresholds; "
        "none: thresholds apply to the scores as given",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="a folder of CSV files, one per ticker (Date,Open,High,Low,Close,Volume or Date,Close)",
    )
    p.add_argument("--benchmark", metavar="TICKER", help="the benchmark's ticker in --data (or in the yfinance cache)")
    p.add_argument(
        "--source",
        choices=["embedded", "csv", "yfinance"],
        help="where prices come from (default: embedded; --data implies csv; yfinance reads the download cache)",
    )
    p.add_argument(
        "--scores",
        metavar="FILE.csv",
        help="a wide CSV of scores in [-1, 1] (Date column + one column per ticker) used instead of the "
        "model; taken as given (cross-section none) unless --cross-section rank",
    )
    p.add_argument(
        "--universe",
        metavar="FILE.csv",
        help="point-in-time membership (ticker,start,end): a stock is bought only while a member",
    )
    p.add_argument(
        "--split",
        metavar="TRAIN_END,VALID_END",
        help="train up to TRAIN_END, validate up to VALID_END, test from the day after to the data's end "
        "(default: the embedded data's preset 1996-2012/2013-2016/2017-2022; any other data "
        "'auto', 60/20/20 %% of its dates)",
    )
    p.add_argument("--start", type=day_argument("--start"), help="first backtest day (default: the model's test_start)")
    p.add_argument("--end", type=day_argument("--end"), help="last backtest day (default: the model's test_end)")
    p.add_argument("--cash", type=float, help="starting cash (default 100000)")
    p.add_argument(
        "--commission", type=float, help="commission per side as a fraction (default 0.0005 = 5 bp; seed preset 0)"
    )
    p.add_argument(
        "--slippage",
        type=float,
        help="slippage per side as a fraction: buys fill at open x (1 + s), sells at open x (1 - s) (default 0)",
    )
    p.add_argument(
        "--max-volume-pct",
        type=float,
        help="cap each order at this fraction of the stock's volume on the decision day; the rest of a sale "
        "is sold at the next bar (default 0 = no cap; needs data with volume)",
    )
    add_shared_options(p, "--out")
    p.add_argument("--name", help="run name: results go to <out>/<name> (default: the preset or config name)")
    p.add_argument(
        "--model",
        choices=MODEL_NAMES,
        dest="model_kind",
        help="the zoo model behind the indicator (default lstm); see docs/models.md",
    )
    p.add_argument("--seed", type=int, help="the model's random seed (a different seed trains a different model)")
    p.add_argument("--retrain", action="store_true", help="train even when a matching saved model exists")
    p.add_argument(
        "--analyzer",
        action="append",
        default=[],
        metavar="DOTTED",
        help="add any Backtrader analyzer, e.g. backtrader.analyzers.SQN (repeatable); results in analyzers.json",
    )
    p.add_argument("--pyfolio", action="store_true", help="also write the pyfolio full tear sheet as PNGs")
    p.add_argument(
        "--walk-forward",
        action="store_true",
        help="refit the model every 12 months over the test period (expanding window; see [walk_forward] "
        "in configs/default.toml); each score comes from the fold trained before its date. "
        "With --workers N the folds train in N processes, with --ray as Ray tasks",
    )
    p.add_argument(
        "--importance",
        action="store_true",
        help="also write permutation importance of each feature on the validation period (importance.csv/png)",
    )
    p.add_argument(
        "--bt-plot", action="store_true", help="also save Backtrader's own plot (traded stocks only) as bt_plot.png"
    )
    add_shared_options(p, "--model-store", "--no-progress")
    p.add_argument(
        "--engine",
        choices=["cerebro", "vector"],
        help="cerebro: Backtrader with the LSTM indicator (the main job's default); vector: the compiled "
        "simulator of the same rules on the model's cached scores (a sweep's default). See docs/engines.md",
    )
    sweep = p.add_argument_group("variant sweeps (see configs/variants.toml)")
    sweep.add_argument(
        "--variants",
        metavar="FILE.toml",
        help="run every strategy variant of FILE (a grid or a list) on the selection and holdout "
        "periods, ranked on the selection only; results/<FILE stem>/ gets comparison.csv, "
        "comparison.md, selection.json, selection.png (docs/selection.md)",
    )
    sweep.add_argument(
        "--confirm",
        type=int,
        default=3,
        metavar="K",
        help="vector sweeps: replay the best K variants (by selection rank) in Cerebro on the holdout "
        "with every report and fail if their metrics differ from the vector engine's (default 3)",
    )
    sweep.add_argument(
        "--selection", metavar="START,END", help="the period that ranks the variants (default 2013-01-01,2016-12-31)"
    )
    sweep.add_argument(
        "--holdout",
        metavar="START,END",
        help="the period that chooses nothing, reported after the fact (default 2017-01-01,2022-12-31)",
    )
    add_shared_options(sweep, "--ray", "--workers")
    sweep.add_argument("--ray-address", metavar="ADDRESS", help="join this Ray cluster instead (implies --ray)")
    return p


def config_from_args(args) -> dict:
    from configs import load_config

    overrides: dict = {}

    def put(section, key, value):
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    put("strategy", "cross_section", args.cross_section)
    if args.scores and args.cross_section is None:
        put("strategy", "cross_section", "none")  # scores from a file are taken as given
    source = args.source or ("csv" if args.data else None)
    put("data", "source", source)
    put("data", "dir", args.data)
    put("data", "benchmark", args.benchmark)
    put("backtest", "start", args.start)
    put("backtest", "end", args.end)
    put("backtest", "cash", args.cash)
    put("backtest", "commission", args.commission)
    put("backtest", "slippage", args.slippage)
    put("backtest", "max_volume_pct", args.max_volume_pct)
    put("model", "seed", args.seed)
    put("model", "kind", getattr(args, "model_kind", None))
    if args.walk_forward:
        put("walk_forward", "enabled", True)
        put("walk_forward", "workers", getattr(args, "workers", None))
    config = load_config(args.preset, args.config, overrides)
    if getattr(args, "split", None):
        from models.dataset import split_from_ends

        ends = args.split.split(",")
        if len(ends) != 2:
            raise ConfigError(
                f"--split {args.split}: give two dates TRAIN_END,VALID_END, e.g. --split 2012-12-31,2016-12-31"
            )
        current = config["model"]["split"]
        config["model"]["split"] = split_from_ends(
            *ends, train_start=current.get("train_start", "") if isinstance(current, dict) else ""
        )
        config["split_rule"] = f"--split {args.split}"
    if args.commission is not None and not (0 <= args.commission < 0.1):
        raise ConfigError(f"--commission {args.commission} is not a fraction in [0, 0.1); 5 bp is 0.0005")
    if args.slippage is not None and not (0 <= args.slippage < 0.1):
        raise ConfigError(f"--slippage {args.slippage} is not a fraction in [0, 0.1); 5 bp is 0.0005")
    if args.max_volume_pct is not None and not (0 <= args.max_volume_pct <= 1):
        raise ConfigError(f"--max-volume-pct {args.max_volume_pct} is not a fraction in [0, 1] (0 = no cap)")
    if args.cash is not None and args.cash <= 0:
        raise ConfigError(f"--cash {args.cash} must be positive")
    return config


def run_name(args, config) -> str:
    if args.name:
        return args.name
    name = config.get("name", args.preset) if args.config is None else Path(args.config).stem
    if args.scores:
        name += "-scores"
    if getattr(args, "model_kind", None) and args.model_kind != "lstm":
        name += f"-{args.model_kind}"
    if args.walk_forward:
        name += "-wf"
    if args.cross_section:
        name += f"-cs-{args.cross_section}"
    return name


def fmt_pct(x):
    return "n/a" if x is None else f"{100 * x:+.1f}%"


def fmt_share(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def fmt_num(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f}"


def fmt_ic(summary: dict) -> str:
    """'mean ± se (t ..; one day in h: mean, t ..)' of an ic_summary: se and t Newey-West over the days
    of the mean, then the non-overlapping days' own mean and t (analyzers/ic.py)."""
    text = f"{fmt_num(summary.get('mean'), 4)} ± {fmt_num(summary.get('se'), 4)} (t {fmt_num(summary.get('t_stat'))}"
    if summary.get("hac_lags"):  # h > 1: the every-h-th-day sample differs from all days
        h, own = summary["hac_lags"] + 1, fmt_num(summary.get("mean_nonoverlap"), 4)
        text += f"; one day in {h}: {own}, t {fmt_num(summary.get('t_stat_nonoverlap'))}"
    return text + ")"


def print_summary(result, data, config, diagnostics=None) -> None:
    m = result.metrics
    print()
    print(f"Results in {result.out_dir}")
    rows = [
        ("total return", fmt_pct, "total_return"),
        ("CAGR", fmt_pct, "cagr"),
        ("volatility", fmt_share, "volatility"),
        ("Sharpe", fmt_num, "sharpe"),
        ("max drawdown", fmt_pct, "max_drawdown"),
    ]
    print(f"  {'':14}{'strategy':>12}{data.benchmark_name:>12}{'equal-weight':>14}")
    for label, fmt, key in rows:
        print(
            f"  {label:14}{fmt(m.get(key)):>12}{fmt(m.get('benchmark_' + key)):>12}"
            f"{fmt(m.get('universe_ew_' + key)):>14}"
        )
    print("  (equal-weight = every stock of the universe, rebalanced daily, no costs: the yardstick for stock picking)")
    print(
        f"  probabilistic Sharpe ratio {fmt_num(m.get('psr'))}: the probability that the strategy's true Sharpe "
        "is above 0 (Bailey & López de Prado; counts the days, skew and fat tails)"
    )
    print(
        f"  period {m.get('start')} .. {m.get('end')}, final value {m.get('final_value', 0):,.0f}, "
        f"trades {m.get('n_trades')}, win rate {fmt_share(m.get('win_rate'))}, "
        f"days invested {fmt_share(m.get('exposure'))}, turnover {fmt_num(m.get('turnover'))}/yr, "
        f"rejected orders {result.rejected_orders}"
    )
    if getattr(result, "costs", None) is not None:
        print(f"  {result.costs.summary()}")
    if getattr(result, "cost_sensitivity", None):
        from strategies.cost_sensitivity import summary_line

        block = result.cost_sensitivity
        print(f"  {summary_line(block['cost_sensitivity'], block['breakeven_cost'], m.get('turnover'))}")
    if result.alpha:
        ic = result.alpha.get("horizons", {}).get("10", result.alpha.get("horizons", {}).get(10, {}))
        rank = ic.get("rank_ic", {}) if isinstance(ic, dict) else {}
        trade = ic.get("tradeable_rank_ic", {}) if isinstance(ic, dict) else {}
        if rank:
            print(
                f"  alpha in the backtest (after the fact), 10-day: tradeable rank IC {fmt_ic(trade)}; "
                f"signal rank IC {fmt_ic(rank)}"
            )
    if diagnostics:
        print(
            f"  model rank IC, {diagnostics.get('horizon', 10)}-day (tradeable = from the fill day; "
            "± Newey-West standard error and t over all days; one day in h: that sample's own mean and t):"
        )
        for name in ("valid", "test"):
            d = diagnostics[f"{name}_rank_ic"]
            if not d.get("n_days"):  # a walk-forward model scores no day before its first fold
                continue
            trade = diagnostics.get(f"{name}_tradeable_rank_ic", {})
            print(
                f"  model {name:5} tradeable {fmt_ic(trade)}  signal {fmt_ic(d)}  "
                f"ICIR {fmt_num(d.get('icir'), 3)}  days {d.get('n_days')}"
                + ("  (test period: reported after the fact)" if name == "test" else "")
            )
        if "valid_p_percentiles_1_99" in diagnostics:
            lo, hi = diagnostics["valid_p_percentiles_1_99"]
            print(
                f"  model p, 1st-99th percentile on validation: {lo:.3f} .. {hi:.3f}; "
                f"validation stock-days with 2p-1 > 0.2: {100 * diagnostics['share_valid_score_above_0.2']:.2f}%"
            )
    for note in m.get("notes", []):  # a run that did not trade: why, and what it skipped
        print(f"  Note: {note}")
    for caveat in data.caveats:
        print(f"  Caveat: {caveat}")
    # run.json keeps each time to 2 decimals; print from that value, so 21.954 s reads 21.9 s in
    # both places instead of 22.0 s here and 21.95 s there
    print(
        f"  Model: {result.model_path or 'none (scores from file)'}"
        f"{' (reused)' if result.model_reused else ''}; "
        f"time: " + ", ".join(f"{k} {round(v, 2):.1f}s" for k, v in result.seconds.items())
    )


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "trade-stats":
        return trade_stats_command(argv[1:])
    if argv and argv[0] == "download":
        return download_command(argv[1:])
    if argv and argv[0] == "paper":
        from jobs import paper

        return paper.main(argv[1:])
    if argv and argv[0] == "zoo":
        return zoo_command(argv[1:])
    args = main_parser().parse_args(argv)
    try:
        return run_main(args)
    except AlphaPluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def check_main_args(args) -> None:
    """Refuse option combinations the main job cannot honour, before any data is read or model trained."""
    if getattr(args, "selection", None) or getattr(args, "holdout", None):
        raise ConfigError(
            "--selection and --holdout set a sweep's periods: add --variants FILE.toml "
            "(a single run's period is --start/--end)"
        )
    parallel = getattr(args, "ray", False) or getattr(args, "ray_address", None) or getattr(args, "workers", None)
    if parallel and not args.walk_forward:
        raise ConfigError(
            "--ray, --ray-address and --workers run a sweep (add --variants FILE.toml) or the folds of --walk-forward"
        )
    if getattr(args, "engine", None) == "vector":
        flags = (("--pyfolio", args.pyfolio), ("--bt-plot", args.bt_plot), ("--analyzer", args.analyzer))
        unsupported = [flag for flag, on in (*flags, ("--importance", args.importance)) if on]
        if unsupported:
            raise ConfigError(f"{', '.join(unsupported)} need Backtrader's objects: run them with --engine cerebro")


def run_main(args) -> int:
    """The main job (jobs/backtest.py main_job) with the options of the command line, then its summary."""
    if getattr(args, "variants", None):
        return sweep_command(args)
    check_main_args(args)
    if args.ray_address:
        import ray

        ray.init(address=args.ray_address)
    from feeds import Membership
    from jobs.backtest import RunOptions, main_job
    from jobs.store import MODEL_STORE, resolve_out_dir
    from strategies import load_scores_csv

    t0 = time.perf_counter()
    config = config_from_args(args)
    out_dir = resolve_out_dir(args.out, run_name(args, config))
    opts = RunOptions(
        scores=load_scores_csv(args.scores) if args.scores else None,
        retrain=args.retrain,
        progress=not args.no_progress,
        universe=Membership.from_csv(args.universe) if args.universe else None,
        extra_analyzers=tuple(args.analyzer),
        pyfolio=args.pyfolio,
        bt_plot=args.bt_plot,
    )
    result, data, config, diagnostics = main_job(
        config,
        out_dir,
        opts,
        engine=getattr(args, "engine", None) or "cerebro",
        store=Path(args.model_store) if args.model_store else MODEL_STORE,
        ray=bool(args.ray or args.ray_address),
        importance=args.importance,
    )
    print_summary(result, data, config, diagnostics)
    print(f"  wall time {time.perf_counter() - t0:.1f}s")
    return 0


def zoo_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_backtest.py zoo",
        description="Fit every model of the zoo (same features, labels and split) over "
        "several seeds; write zoo.csv, zoo.md and zoo.png (docs/models.md).",
    )
    p.add_argument("--models", metavar="A,B,...", help=f"models to run (default all: {','.join(MODEL_NAMES)})")
    p.add_argument("--seeds", type=int, default=5, help="seeds per model (default 5; a deterministic model runs once)")
    add_shared_options(p, "--workers", "--ray")
    p.add_argument("--preset", choices=["default", "seed"], default="default")
    p.add_argument("--config", metavar="FILE.toml", help="a TOML file overriding preset keys")
    p.add_argument("--data", metavar="DIR", help="a folder of CSV files, one per ticker (as the main job)")
    p.add_argument("--benchmark", metavar="TICKER", help="the benchmark's ticker in --data")
    add_shared_options(p, "--out")
    p.add_argument("--name", default=None, help="results go to <out>/<name> (default zoo; zoo-planted)")
    g = p.add_argument_group("positive control (docs/models.md)")
    g.add_argument(
        "--synthetic-planted",
        action="store_true",
        help="run on a SYNTHETIC universe with a planted 20-day reversal, split auto (60/20/20 %%)",
    )
    g.add_argument("--planted-ic", type=float, help=f"the planted rank IC (default {PLANTED_DEFAULTS['planted_ic']})")
    g.add_argument("--stocks", type=int, help=f"synthetic stocks (default {PLANTED_DEFAULTS['stocks']})")
    g.add_argument("--days", type=int, help=f"synthetic business days (default {PLANTED_DEFAULTS['days']})")
    g.add_argument("--data-seed", type=int, help="the synthetic universe's seed (default 0)")
    add_shared_options(p, "--model-store", "--no-progress")
    return p


def zoo_command(argv) -> int:
    args = zoo_parser().parse_args(argv)
    args.workers = ZOO_WORKERS if args.workers is None else args.workers
    try:
        if args.workers < 1:
            raise ConfigError(f"--workers {args.workers}: give at least 1 (1 = in this process)")
        from configs import load_config
        from jobs import zoo
        from jobs.store import MODEL_STORE, resolve_out_dir

        overrides = {"data": {"source": "csv", "dir": args.data, "benchmark": args.benchmark}} if args.data else {}
        planted = planted_options(args)
        if planted:
            overrides = {"model": {"split": "auto"}}
        config = load_config(args.preset, args.config, overrides)
        models = zoo.parse_models(args.models)
        out_dir = resolve_out_dir(args.out, args.name or ("zoo-planted" if planted else "zoo"))
        data, config, name = zoo.zoo_data(config, planted, args.data)
        tasks, notes = zoo.plan_tasks(models, args.seeds)
        for note in notes:
            print(f"  {note}")
        print(f"zoo: {len(tasks)} fits ({', '.join(models)}), {'Ray' if args.ray else f'{args.workers} process(es)'}")
        store = Path(args.model_store) if args.model_store else MODEL_STORE
        table, info = zoo.run_zoo(
            config,
            data,
            out_dir,
            models,
            args.seeds,
            args.workers,
            args.ray,
            store,
            progress=not args.no_progress,
            data_name=name,
            planted=planted,
        )
    except AlphaPluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print((out_dir / "zoo.md").read_text())
    print(
        f"Results in {out_dir} (zoo.csv, zoo.md, zoo.png); {info['reused']} of {len(table)} fits reused from "
        f"{store}; wall time {info['seconds']:.1f}s"
    )
    return 0


ZOO_WORKERS = 2  # the zoo's processes without --workers
PLANTED_DEFAULTS = {"planted_ic": 0.10, "stocks": 150, "days": 1500, "data_seed": 0}  # issue 11: >= 100 stocks


def planted_options(args) -> dict | None:
    """The positive control's options (zoo --synthetic-planted), checked; None without the flag."""
    given = {k: getattr(args, k) for k in PLANTED_DEFAULTS if getattr(args, k) is not None}
    if not args.synthetic_planted:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ConfigError(f"{flags} only apply with --synthetic-planted")
        return None
    if args.data:
        raise ConfigError("--synthetic-planted makes its own data (and an auto split): drop --data")
    o = {**PLANTED_DEFAULTS, **given}
    if not 0 < o["planted_ic"] < 1:
        raise ConfigError(f"--planted-ic {o['planted_ic']!r}: give a rank IC between 0 and 1 (e.g. 0.10)")
    if o["stocks"] < 20 or o["days"] < 600:
        raise ConfigError(
            f"--stocks {o['stocks']} --days {o['days']}: give at least 20 stocks (100+ for a test "
            "rank IC with a usable standard error) and 600 days (the features warm up over 229)"
        )
    from feeds.synthetic import PLANTED_FEATURE

    return {**o, "feature": PLANTED_FEATURE}


def sweep_overrides(args) -> dict:
    """The run_backtest.py options that apply to every variant, as config overrides."""
    from jobs import sweep

    overrides: dict = {}

    def put(section, key, value):
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    put("strategy", "cross_section", getattr(args, "cross_section", None))
    source = getattr(args, "source", None) or ("csv" if getattr(args, "data", None) else None)
    put("data", "source", source)
    put("data", "dir", getattr(args, "data", None))
    put("data", "benchmark", getattr(args, "benchmark", None))
    for key in ("start", "end", "cash", "commission", "slippage", "max_volume_pct"):
        put("backtest", key, getattr(args, key, None))
    put("model", "seed", getattr(args, "seed", None))
    for option in ("selection", "holdout"):
        if getattr(args, option, None):
            overrides.setdefault("selection", {}).update(sweep.parse_period(getattr(args, option), f"--{option}"))
    return overrides


def sweep_command(args) -> int:
    """`run_backtest.py --variants FILE [--ray [--ray-address A]] [--workers N]`."""
    from jobs import sweep

    if getattr(args, "config", None):
        raise ConfigError("--variants FILE is the config of a sweep (it names its base); drop --config")
    if getattr(args, "scores", None):
        raise ConfigError("--variants runs the model's cached scores; --scores cannot be combined with it")
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: give at least 1")
    use_ray = bool(getattr(args, "ray", False) or getattr(args, "ray_address", None))
    if workers is None and not use_ray:  # by default every usable CPU (the folds' training does the same)
        from core.pool import usable_cpus

        workers = usable_cpus()
    mode = "ray" if use_ray else ("processes" if workers and workers > 1 else "sequential")
    quiet = getattr(args, "no_progress", False)
    store = Path(args.model_store) if getattr(args, "model_store", None) else None
    universe = None
    if getattr(args, "universe", None):
        from feeds import Membership

        universe = Membership.from_csv(args.universe)
    engine = getattr(args, "engine", None) or "vector"
    result = sweep.run_sweep(
        args.variants,
        out_root=args.out,
        name=getattr(args, "name", None),
        preset=args.preset,
        overrides=sweep_overrides(args),
        mode=mode,
        workers=workers or 2,
        engine=engine,
        confirm=getattr(args, "confirm", 3),
        ray_address=getattr(args, "ray_address", None),
        model_for=sweep.default_model_for(retrain=getattr(args, "retrain", False), progress=not quiet, store=store),
        progress=print,
        universe=universe,
        extra_analyzers=getattr(args, "analyzer", None) or (),
    )
    sweep.print_comparison(result)
    return 0 if any(r["status"] == "ok" for r in result.rows) else 1


def trade_stats_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_backtest.py trade-stats",
        description="Statistics of the closed trades in a trade log (ours or the seed's).",
    )
    p.add_argument(
        "file", help="a trades.csv with the seed's columns (Date, Action, Ticker, Price, Shares, ..., PnL_Pct, Days)"
    )
    p.add_argument("--plots", metavar="DIR", help="also write trade_returns.png and realized_pnl.png into DIR")
    return p


def trade_stats_command(argv) -> int:
    from analyzers import read_trade_log, realized_pnl_png, trade_histogram_png, trade_stats

    args = trade_stats_parser().parse_args(argv)
    try:
        log = read_trade_log(args.file)
        stats = trade_stats(log)
    except AlphaPluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in stats.items():
        print(f"  {key:24} {value:.4f}" if isinstance(value, float) else f"  {key:24} {value}")
    if args.plots:
        out = Path(args.plots)
        trade_histogram_png(log, out / "trade_returns.png")
        realized_pnl_png(log, out / "realized_pnl.png")
        print(f"  plots in {out}")
    return 0


def download_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_backtest.py download",
        description="Fetch adjusted daily OHLCV with yfinance into a local Parquet cache; "
        "later runs fetch only missing dates. Then: run_backtest.py --source yfinance",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--tickers", nargs="+", help="tickers to fetch")
    who.add_argument(
        "--universe", choices=["sp500"], help="the shipped S&P 500 constituent list (today's members: survivors!)"
    )
    p.add_argument("--start", type=day_argument("--start"), default="2010-01-01")
    p.add_argument("--end", type=day_argument("--end"), default=None)
    p.add_argument("--benchmark", default="SPY")
    p.add_argument("--vix", action="store_true", help="also fetch ^VIX (the vix feature)")
    p.add_argument("--cache", default=str(ROOT / "cache" / "yfinance"))
    p.add_argument(
        "--retries", type=int, default=3, help="extra attempts for a ticker whose answer is empty or partial"
    )
    p.add_argument("--backoff", type=float, default=1.0, help="seconds before the first retry; doubles each time")
    add_shared_options(p, "--no-progress")
    return p


def command_parsers() -> dict:
    """Every command's parser, by name ("main" = the main job and sweeps, with no command word);
    `paper` holds its subcommands (init, step, status)."""
    from jobs import paper

    return {
        "main": main_parser(),
        "zoo": zoo_parser(),
        "download": download_parser(),
        "trade-stats": trade_stats_parser(),
        "paper": paper.parser(),
    }


def download_command(argv) -> int:
    from feeds import download_to_cache, load_constituents

    args = download_parser().parse_args(argv)
    tickers = args.tickers
    if args.universe == "sp500":
        tickers, as_of = load_constituents()
        print(f"S&P 500 members as of {as_of}: {len(tickers)} tickers (survivorship-biased for past periods)")
    try:
        report = download_to_cache(
            tickers,
            args.start,
            args.end,
            cache_dir=args.cache,
            benchmark=args.benchmark,
            vix=args.vix,
            retries=args.retries,
            backoff=args.backoff,
            progress=not args.no_progress,
        )
    except AlphaPluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
