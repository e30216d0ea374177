"""The model zoo: does the LSTM earn its place against simpler models and against luck?

    python run_backtest.py zoo                          # all models, 5 seeds, 2 processes
    python run_backtest.py zoo --models lstm,logistic --seeds 2 --workers 1
    python run_backtest.py zoo --ray

Every model of models.registry is fitted with the same features, labels, windows and split as the
default preset (the config's [model] table), once per seed (once only when it is deterministic),
through jobs.store.get_model: the artifacts land in the model store, so the LSTM's seed-0 row is the
main job's model, same artifact, same numbers, and a rerun reuses every fit.

Each fit gives one row of zoo.csv (ZOO_COLUMNS): the rank IC (Spearman, signal: from the close
the score was made at) on validation and test with its Newey-West t over the same days, the tradeable
rank IC (from the fill day, lag 1), the test quintile spread (top minus bottom fifth's mean
10-day excess return), the default strategy's test Sharpe on the model's scores, and the fit time.
zoo.md summarises per model (mean ± sd over seeds, standard errors), compares the LSTM with the
best baseline, chosen on validation rank IC, and ends in one verdict sentence; zoo.png shows
the test rank IC per model with the seeds as dots.

The runner takes a MarketData (prices panel, benchmark) and a config whose split fits it, so a
synthetic universe with a planted signal runs through the same code as the embedded data.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analyzers.significance import mean_se_t
from core.errors import ConfigError
from jobs.engines import strategy_sharpe
from jobs.market import MarketData, load_data, planted_data
from jobs.periods import describe_split, resolve_split
from jobs.store import MODEL_STORE, get_model, model_diagnostics
from models.registry import MODEL_NAMES, model_class

__all__ = [
    "DEFAULT_SEEDS",
    "MUST_RECOVER",
    "RECOVERY_BAR",
    "ZOO_COLUMNS",
    "ZooTask",
    "evaluate_scores",
    "lstm_versus_best_baseline",
    "parse_models",
    "plan_tasks",
    "planted_feature_ic",
    "positive_control",
    "positive_control_markdown",
    "positive_control_verdict",
    "run_task",
    "run_tasks",
    "run_zoo",
    "summarise",
    "task_config",
    "verdict",
    "write_zoo",
    "zoo_data",
    "zoo_markdown",
    "zoo_png",
]

ZOO_COLUMNS = [
    "model",
    "seed",
    "valid_rank_ic",
    "test_rank_ic",
    "test_rank_ic_t",
    "test_tradeable_rank_ic",
    "test_quintile_spread",
    "test_sharpe",
    "fit_seconds",
]
DEFAULT_SEEDS = 5


# ---------------------------------------------------------------------- the plan (pure)
@dataclass(frozen=True)
class ZooTask:
    model: str
    seed: int


def parse_models(text: str | None) -> list[str]:
    if not text:
        return list(MODEL_NAMES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown or not names:
        raise ConfigError(f"--models {text!r}: unknown {unknown}; choose from {','.join(MODEL_NAMES)}")
    return list(dict.fromkeys(names))


def plan_tasks(models: list[str], seeds: int) -> tuple[list[ZooTask], list[str]]:
    """(tasks, notes): every seed of a seed-dependent model, seed 0 only of a deterministic one.
    The LSTM's tasks come first: they are the longest, so a pool finishes sooner."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds {seeds!r}: give a whole number >= 1")
    tasks, notes = [], []
    for name in sorted(models, key=lambda n: n != "lstm"):
        if model_class(name).SEED_DEPENDENT:
            tasks += [ZooTask(name, s) for s in range(seeds)]
        else:
            tasks.append(ZooTask(name, 0))
            if seeds > 1:
                notes.append(f"{name} is deterministic (the same fit whatever the seed): it runs once")
    return tasks, notes


def task_config(config: dict, task: ZooTask) -> dict:
    import copy

    out = copy.deepcopy(config)
    out["model"]["kind"] = task.model
    out["model"]["seed"] = task.seed
    out["walk_forward"] = {**out.get("walk_forward", {}), "enabled": False}
    return out


# ---------------------------------------------------------------------- one row
def evaluate_scores(model, data: MarketData, config: dict, scores: pd.DataFrame) -> dict:
    """The zoo's numbers of one fitted model (everything but model, seed and fit time), plus the test
    rank IC's standard error (zoo.md's s.e. (days); not a zoo.csv column). Its t and se are the
    Newey-West ones of ic_summary, over the test days of its mean."""
    from analyzers.ic import daily_ic, forward_excess_returns_from, ic_summary, quintile_returns

    diag = model_diagnostics(model, data, config, scores=scores)
    split, h = model.config.split, model.config.horizon
    test = scores.loc[split.test_start : split.test_end]
    tradeable = forward_excess_returns_from(data.prices.close, data.benchmark, h, lag=1)
    signal = forward_excess_returns_from(data.prices.close, data.benchmark, h, lag=0)
    traded_ic = ic_summary(daily_ic(test, tradeable.loc[test.index], method="spearman"), h)
    quintiles = quintile_returns(test, signal.loc[test.index])
    test_ic = diag["test_rank_ic"]
    return {
        "valid_rank_ic": diag["valid_rank_ic"]["mean"],
        "test_rank_ic": test_ic["mean"],
        "test_rank_ic_t": test_ic["t_stat"],
        "test_rank_ic_se": test_ic["se"],
        "test_tradeable_rank_ic": traded_ic["mean"],
        "test_quintile_spread": float(quintiles.iloc[-1] - quintiles.iloc[0]),
        "test_sharpe": strategy_sharpe(config, data, scores),
    }


def run_task(task: ZooTask, config: dict, data: MarketData, store: Path) -> dict:
    """Fit (or reuse) one model of the zoo and measure it: one row of zoo.csv, plus what it chose."""
    cfg = task_config(config, task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropped close-only features: the main job reports them
        model, path, reused = get_model(cfg, data, progress=False, store=store)
        scores = model.predict(data.prices, data.benchmark, vix=data.vix)
        row = {
            "model": task.model,
            "seed": task.seed,
            **evaluate_scores(model, data, cfg, scores),
            "fit_seconds": float(model.report_.seconds),
        }
    return {"row": row, "path": str(path), "reused": reused, "chosen": dict(model.report_.extra)}


_WORKER: dict = {}


def _init_worker(config, data, store):
    import torch

    torch.set_num_threads(1)
    _WORKER.update(config=config, data=data, store=store)


def _run_in_worker(task: ZooTask) -> dict:
    return run_task(task, _WORKER["config"], _WORKER["data"], _WORKER["store"])


def _run_in_ray(task: ZooTask, config, data, store) -> dict:
    return run_task(task, config, data, store)


def run_tasks(
    tasks: list[ZooTask],
    config: dict,
    data: MarketData,
    store: Path,
    workers: int = 2,
    ray: bool = False,
    progress: bool = True,
) -> list[dict]:
    """Every task, in `workers` spawned processes (1: in this process) or as Ray tasks."""
    from models.walkforward import progress_bar, thread_env, worker_pythonpath

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers {workers!r}: give a whole number >= 1")
    if ray:
        from core.pool import ray_session

        with ray_session(workers) as ray_module:
            remote = ray_module.remote(num_cpus=1)(_run_in_ray).options(
                runtime_env={"env_vars": {"PYTHONPATH": worker_pythonpath(), "OMP_NUM_THREADS": "1"}}
            )
            shared = [ray_module.put(config), ray_module.put(data), ray_module.put(store)]
            refs = [remote.remote(t, *shared) for t in tasks]
            return [ray_module.get(r) for r in progress_bar(refs, progress)]
    if workers == 1 or len(tasks) == 1:
        return [run_task(t, config, data, store) for t in progress_bar(tasks, progress)]
    from core.pool import process_pool

    with thread_env(1), process_pool(workers, len(tasks), "spawn", _init_worker, (config, data, store)) as pool:
        futures = [pool.submit(_run_in_worker, t) for t in tasks]
        return [f.result() for f in progress_bar(futures, progress)]


# ---------------------------------------------------------------------- the summary (pure)
def _mean_sd_se(x: pd.Series) -> tuple[float, float, float]:
    """Mean over seeds, its sd and its standard error (seeds are independent fits: no lags)."""
    x = x.dropna()
    sd = float(x.std(ddof=1)) if len(x) > 1 else float("nan")
    m = mean_se_t(x)
    return m.mean, sd, m.se


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model: runs, mean ± sd (and s.e. over seeds) of each column, and the test rank
    IC's standard error over the test days of one run (Newey-West, averaged over its runs) and the
    seed mean's t against it."""
    rows = []
    for name, g in table.groupby("model", sort=False):
        row = {"model": name, "runs": len(g)}
        for col in ZOO_COLUMNS[2:]:
            if col == "test_rank_ic_t":
                continue
            row[col], row[f"{col}_sd"], row[f"{col}_se"] = _mean_sd_se(g[col])
        row["test_rank_ic_se_days"] = se_days = float(g["test_rank_ic_se"].mean())
        # the seed mean over one run's test-day noise: the t of the mean beside it, not a mean of t's
        row["test_rank_ic_t"] = row["test_rank_ic"] / se_days if se_days > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def lstm_versus_best_baseline(table: pd.DataFrame) -> dict | None:
    """The baseline with the best mean validation rank IC (never chosen on test), and the LSTM's
    test rank IC minus it: paired by seed when both have the seed, else against the baseline's
    single run; t = mean / (sd / sqrt(n)) over seeds (analyzers.significance.mean_se_t)."""
    if "lstm" not in set(table["model"]):
        return None
    others = table[table["model"] != "lstm"]
    if others.empty:
        return None
    best = others.groupby("model")["valid_rank_ic"].mean().idxmax()
    lstm = table[table["model"] == "lstm"].set_index("seed")["test_rank_ic"]
    base = table[table["model"] == best].set_index("seed")["test_rank_ic"]
    paired = len(base) > 1
    diff = (lstm - base).dropna() if paired else lstm - float(base.iloc[0])
    mean, sd, _ = _mean_sd_se(diff)
    return {
        "baseline": best,
        "paired": paired,
        "n": int(len(diff)),
        "diff": mean,
        "sd": sd,
        "t": mean_se_t(diff).t,
    }


def verdict(summary: pd.DataFrame, versus: dict | None) -> str:
    if versus is None:
        return "No verdict: the LSTM and at least one baseline must both be in the zoo."
    lstm = summary.loc["lstm"]
    t_days = lstm["test_rank_ic_t"]
    d, t, base = versus["diff"], versus["t"], versus["baseline"]
    if d > 0 and t > 2 and t_days > 2:
        return (
            f"The LSTM beats its best baseline ({base}, chosen on validation) out of sample: test rank IC "
            f"higher by {d:+.4f} (t over seeds {t:.1f}) and distinguishable from zero over the test days "
            f"(t {t_days:.1f})."
        )
    if d < 0 and t < -2:
        return (
            f"The LSTM does worse than its best baseline ({base}, chosen on validation) out of sample: "
            f"test rank IC lower by {d:+.4f} (t over seeds {t:.1f})."
        )
    return (
        f"The LSTM does not beat its baselines out of sample: its test rank IC "
        f"({lstm['test_rank_ic']:+.4f}, s.e. over test days {lstm['test_rank_ic_se_days']:.4f}) is "
        f"{'not ' if not abs(t_days) > 2 else ''}distinguishable from zero, and its difference from the best "
        f"baseline ({base}, chosen on validation), {d:+.4f} (t over seeds {t:.1f}), is "
        f"{'within' if abs(d) < 2 * lstm['test_rank_ic_se_days'] else 'outside'} two standard errors of the test "
        "period's own noise."
    )


# ---------------------------------------------------------------------- the positive control
MUST_RECOVER = ("logistic", "lightgbm", "lstm")  # issue 11: each recovers >= RECOVERY_BAR of the planted rank IC
RECOVERY_BAR = 0.60
NULL_MODEL, NULL_SES = "random", 3.0  # the null stays within NULL_SES standard errors of 0


def planted_feature_ic(data: MarketData, config: dict) -> dict:
    """The planted feature's own rank IC on the test days, the most a model can show there: minus the
    20-day log return (each day the same ranking as minus rel_ret_20) against the forward excess
    return over the label horizon, with its Newey-West standard error over the same test days."""
    from analyzers.ic import daily_ic, forward_excess_returns_from, ic_summary

    split, h = config["model"]["split"], int(config["model"]["horizon"])
    close = data.prices.close
    reversal = -np.log(close / close.shift(20))
    fwd = forward_excess_returns_from(close, data.benchmark, h)
    test = slice(split["test_start"], split["test_end"])
    summary = ic_summary(daily_ic(reversal.loc[test], fwd.loc[test], method="spearman"), h)
    return {"mean": float(summary["mean"]), "se": float(summary["se"])}


def positive_control(table: pd.DataFrame, planted_ic: float, feature_ic: float = float("nan")) -> pd.DataFrame:
    """One row per model of a zoo table on planted data: its test rank IC (mean, sd over seeds), the
    Newey-West s.e. over the test days (of one run, averaged over its runs), the share of the
    planted rank IC it recovers (seed mean; and its worst seed), the share of the planted feature's own
    test IC, and its bar: the MUST_RECOVER models need a seed mean >= RECOVERY_BAR x planted, the null
    |seed mean| <= NULL_SES x s.e.; other models have no bar (passed None)."""
    if not (isinstance(planted_ic, (int, float)) and 0 < planted_ic < 1):
        raise ConfigError(f"--planted-ic {planted_ic!r}: give a rank IC between 0 and 1 (e.g. 0.10)")
    rows = []
    for name, g in table.groupby("model", sort=False):
        ic = g["test_rank_ic"]
        mean, sd, _ = _mean_sd_se(ic)
        se = float(g["test_rank_ic_se"].mean())
        row = {
            "model": name,
            "runs": len(g),
            "test_rank_ic": mean,
            "test_rank_ic_sd": sd,
            "se_days": se,
            "recovered": mean / planted_ic,
            "worst_seed": float(ic.min()) / planted_ic,
            "of_feature": mean / feature_ic if feature_ic > 0 else float("nan"),
        }
        if name in MUST_RECOVER:
            row["bar"], row["passed"] = f"recover >= {RECOVERY_BAR:.0%}", bool(mean >= RECOVERY_BAR * planted_ic)
        elif name == NULL_MODEL:
            row["bar"], row["passed"] = f"within {NULL_SES:g} s.e. of 0", bool(abs(mean) <= NULL_SES * se)
        else:
            row["bar"], row["passed"] = "none", None
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def positive_control_verdict(control: pd.DataFrame) -> str:
    """PASS when every barred model ran and passed; names the failures and the models not run."""
    missing = [m for m in MUST_RECOVER + (NULL_MODEL,) if m not in control.index]
    failed = [m for m, ok in control["passed"].items() if ok is not None and not ok]
    if failed:
        return (
            f"FAIL: {', '.join(failed)} did not meet the bar; a model that cannot find the planted signal is a "
            "bug to chase, not a result."
        )
    if missing:
        return f"INCOMPLETE: the bars met, but {', '.join(missing)} did not run (--models)."
    return (
        f"PASS: logistic, LightGBM and the LSTM each recover >= {RECOVERY_BAR:.0%} of the planted rank IC on "
        f"the test period, and random stays within {NULL_SES:g} standard errors of 0."
    )


def positive_control_markdown(table: pd.DataFrame, planted: dict) -> list[str]:
    control = positive_control(table, planted["planted_ic"], planted["feature_ic"])
    pct = lambda x: f"{round(100 * x)} %" if np.isfinite(x) else "–"  # noqa: E731  (round: no "-0 %")
    lines = [
        "## Positive control (SYNTHETIC data: a planted signal)",
        "",
        f"Planted: minus `{planted['feature']}` (the 20-day reversal) with rank IC **{planted['planted_ic']:g}** "
        f"against the {planted['horizon']}-day forward excess return, in a SYNTHETIC universe of "
        f"{planted['stocks']} stocks x {planted['days']} business days (data seed {planted['data_seed']}; "
        "feeds/synthetic.py). The planted feature's own rank IC on the test days is the most a model can show "
        "there.",
        "",
        "Test rank IC: mean ± sd over seeds. s.e. (days): the standard error of one run's test rank IC over "
        f"its test days (Newey-West, {planted['horizon'] - 1} lags), averaged over runs. "
        "Recovered: the seed mean / the planted IC (worst seed: the lowest run / the planted IC). "
        f"Bars (issue 11): logistic, LightGBM and the LSTM each recover >= {RECOVERY_BAR:.0%} of the planted "
        f"rank IC; random stays within {NULL_SES:g} s.e. (days) of 0.",
        "",
        "| model | runs | test rank IC | s.e. (days) | recovered | worst seed | of the feature's IC | bar | result |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| planted feature (minus {planted['feature']}) | – | {_pm(planted['feature_ic'], float('nan'))} | "
        f"{_num(planted['feature_se'])} | {pct(planted['feature_ic'] / planted['planted_ic'])} | – | 100 % "
        "| – | – |",
    ]
    for name, r in control.iterrows():
        result = "–" if r["passed"] is None else ("pass" if r["passed"] else "**FAIL**")
        lines.append(
            f"| {name} | {int(r['runs'])} | {_pm(r['test_rank_ic'], r['test_rank_ic_sd'])} | "
            f"{_num(r['se_days'])} | {pct(r['recovered'])} | {pct(r['worst_seed'])} | "
            f"{pct(r['of_feature'])} | {r['bar']} | {result} |"
        )
    lines += ["", f"**Positive control:** {positive_control_verdict(control)}", ""]
    return lines


def _pm(mean, sd, digits=4) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:+.{digits}f}" + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else "")


def _num(x, digits=4) -> str:
    return f"{x:.{digits}f}" if np.isfinite(x) else "–"


def zoo_markdown(table: pd.DataFrame, info: dict) -> str:
    summary = summarise(table)
    versus = lstm_versus_best_baseline(table)
    lines = [
        f"# Model zoo: {info['data']}",
        "",
        f"Split: train {info['split']['train_start']}..{info['split']['train_end']}, validation "
        f"{info['split']['valid_start']}..{info['split']['valid_end']}, test {info['split']['test_start']}.."
        f"{info['split']['test_end']}. Same features, labels (beat the benchmark over {info['horizon']} days) "
        f"and windows for every model. {len(table)} fits ({info['n_models']} models, "
        f"up to {info['seeds']} seeds).",
        "",
        "Mean ± sd over seeds. s.e.(seeds) = sd / sqrt(runs): seed luck only. s.e.(days) = the test rank IC's "
        "Newey-West standard error over the test days of one run (averaged over runs): the period's own noise. "
        "Tradeable IC: from the fill day (lag 1). Spread: top minus bottom quintile's mean "
        f"{info['horizon']}-day excess return. Sharpe: the default strategy on the model's test scores "
        f"({info['sharpe_engine']}).",
        "",
        "| model | runs | valid rank IC | test rank IC | s.e. (seeds) | s.e. (days) | tradeable IC | "
        "quintile spread | test Sharpe | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in summary.iterrows():
        lines.append(
            f"| {name} | {int(r['runs'])} | {_pm(r['valid_rank_ic'], r['valid_rank_ic_sd'])} | "
            f"{_pm(r['test_rank_ic'], r['test_rank_ic_sd'])} | "
            f"{_num(r['test_rank_ic_se'])} | {_num(r['test_rank_ic_se_days'])} | "
            f"{_pm(r['test_tradeable_rank_ic'], r['test_tradeable_rank_ic_sd'])} | "
            f"{_pm(r['test_quintile_spread'], r['test_quintile_spread_sd'])} | "
            f"{_pm(r['test_sharpe'], r['test_sharpe_sd'], 2)} | {r['fit_seconds']:.1f} |"
        )
    lines.append("")
    for note in info.get("notes", []) + info.get("chosen", []):
        lines.append(f"- {note}")
    if versus is not None:
        how = "paired by seed" if versus["paired"] else "against its single run"
        lines.append(
            f"- LSTM minus the best baseline on test rank IC: best baseline by validation rank IC = "
            f"**{versus['baseline']}**; difference {_pm(versus['diff'], versus['sd'])} over {versus['n']} "
            f"seeds ({how}), t over seeds {versus['t']:.2f}."
        )
    lines += ["", f"**Verdict:** {verdict(summary, versus)}", ""]
    if info.get("planted"):
        lines += positive_control_markdown(table, info["planted"])
    for caveat in info.get("caveats", []):
        lines.append(f"Caveat: {caveat}")
    lines.append(
        f"Choosing among {len(table)} fits costs: the best of them on test is an optimistic number; "
        "only the validation-chosen comparison above is honest."
    )
    return "\n".join(lines) + "\n"


def zoo_png(table: pd.DataFrame, path: Path, title: str = "Model zoo", planted_ic: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import atomic_path

    names = list(dict.fromkeys(table["model"]))
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 4))
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        y = table.loc[table["model"] == name, "test_rank_ic"].to_numpy()
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(y)), y, color="tab:blue", alpha=0.7, s=22, zorder=3)
        ax.hlines(np.nanmean(y), i - 0.25, i + 0.25, color="black", lw=2, zorder=4)
    ax.axhline(0, color="grey", lw=0.8)
    if planted_ic:
        ax.axhline(planted_ic, color="tab:green", lw=1, ls="--", label=f"planted rank IC {planted_ic:g}")
        ax.axhline(
            RECOVERY_BAR * planted_ic, color="tab:red", lw=1, ls=":", label=f"{RECOVERY_BAR:.0%} of it (the bar)"
        )
        ax.legend(loc="best", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("test rank IC (dots: seeds, bar: mean)")
    ax.set_title(f"{title}: test rank IC per model", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def write_zoo(table: pd.DataFrame, info: dict, out_dir: Path) -> Path:
    """zoo.csv, zoo.md and zoo.png, all at once (atomic directory)."""
    from core.io import atomic_dir, write_text

    with atomic_dir(out_dir) as tmp:
        write_text(tmp / "zoo.csv", table[ZOO_COLUMNS].to_csv(index=False, float_format="%.6g"))
        write_text(tmp / "zoo.md", zoo_markdown(table, info))
        zoo_png(
            table,
            tmp / "zoo.png",
            title="Model zoo, " + info["data"],
            planted_ic=(info.get("planted") or {}).get("planted_ic"),
        )
    return out_dir


# ---------------------------------------------------------------------- the whole run
def zoo_data(config: dict, planted: dict | None, data_dir=None, say=print) -> tuple:
    """(data, config with its split resolved, the data's name for zoo.md): the planted SYNTHETIC
    universe of `planted` (the positive control's options: stocks, days, planted_ic, data_seed),
    else the configured source (`data_dir` names a CSV folder in zoo.md)."""
    if not planted:
        source = config["data"].get("source", "embedded")
        return load_data(config), config, "embedded S&P 500 data" if source == "embedded" else str(data_dir)
    data = planted_data(planted["stocks"], planted["days"], planted["planted_ic"], planted["data_seed"])
    config = resolve_split(config, data)
    say(f"  {data.caveats[0]}")
    say(f"  {describe_split(config)}")
    name = (
        f"SYNTHETIC universe, {planted['stocks']} stocks x {planted['days']} days, planted rank IC "
        f"{planted['planted_ic']:g} (data seed {planted['data_seed']})"
    )
    return data, config, name


def run_zoo(
    config: dict,
    data: MarketData,
    out_dir: Path,
    models: list[str] | None = None,
    seeds: int = DEFAULT_SEEDS,
    workers: int = 2,
    ray: bool = False,
    store: Path | None = None,
    progress: bool = True,
    data_name: str = "embedded S&P 500 data",
    planted: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Fit and measure every (model, seed) on `data` with `config` (its split resolved), write zoo.csv,
    zoo.md and zoo.png to out_dir. `planted` (the positive control: planted_ic, feature, stocks, days,
    data_seed of jobs.market.planted_data) adds the positive-control table to zoo.md."""
    t0 = time.perf_counter()
    tasks, notes = plan_tasks(models or list(MODEL_NAMES), seeds)
    results = run_tasks(tasks, config, data, Path(store or MODEL_STORE), workers, ray, progress)
    table = pd.DataFrame([r["row"] for r in results], columns=ZOO_COLUMNS + ["test_rank_ic_se"])
    chosen = [
        f"momentum chose **{r['chosen']['feature']}** (sign {r['chosen']['sign']:+.0f}) on validation rank IC "
        f"{r['chosen']['valid_rank_ic'][r['chosen']['feature']]:+.4f} (purged samples); its validation "
        "rank IC is therefore in-sample for that choice"
        for r in results
        if r["row"]["model"] == "momentum" and r["chosen"].get("feature")
    ]
    split = config["model"]["split"]
    info = {
        "data": data_name,
        "split": split,
        "horizon": config["model"]["horizon"],
        "seeds": seeds,
        "n_models": table["model"].nunique(),
        "notes": notes,
        "chosen": chosen,
        "caveats": data.caveats,
        "sharpe_engine": "vector engine, trade for trade Cerebro's; jobs.engines.strategy_sharpe",
        "seconds": time.perf_counter() - t0,
        "reused": sum(r["reused"] for r in results),
        "paths": {f"{r['row']['model']}/{r['row']['seed']}": r["path"] for r in results},
    }
    if planted:
        feature = planted_feature_ic(data, config)
        info["planted"] = {
            **planted,
            "horizon": config["model"]["horizon"],
            "feature_ic": feature["mean"],
            "feature_se": feature["se"],
        }
    write_zoo(table, info, out_dir)
    return table, info
