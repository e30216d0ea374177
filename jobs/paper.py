"""Paper trading: a daily account whose state always equals the backtest.

    python run_backtest.py paper init NAME --start 2021-01-04 [--cash C] [--model DIR | --preset/--config]
                                           [--data DIR --benchmark T | --source yfinance]
                                           [--refit yearly | --refit-every-months N]
    python run_backtest.py paper step NAME [--rebase [--sell-all]]
    python run_backtest.py paper status NAME

An account is not a second engine: every step replays AlphaRankStrategy in one Cerebro from the
account's start date to the newest bar, with the model and configuration frozen at init, and
writes the book, the orders for the next open and one journal line per new day. The newest bar
comes through a live-mode feed (`islive()` true): Cerebro then runs bar by bar, and LSTMAlpha
scores that bar with its event-driven `next()`; the earlier bars take the batched
`model.predict` scores (the same numbers `once()` gives). See docs/paper.md.

Layout of paper/NAME/ (every state is whole: a step writes a new states/NNNNNN/ folder, then
swaps the `current` symlink with one atomic rename; a killed step leaves the previous state):

    current -> states/000007        account.json, config.json, book.json, orders_next_open.csv,
                                    journal.csv, tearsheet.html
    models/<sha256[:16]>/           the model artifact copied at init, or (--refit) each walk-forward
                                    fold the account trained (models.walkforward's rule, see docs/paper.md)
    book.json, ... -> current/...   convenience links
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.dates import day_argument, parse_day
from core.errors import AlphaPluginError, ArtifactError, ConfigError, DataError
from core.io import atomic_dir, read_json
from core.io import read_csv_rows as read_table
from feeds import ArrayData
from feeds.arraydata import datetime_numbers
from jobs.engines import backtest_costs, build_cerebro, strategy_params
from jobs.market import MarketData, load_data
from jobs.periods import resolve_split
from jobs.store import MODEL_STORE, get_model, model_config, model_kind
from models import LSTMAlpha
from models.walkforward import fold_split
from strategies import AlphaRankStrategy
from strategies.alpha_rank import buy_shares

__all__ = [
    "ACCOUNTS",
    "CODE_PATHS",
    "FORMAT_VERSION",
    "JOURNAL_COLUMNS",
    "LiveTailData",
    "ORDER_COLUMNS",
    "PLAN_KEYS",
    "REBUILT_BY_STEP",
    "PaperAlpha",
    "PaperStrategy",
    "REFIT_CHOICES",
    "ROOT",
    "Replay",
    "STATE_FILES",
    "StepResult",
    "account_dir",
    "account_lock",
    "account_model",
    "batched_scores",
    "book_dict",
    "check_drift",
    "checked_journal",
    "code_version",
    "commit_state",
    "config_sha256",
    "config_source",
    "csv_text",
    "data_fingerprints",
    "decisions_text",
    "early_end_note",
    "ended_early",
    "in_sample_warning",
    "init",
    "load_model",
    "main",
    "model_entries",
    "model_sha256_on",
    "parser",
    "plan_config",
    "read_csv_rows",
    "read_state",
    "refit_months",
    "refit_plan",
    "refresh_data",
    "replay",
    "resolve_config",
    "restore_hint",
    "save_fold",
    "size_orders",
    "status_text",
    "step",
    "stock_file",
    "tearsheet_html",
    "train_due_folds",
    "tree_sha256",
]

ROOT = Path(__file__).resolve().parents[1]  # the project folder
ACCOUNTS = ROOT / "paper"
FORMAT_VERSION = 1
STATE_FILES = ("account.json", "config.json", "book.json", "orders_next_open.csv", "journal.csv", "tearsheet.html")
JOURNAL_COLUMNS = [
    "generation",
    "date",
    "cash",
    "value",
    "benchmark",
    "holdings",
    "decisions",
    "data_fingerprint",
    "model_sha256",
]
ORDER_COLUMNS = ["ticker", "action", "shares", "price", "score", "rank", "reason"]
# the code whose behaviour a decision depends on; a change refuses to step (drift guard)
CODE_PATHS = (
    "feeds",
    "models",
    "strategies",
    "analyzers",
    "configs",
    *(f"jobs/{m}.py" for m in ("__init__", "market", "periods", "store", "engines", "paper")),
)
REFIT_CHOICES = ("none", "yearly")
PLAN_KEYS = ("first_test", "refit_every_months", "window", "rolling_years", "valid_years")  # WalkForwardModel's


# ============================================================================ live-mode Cerebro
class LiveTailData(ArrayData):
    """ArrayData that reports itself live (`islive()` true): bars before `live_from` are its
    backfill (status DELAYED), the bars from `live_from` on are live (status LIVE), as a broker
    feed that backfills history and then streams. With any live data Cerebro turns preload and
    runonce off, so every indicator runs bar by bar in `next()`."""

    params = (("live_from", None),)

    def islive(self):
        return True

    def start(self):
        super().start()
        self._live_num = float(datetime_numbers(pd.DatetimeIndex([pd.Timestamp(self.p.live_from)]))[0])
        self._announced = None

    def _load(self):
        loaded = super()._load()
        if loaded:
            status = self.LIVE if self.lines.datetime[0] >= self._live_num else self.DELAYED
            if status != self._announced:
                self.put_notification(status)
                self._announced = status
        return loaded


class PaperAlpha(LSTMAlpha):
    """LSTMAlpha for a replay: bars before `live_day` take the batched score of that date (what
    `once()` would give), the live bar is scored by LSTMAlpha.next() from the delivered bars."""

    params = (("batched", None), ("live_day", None))

    def __init__(self):
        super().__init__()
        self.live_bars = 0  # bars scored by the event-driven path (the test expects exactly 1)

    def next(self):
        n = len(self.data)
        if n != self._last_len and int(self.data.datetime[0]) < self.p.live_day:
            self._last_len = n
            self.lines.score[0] = self.p.batched.get(int(self.data.datetime[0]), math.nan)
            return
        if n != self._last_len:
            self.live_bars += 1
        super().next()


class PaperStrategy(AlphaRankStrategy):
    """AlphaRankStrategy that records, after each close, the day's cash, value, holdings and the
    decisions it plans for the next open (read through AlphaRankStrategy.book_state)."""

    def __init__(self):
        super().__init__()
        self.days: list[dict] = []

    def next(self):
        super().next()
        state = self.book_state()
        broker = self.broker
        self.days.append(
            {
                "date": state["date"],
                "cash": float(broker.getcash()),
                "value": float(broker.getvalue()),
                "holdings": {t: h["shares"] for t, h in sorted(state["holdings"].items())},
                "decisions": decisions_text(state),
            }
        )


def decisions_text(state: dict) -> str:
    """The day's decisions as one comparable string: 'SELL XOM review_exit|BUY AAPL entry #1'."""
    sells = [f"SELL {o['ticker']} {o['reason']}" for o in state["sell"]]
    buys = [f"BUY {o['ticker']} entry #{o['rank']}" for o in state["buy"]]
    return "|".join(sells + buys)


def batched_scores(model, data: MarketData, start, end) -> pd.DataFrame:
    """The batched scores of every stock on the replay's days: model.predict over all data up to
    `end` (the score dated t uses bars up to t only), as LSTMAlpha.once() computes them."""
    prices = data.prices.between(None, end)
    return model.predict(
        prices, data.benchmark.loc[:end], vix=None if data.vix is None else data.vix.loc[:end], start=start
    )


@dataclass
class Replay:
    days: list
    state: dict
    cash: float
    value: float
    closes: dict
    strategy: object
    batched: pd.DataFrame
    commission: dict = field(default_factory=dict)


def refuse_costs_paper_cannot_book(config: dict) -> None:
    """The account books its own orders at the open with commission only: a slippage or a volume
    cap in its config would make the replay and the account differ, so it is refused, not ignored."""
    costs = backtest_costs(config)
    if costs.slippage or costs.max_volume_pct is not None:
        raise ConfigError(
            f"the paper account models commission only; its config sets [backtest] slippage = {costs.slippage} "
            f"and max_volume_pct = {costs.max_volume_pct or 0}: set both to 0 for a paper account"
        )


def replay(model, data: MarketData, start, end, params: dict, cash: float, commission: float) -> Replay:
    """AlphaRankStrategy (close_at_end off) from `start` to `end` in a live-mode Cerebro."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    scores = batched_scores(model, data, start, end)
    days = datetime_numbers(scores.index).astype(np.int64)
    tables = {
        t: {int(d): float(v) for d, v in zip(days, scores[t].to_numpy()) if np.isfinite(v)} for t in scores.columns
    }
    live_day = int(datetime_numbers(pd.DatetimeIndex([end]))[0])
    before = start - pd.Timedelta(days=1)

    def alpha_for(bench_feed):
        from models.indicator import BatchScorer

        scorer = BatchScorer(model, bench_feed, data.prices.between(None, before), data.benchmark.loc[:before])

        def make(d):
            return PaperAlpha(
                d, bench_feed, model=model, scorer=scorer, batched=tables.get(d._name, {}), live_day=live_day
            )

        return make

    params = {**params, "close_at_end": False}
    cerebro = build_cerebro(
        data,
        start,
        end,
        alpha_for,
        params,
        cash,
        commission,
        make_feed=lambda frame: LiveTailData(dataname=frame, live_from=end),
        strategy=PaperStrategy,
        min_bars=1,
    )
    strategy = cerebro.run()[0]
    state = strategy.book_state()
    closes, comm = {}, {}
    for d in strategy.stocks:
        if len(d):  # its last close: today's, or an earlier one if it had no bar today (as the broker values it)
            closes[d._name] = float(d.close[0])
        comm[d._name] = strategy.broker.getcommissioninfo(d).getcommission
    return Replay(
        strategy.days,
        state,
        float(strategy.broker.getcash()),
        float(strategy.broker.getvalue()),
        closes,
        strategy,
        scores,
        comm,
    )


def size_orders(
    state: dict, cash: float, closes: dict, commission: dict, position_pct: float, min_cash: float
) -> list[dict]:
    """The planned orders sized as AlphaRankStrategy.next_open sizes them, with the last close in
    place of the next open: sells first (their proceeds count), then each buy at position_pct of
    the book's value, capped by the cash left. Shares 0 = the strategy would skip it."""
    value = cash + sum(h["shares"] * closes.get(t, math.nan) for t, h in state["holdings"].items() if h["shares"])
    rows = []
    for order in state["sell"]:
        t = order["ticker"]
        shares = state["holdings"].get(t, {}).get("shares", 0)
        price = closes.get(t, math.nan)
        if shares > 0 and math.isfinite(price):
            cash += shares * price - commission[t](shares, price)
        rows.append(
            {
                "ticker": t,
                "action": "SELL",
                "shares": shares,
                "price": price,
                "score": order["score"],
                "rank": "",
                "reason": order["reason"],
            }
        )
    target = position_pct * value
    for order in state["buy"]:
        t = order["ticker"]
        price = closes.get(t, math.nan)
        shares = 0
        if price > 0 and math.isfinite(price):
            fee = commission[t]
            shares = buy_shares(target, price, cash, min_cash, fee)
            cash -= shares * price + fee(shares, price) if shares else 0.0
        rows.append(
            {
                "ticker": t,
                "action": "BUY",
                "shares": shares,
                "price": price,
                "score": order["score"],
                "rank": order["rank"],
                "reason": "entry",
            }
        )
    return rows


# ============================================================================ fingerprints
def data_fingerprints(data: MarketData, dates) -> dict:
    """{date: sha256 of every price and benchmark value up to and including that date}: what one
    day's decisions could see. One running hash over the rows, so all days cost one pass."""
    fields = data.prices.available
    frames = [data.prices[f] for f in sorted(fields)]
    index = frames[0].index.union(data.benchmark.index)
    matrix = np.column_stack(
        [f.reindex(index).to_numpy(dtype="float64") for f in frames]
        + [data.benchmark.reindex(index).to_numpy(dtype="float64")]
    )
    stamps = index.asi8
    wanted = {pd.Timestamp(d).value: str(pd.Timestamp(d).date()) for d in dates}
    h = hashlib.sha256(("|".join(data.prices.tickers) + "|" + ",".join(sorted(fields))).encode())
    out = {}
    for stamp, row in zip(stamps, matrix):
        if stamp > max(wanted, default=0):
            break
        h.update(stamp.tobytes() + row.tobytes())
        if stamp in wanted:
            out[wanted[stamp]] = h.hexdigest()[:16]
    return out


def tree_sha256(path: Path) -> str:
    """sha256 over the relative names and bytes of every file under `path` (sorted)."""
    h = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(file.relative_to(path)).encode() + b"\0")
        h.update(hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()


def code_version() -> str:
    """sha256 of the project's code that decides (feeds, models, strategies, analyzers, configs,
    the jobs' shared modules, this file) and of the package versions it runs on."""
    from models.artifact import package_versions

    h = hashlib.sha256(json.dumps(package_versions(), sort_keys=True).encode())
    for name in CODE_PATHS:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".py", ".toml"))
        for file in files:
            h.update(str(file.relative_to(ROOT)).encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()[:16]


def config_sha256(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


# ============================================================================ the account on disk
def account_dir(root, name: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise ConfigError(f"paper account name {name!r}: use letters, digits, '_', '-' or '.' (e.g. 'main')")
    return Path(root) / name


def read_state(path: Path) -> dict:
    """The current state of an account: its files in `current/` as parsed values. A damaged file
    (cut off, edited) is an ArtifactError naming it and saying how to restore it."""
    current = path / "current"
    if not current.is_dir():
        raise ConfigError(
            f"{path}: no paper account there (no 'current' state); create it with "
            f"'run_backtest.py paper init {path.name} --start DATE'"
        )
    state_dir = current.resolve()  # the real files, named in every message (current/ is a link)

    def hint(name):
        return restore_hint(path, state_dir / name)

    account = read_json(state_dir / "account.json", hint("account.json"))
    if account.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{current / 'account.json'}: format {account.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    book, journal = state_dir / "book.json", state_dir / "journal.csv"
    return {
        "dir": state_dir,
        "account": account,
        "config": read_json(state_dir / "config.json", hint("config.json")),
        "book": read_json(book, hint("book.json")) if book.is_file() else None,
        "journal": checked_journal(
            read_table(journal, JOURNAL_COLUMNS, hint("journal.csv")), journal, hint("journal.csv")
        ),
        "orders": read_table(state_dir / "orders_next_open.csv", ORDER_COLUMNS, hint("orders_next_open.csv")),
    }


# the files a step writes again from the replay; the others are the account's own record
REBUILT_BY_STEP = ("book.json", "orders_next_open.csv")


def restore_hint(account: Path, file: Path) -> str:
    """How to get a good `file` of the account back: a step rewrites the book and the orders; the
    journal, account.json and config.json are its record and come from a backup, or a new init."""
    if file.name in REBUILT_BY_STEP:
        return (
            f"it is rebuilt from the replay: delete it (rm {file}) and run 'run_backtest.py paper step {account.name}'"
        )
    return (
        f"it is the account's own record and cannot be rebuilt from the data: restore it from a backup of "
        f"{account}, or move {account} away and run 'run_backtest.py paper init {account.name}' again with the "
        f"same options (the replay gives the same decisions for every day whose data has not changed)"
    )


def checked_journal(rows: list[dict], path: Path, restore: str) -> list[dict]:
    """The journal's rows after checking the cells a step computes with (generation, date, money)."""
    for number, row in enumerate(rows, start=2):
        try:
            int(row["generation"])
            parse_day(row["date"], "date")
            for column in ("cash", "value", "benchmark"):
                float(row[column])
            sha = row.get("model_sha256", "")
            if sha and not re.fullmatch(r"[0-9a-f]{64}", sha):  # cut short: the fold cannot be checked
                raise ValueError(f"model_sha256 {sha!r} is not a sha256 (64 hex digits)")
        except (ValueError, ConfigError) as exc:
            raise ArtifactError(f"{path} is damaged (line {number}: {exc}); {restore}") from None
    return rows


def read_csv_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def csv_text(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c, "")) for c in columns})
    return out.getvalue()


def _cell(value):
    return repr(float(value)) if isinstance(value, (float, np.floating)) else value


def commit_state(path: Path, files: dict, copy_from: Path | None = None) -> Path:
    """Write a new state folder (files: name -> text; names absent are copied from `copy_from`),
    then point `current` at it with one atomic rename. A kill at any moment leaves `current`
    pointing at a whole state: the old one or the new one."""
    states = path / "states"
    states.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name) for p in states.iterdir() if p.name.isdigit()]
    target = states / f"{max(numbers, default=0) + 1:06d}"
    with atomic_dir(target) as tmp:
        for name in STATE_FILES:
            if name in files:
                if files[name] is not None:
                    (tmp / name).write_text(files[name])
            elif copy_from is not None and (copy_from / name).is_file():
                shutil.copy2(copy_from / name, tmp / name)
        for file in tmp.iterdir():  # on disk before the switch, not only in the page cache
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    for stale in path.glob(".current.*"):  # left by a step killed between the two lines below
        stale.unlink()
    link = path / f".current.{os.getpid()}"
    os.symlink(f"states/{target.name}", link)
    os.replace(link, path / "current")
    for old in states.iterdir():  # earlier states and the temporaries of killed steps
        if old.name != target.name:
            shutil.rmtree(old, ignore_errors=True)
    return target


@contextlib.contextmanager
def account_lock(path: Path):
    """One step at a time per account (a cron job and a hand-run step must not interleave)."""
    import fcntl

    with open(path / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{path}: another 'paper step' is running on this account; wait for it") from None
        yield


# ============================================================================ configuration and model
def resolve_config(source: dict) -> dict:
    from configs import load_config

    return load_config(source["preset"], source.get("file"), source.get("overrides") or {})


def config_source(preset: str, config_file, start, cash, data_dir, benchmark, source) -> dict:
    overrides: dict = {"backtest": {"start": str(pd.Timestamp(start).date())}}
    if cash is not None:
        if not cash > 0:
            raise ConfigError(f"--cash {cash} must be positive")
        overrides["backtest"]["cash"] = float(cash)
    data_source = source or ("csv" if data_dir else None)
    data = {
        k: v
        for k, v in (
            ("source", data_source),
            ("dir", str(Path(data_dir).resolve()) if data_dir else None),
            ("benchmark", benchmark),
        )
        if v is not None
    }
    if data:
        overrides["data"] = data
    return {"preset": preset, "file": str(Path(config_file).resolve()) if config_file else None, "overrides": overrides}


def load_model(path: Path):
    from models import AlphaModel
    from models.artifact import META

    if not (Path(path) / META).is_file():
        raise ArtifactError(
            f"{path}: not an AlphaModel artifact (no {META}); give one saved model (a walk-forward "
            "bundle is not taken: 'paper init --refit yearly' trains the account's own folds)"
        )
    return AlphaModel.load(path)


# ============================================================================ scheduled refits
def refit_months(refit, every_months) -> int:
    """0 for no refits, else the months between refits: --refit yearly (12) or --refit-every-months N."""
    if refit not in (None, *REFIT_CHOICES):
        raise ConfigError(f"--refit {refit!r}: use one of {REFIT_CHOICES} (or --refit-every-months N)")
    if every_months is None:
        return 12 if refit == "yearly" else 0
    if refit is not None:
        raise ConfigError(
            f"--refit {refit} and --refit-every-months {every_months}: give one of them "
            "(--refit yearly is --refit-every-months 12)"
        )
    if isinstance(every_months, bool) or not isinstance(every_months, int) or every_months < 1:
        raise ConfigError(f"--refit-every-months {every_months!r}: give a whole number of months >= 1")
    return every_months


def refit_plan(config: dict, data: MarketData, months: int) -> dict:
    """The walk-forward plan a --walk-forward backtest of `config` uses (jobs.store.walk_forward_params:
    the split's test_start is the first refit, [walk_forward] window / rolling_years / valid_years),
    with refits every `months`, open-ended; the split is resolved once here and frozen."""
    config = resolve_split(config, data)
    cfg = model_config(config)
    kind = model_kind(config)
    if kind != "lstm":
        raise ConfigError(f"model.kind = {kind!r}: a paper account trades the LSTM (LSTMAlpha) only")
    wf = config.get("walk_forward", {})
    plan = {
        "train_start": cfg.split.train_start,
        "first_test": cfg.split.test_start,
        "refit_every_months": int(months),
        "window": wf.get("window", "expanding"),
        "rolling_years": int(wf.get("rolling_years", 10)),
        "valid_years": int(wf.get("valid_years", 3)),
        "model": kind,
        "split": dict(config["model"]["split"]),
    }
    fold_split(plan, 0)  # validates the plan (window, years) before anything is trained
    return plan


def plan_config(config: dict, plan: dict):
    """The folds' base ModelConfig: the frozen configuration with the split frozen at init."""
    return model_config({**config, "model": {**config["model"], "split": plan["split"]}})


def save_fold(folder: Path, model, number: int) -> dict:
    """Save a fitted fold as a model artifact (models.artifact: JSON + weights, no pickle) under
    folder/models/<sha256[:16]>/; its entry for account.json."""
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    for stale in models.glob(".fold-*"):  # left by a killed step (steps hold the account lock)
        shutil.rmtree(stale, ignore_errors=True)
    staging = models / f".fold-{number}-{os.getpid()}"
    model.save(staging)
    sha = tree_sha256(staging)
    target = models / sha[:16]
    if target.exists() and tree_sha256(target) == sha:
        shutil.rmtree(staging)
    else:
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    return {"dir": f"models/{sha[:16]}", "sha256": sha}


def train_due_folds(folder: Path, account: dict, config: dict, data: MarketData, end, progress=False) -> list:
    """Train every fold the plan has due by `end` (models.walkforward.fold_due) with the
    walk-forward rule (fit_fold: prices up to the fold's validation end only), save it and add
    it to account["folds"]. Returns one message per fold."""
    from models.walkforward import fit_fold, fold_due

    plan, messages = account["walk_forward"], []
    due = fold_due(plan, account["generations"][-1]["start"], end, [f["number"] for f in account["folds"]])
    for number in due:
        split = fold_split(plan, number)
        if pd.Timestamp(split.valid_end) > data.prices.dates[-1]:
            raise DataError(f"refit fold {number} ({split.test_start}) needs prices up to {split.valid_end}")
        cfg = plan_config(config, plan).replace(split=split)
        model = fit_fold(cfg, plan["model"], {}, data.prices, data.benchmark, data.vix, progress=progress)
        entry = save_fold(folder, model, number)
        last_label = model.report_.windows["last_label_date"]
        account["folds"].append(
            {
                "number": number,
                "refit_date": split.test_start,
                **entry,
                "generation": account["generation"],
                "trained_at": str(pd.Timestamp(end).date()),
                "split": dataclasses.asdict(split),
                "last_label_date": last_label,
                # what decides its scores (kind, config, scaler, weights): the same for the same fit,
                # where sha256 (of the files) also covers the fit's timing in model.json
                "fingerprint": model.fingerprint(),
            }
        )
        messages.append(
            f"refit: fold {number} (refit {split.test_start}) trained on labels up to {last_label}, saved "
            f"{entry['dir']} (sha256 {entry['sha256']})"
        )
    return messages


def account_model(path: Path, account: dict, config: dict):
    """The model a step replays with: the account's one frozen model, or (refits) a
    WalkForwardModel of its folds (WalkForwardModel.from_folds)."""
    if account.get("refit", "none") == "none":
        return load_model(path / account["model"]["dir"])
    from models.registry import load_model as load_fold
    from models.walkforward import WalkForwardModel

    plan = account["walk_forward"]
    folds = {f["number"]: load_fold(path / f["dir"]) for f in account["folds"]}
    wf = {k: plan[k] for k in PLAN_KEYS} | {"last_test": fold_split(plan, max(folds)).test_end}
    return WalkForwardModel.from_folds(plan_config(config, plan), wf, folds, model=plan["model"])


def model_entries(account: dict) -> list[dict]:
    """The frozen model copies the drift guard checks: the one model, or every fold."""
    return list(account["folds"]) if account.get("refit", "none") != "none" else [account["model"]]


def model_sha256_on(account: dict, day) -> str:
    """The sha256 of the model that scored `day`: the fold whose refit date is the last on or before it."""
    if account.get("refit", "none") == "none":
        return account["model"]["sha256"]
    day = pd.Timestamp(day)
    owners = [f for f in account["folds"] if pd.Timestamp(f["refit_date"]) <= day]
    return max(owners, key=lambda f: f["number"])["sha256"] if owners else ""


# ============================================================================ init
def init(
    root,
    name: str,
    start,
    cash=None,
    preset="default",
    config_file=None,
    model_dir=None,
    data_dir=None,
    benchmark=None,
    source=None,
    refit=None,
    model_store=None,
    refit_every_months=None,
    progress=False,
) -> Path:
    """Create paper/NAME/ with the frozen configuration, a copy of the model, the data source and
    the start date. The model is the one at `model_dir`, or the preset's saved/trained model; with
    refits (refit="yearly" or refit_every_months=N) the account trains its own walk-forward folds,
    the first one (the fold that scores `start`) here."""
    path = account_dir(root, name)
    if path.exists():
        raise ConfigError(f"{path}: the account exists; step it ('paper step {name}'), or choose another name")
    months = refit_months(refit, refit_every_months)
    if months and model_dir is not None:
        raise ConfigError(
            "--model and --refit: an account with scheduled refits trains its own folds from the "
            "configuration (--preset/--config); drop --model, or drop --refit to trade that fixed model"
        )
    if months and model_store is not None:
        raise ConfigError(f"--model-store and --refit: a refitting account keeps its folds in {path}/models/")
    start = parse_day(start, "--start")
    csource = config_source(preset, config_file, start, cash, data_dir, benchmark, source)
    config = resolve_config(csource)
    data = load_data(config)
    if data.prices.dates[-1] < start:
        raise DataError(f"the data ends {data.prices.dates[-1].date()}, before --start {start.date()}")
    account = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "generation": 1,
        "generations": [
            {"generation": 1, "start": str(start.date()), "cash": float(config["backtest"]["cash"]), "reason": "init"}
        ],
        "config_source": csource,
        "config_sha256": config_sha256(config),
        "model": None,
        "code_version": code_version(),
        "refit": "none" if not months else ("yearly" if months == 12 else f"every {months} months"),
        "data": dict(config["data"]),
        "tickers": list(data.prices.tickers),
        "vix": data.vix is not None,
        "download_start": str(data.prices.dates[0].date()),  # a yfinance update fetches only the missing days
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "in_sample_warning": False,
    }
    if months:
        account |= {"walk_forward": refit_plan(config, data, months), "folds": []}
    else:
        model_dir = _fixed_model_dir(config, data, model_dir, model_store, progress)
        sha = tree_sha256(model_dir)
        account["model"] = {"dir": f"models/{sha[:16]}", "sha256": sha, "source": str(model_dir)}
        split = load_model(model_dir).config.split
        account["in_sample_warning"] = bool(start < pd.Timestamp(split.test_start))
        warning = in_sample_warning(start, split)
        if warning:
            warnings.warn(warning, UserWarning, stacklevel=2)
    with atomic_dir(path) as tmp:
        if months:
            for message in train_due_folds(tmp, account, config, data, start, progress):
                print(message)
        else:
            shutil.copytree(model_dir, tmp / account["model"]["dir"])
            if tree_sha256(tmp / account["model"]["dir"]) != account["model"]["sha256"]:
                raise ArtifactError(f"{model_dir}: the copy differs from the original; is it being written right now?")
        commit_state(
            tmp,
            {
                "account.json": _json(account),
                "config.json": _json(config),
                "journal.csv": csv_text([], JOURNAL_COLUMNS),
            },
        )
        for file in STATE_FILES[2:]:
            os.symlink(f"current/{file}", tmp / file)
    return path


def _fixed_model_dir(config: dict, data, model_dir, model_store, progress: bool) -> Path:
    """The fixed model of an account without refits: `model_dir`, or the preset's saved (or newly trained) one."""
    if model_dir is None:
        store = Path(model_store) if model_store else MODEL_STORE
        _, model_dir, _ = get_model(config, data, store=store, progress=progress)
    model_dir = Path(model_dir).resolve()
    load_model(model_dir)  # refuses anything but one saved AlphaModel
    return model_dir


def in_sample_warning(start: pd.Timestamp, split) -> str | None:
    """Why an account starting on `start` is not a forward test of a model fitted with `split`
    (its training or validation years: the model saw those days, or chose its epoch on them)."""
    valid_start, valid_end = split.period("valid")
    test_start = pd.Timestamp(split.test_start)
    if start >= test_start:
        return None
    years = "training" if start < valid_start else "validation"
    why = "it was fitted on them" if years == "training" else "it chose its epoch on them"
    return (
        f"the account starts {start.date()}, inside the model's {years} years "
        f"({split.train_start} .. {split.train_end} training, {valid_start.date()} .. {valid_end.date()} "
        f"validation; {why}): its results until {valid_end.date()} are in-sample, not a forward test. "
        f"Start on or after {test_start.date()}, the model's test period"
    )


def ended_early(data: MarketData, end: pd.Timestamp) -> dict:
    """{ticker: its last close} for the stocks whose prices stop before `end`, the data's last day."""
    last = data.prices.close.apply(lambda column: column.last_valid_index())
    return {t: d for t, d in last.items() if d is not None and d < end}


def stock_file(config: dict, ticker: str) -> str:
    """Where a stock's prices come from: its CSV file, its yfinance cache file, or the embedded data."""
    source, folder = config["data"].get("source"), config["data"].get("dir")
    if source == "csv" and folder:
        from feeds.csv_folder import csv_files

        return str(csv_files(folder).get(ticker, Path(folder) / f"{ticker}.csv"))
    if source == "yfinance":
        from feeds.yahoo import cache_file

        return str(cache_file(folder or ROOT / "cache" / "yfinance", ticker))
    return f"the embedded data of {ticker}"


def early_end_note(config: dict, early: dict, end: pd.Timestamp) -> str | None:
    """A sentence naming the files that end before the data's last day, or None."""
    if not early:
        return None
    shown = "; ".join(f"{stock_file(config, t)} ends {d.date()}" for t, d in sorted(early.items())[:10])
    return (
        f"{len(early)} stock file(s) end before the data's last day {end.date()}: {shown}. A file cut short or "
        f"not updated is not revised data: bring it up to date (those stocks are not traded after their last day)"
    )


def _json(obj) -> str:
    from core.io import json_default

    return json.dumps(obj, indent=2, default=json_default) + "\n"


# ============================================================================ step
@dataclass
class StepResult:
    status: str  # "stepped", "unchanged", "diverged"
    date: str | None = None
    messages: list = field(default_factory=list)
    divergences: list = field(default_factory=list)
    replay: Replay | None = None


def check_drift(path: Path, state: dict) -> list[str]:
    """Every difference between what the account froze and what a step would use now."""
    account, config = state["account"], state["config"]
    problems = []
    for entry in model_entries(account):
        model_copy = path / entry["dir"]
        if not model_copy.is_dir() or tree_sha256(model_copy) != entry["sha256"]:
            problems.append(
                f"the model artifact {model_copy} changed since it was frozen "
                f"(sha256 {entry['sha256'][:16]}...); restore it"
            )
        source = Path(entry["source"]) if entry.get("source") else None
        if source is not None and source.is_dir() and tree_sha256(source) != entry["sha256"]:
            problems.append(f"the model at {source} (the account's source) is not the one frozen at init anymore")
    if config_sha256(config) != account["config_sha256"]:
        problems.append(f"{state['dir'] / 'config.json'} was edited after it was frozen")
    try:
        now = resolve_config(account["config_source"])
    except ConfigError as exc:
        now = None
        problems.append(f"the configuration cannot be resolved as at init ({exc})")
    if now is not None and now != config:
        changed = sorted(_diff_keys(config, now))
        problems.append(f"the configuration changed since init: {', '.join(changed[:8])}")
    if code_version() != account["code_version"]:
        problems.append(f"the code version changed ({account['code_version']} at init, {code_version()} now)")
    return problems


def _diff_keys(a, b, prefix=""):
    for key in set(a) | set(b):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            yield from _diff_keys(va, vb, f"{prefix}{key}.")
        elif va != vb:
            yield f"{prefix}{key}: {va!r} -> {vb!r}"


def refresh_data(account: dict, config: dict, downloader=None, today=None) -> MarketData:
    """Bring the data up to date: the yfinance cache is updated (only missing dates are fetched), a
    CSV folder is simply read again; the embedded data never changes. downloader, today: as in
    feeds.yahoo.download_to_cache (tests pass a fake yfinance and the date)."""
    if config["data"].get("source") == "yfinance":
        from feeds import download_to_cache

        cache = config["data"].get("dir") or str(ROOT / "cache" / "yfinance")
        report = download_to_cache(
            account["tickers"],
            account["download_start"],
            cache_dir=cache,
            benchmark=config["data"].get("benchmark") or "SPY",
            vix=account["vix"],
            downloader=downloader,
            today=today,
        )
        if report.failed:
            raise DataError(f"yfinance update of {cache} failed: {report.summary()}")
    return load_data(config)


def step(
    root,
    name: str,
    rebase: bool = False,
    tearsheet: bool = True,
    downloader=None,
    today=None,
    sell_all: bool = False,
    progress: bool = False,
) -> StepResult:
    """Replay the account's strategy up to the newest bar and write its new state (see module doc).
    rebase: start a new generation (refused while the book holds positions, unless sell_all)."""
    path = account_dir(root, name)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such paper account; create it with 'paper init {name} --start DATE'")
    with account_lock(path):
        state = read_state(path)
        problems = check_drift(path, state)
        fetch = {"downloader": downloader, "today": today}
        if sell_all and not rebase:
            raise ConfigError("--sell-all goes with --rebase (it sells the old generation's positions)")
        if rebase:
            return _rebase(path, state, problems, tearsheet, fetch, sell_all, progress)
        if problems:
            raise ConfigError(
                f"paper account {name}: refusing to step, "
                + "; ".join(problems)
                + f". The account's decisions would not be comparable. Undo the change, or start a new "
                f"generation from today's book with 'paper step {name} --rebase'"
            )
        return _step(path, state, tearsheet, fetch=fetch, progress=progress)


def _step(
    path: Path, state: dict, tearsheet: bool, rebase_rows: list | None = None, fetch=None, progress=False
) -> StepResult:
    account, config = json.loads(json.dumps(state["account"])), state["config"]
    gen = account["generations"][-1]
    data = refresh_data(account, config, **(fetch or {}))
    end = min(data.prices.dates[-1], data.benchmark.index[-1])
    fingerprint = data_fingerprints(data, [end])[str(end.date())]
    journal = state["journal"]
    mine = [r for r in journal if int(r["generation"]) == account["generation"]]
    last = mine[-1] if mine else None
    if last is not None and rebase_rows is None:
        if pd.Timestamp(last["date"]) > end:
            raise DataError(
                f"the data ends {end.date()}, before the account's last step {last['date']}; "
                "has the data source lost rows?"
            )
        # a state without its book or orders (deleted to rebuild them) is written again below
        same = last["date"] == str(end.date()) and last["data_fingerprint"] == fingerprint
        if same and all((state["dir"] / f).is_file() for f in REBUILT_BY_STEP):
            return StepResult(
                "unchanged",
                last["date"],
                [f"nothing changed: already stepped on {last['date']} with the same data ({fingerprint})"],
            )
    start = pd.Timestamp(gen["start"])
    if end < start:
        raise DataError(f"the data ends {end.date()}, before the generation's start {start.date()}")
    model, refits = _model_for(path, account, config, data, start, end, progress)
    params = strategy_params(config)
    refuse_costs_paper_cannot_book(config)
    run = replay(model, data, start, end, params, float(gen["cash"]), float(config["backtest"]["commission"]))
    by_date = {d["date"]: d for d in run.days}

    recorded = {r["date"]: r for r in mine}
    divergences = _divergences(recorded, by_date)
    early = early_end_note(config, ended_early(data, end), end)
    if divergences:
        return StepResult(
            "diverged",
            str(end.date()),
            [
                f"revised data would change {len(divergences)} past decision(s); nothing was written. The journal "
                "keeps what was decided. To accept the revised data, start a new generation with --rebase"
            ]
            + ([early] if early else []),
            divergences,
            run,
        )

    new_rows = _new_journal_rows(run, data, recorded, end, fingerprint, account)
    full_journal = journal + new_rows
    orders = (rebase_rows or []) + size_orders(
        run.state,
        run.cash,
        run.closes,
        run.commission,
        float(params.get("position_pct", 0.2)),
        float(params.get("min_cash", 1000.0)),
    )
    book = book_dict(account, run, fingerprint)
    files = {
        "journal.csv": csv_text(full_journal, JOURNAL_COLUMNS),
        "orders_next_open.csv": csv_text(orders, ORDER_COLUMNS),
        "book.json": _json(book),
    }
    if rebase_rows is not None or refits:
        files["account.json"] = _json(account)
    if rebase_rows is not None:
        files["config.json"] = _json(config)
    if tearsheet:
        files["tearsheet.html"] = tearsheet_html(full_journal, data, account)
    commit_state(path, files, copy_from=state["dir"])
    fresh = sum(1 for r in new_rows if r["date"] not in recorded)
    what = f"{fresh} new day(s)" + (
        "" if fresh == len(new_rows) else f"; revised data for {end.date()}, its decisions unchanged (journalled again)"
    )
    return StepResult(
        "stepped",
        str(end.date()),
        refits
        + [f"stepped to {end.date()}: {what}; value {run.value:,.2f}, {len(orders)} order(s) for the next open"]
        + ([early] if early else []),
        [],
        run,
    )


def _model_for(path: Path, account: dict, config: dict, data, start, end, progress: bool) -> tuple:
    """(model, refit messages): the account's model; with refits, every fold due by `end` is
    trained first (into account["folds"]), and models.selection.check_unseen proves that no day
    the replay scores lies inside the fit windows of the fold that scores it."""
    if account.get("refit", "none") == "none":
        return account_model(path, account, config), []
    from models.selection import check_unseen

    refits = train_due_folds(path, account, config, data, end, progress)
    model = account_model(path, account, config)
    check_unseen(model, data.benchmark.loc[start:end].index, purpose=f"trade paper account {account['name']}")
    return model, refits


def _divergences(recorded: dict, by_date: dict) -> list[dict]:
    """History is never rewritten: every journalled decision must come out the same again. The
    rows of those that do not (date, ticker, old and new decision)."""
    divergences = []
    for date, row in recorded.items():
        new = by_date.get(date)
        new_text = None if new is None else new["decisions"]
        if new_text != row["decisions"]:
            divergences += _divergence_rows(date, row["decisions"], new_text)
    return divergences


def _new_journal_rows(run, data, recorded: dict, end, fingerprint: str, account: dict) -> list[dict]:
    """A journal row for every replayed day not journalled yet, and for the last day again when
    its data was revised (its decisions unchanged, checked before)."""
    last = str(end.date())
    prints = data_fingerprints(data, [d["date"] for d in run.days if d["date"] not in recorded or d["date"] == last])
    rows = []
    for day in run.days:
        if day["date"] in recorded and not (
            day["date"] == last and recorded[day["date"]]["data_fingerprint"] != fingerprint
        ):
            continue
        rows.append(
            {
                "generation": account["generation"],
                "date": day["date"],
                "cash": day["cash"],
                "value": day["value"],
                "benchmark": float(data.benchmark.loc[: day["date"]].iloc[-1]),
                "holdings": " ".join(f"{t}:{s}" for t, s in day["holdings"].items() if s),
                "decisions": day["decisions"],
                "data_fingerprint": prints[day["date"]],
                "model_sha256": model_sha256_on(account, day["date"]),
            }
        )
    return rows


def _divergence_rows(date, old, new) -> list[dict]:
    def parse(text):
        out = {}
        for item in (text or "").split("|"):
            if item:
                action, ticker, rest = item.split(" ", 2)
                out[ticker] = f"{action} {rest}"
        return out

    before, after = parse(old), parse(new)
    if new is None:
        return [{"date": date, "ticker": "*", "old": old or "(none)", "new": "(no such day in the data now)"}]
    return [
        {"date": date, "ticker": t, "old": before.get(t, "(none)"), "new": after.get(t, "(none)")}
        for t in sorted(set(before) | set(after))
        if before.get(t) != after.get(t)
    ]


def book_dict(account: dict, run: Replay, fingerprint: str) -> dict:
    positions = {}
    for ticker, h in sorted(run.state["holdings"].items()):
        close = run.closes.get(ticker, math.nan)
        positions[ticker] = {**h, "close": close, "market_value": h["shares"] * close}
    return {
        "account": account["name"],
        "generation": account["generation"],
        "date": run.state["date"],
        "cash": run.cash,
        "value": run.value,
        "positions": positions,
        "data_fingerprint": fingerprint,
        "model_sha256": model_sha256_on(account, run.state["date"]),
        "code_version": account["code_version"],
    }


def tearsheet_html(journal: list[dict], data: MarketData, account: dict) -> str | None:
    """QuantStats' report of the account's daily values (the journal, every generation) so far."""
    from analyzers.tearsheet import benchmark_returns, strategy_returns, write_tearsheet

    rows = {r["date"]: float(r["value"]) for r in journal}  # the last line of a date wins
    if len(rows) < 3:
        return None
    returns = strategy_returns(list(rows), list(rows.values()), float(account["generations"][0]["cash"]))
    bench = benchmark_returns(data.benchmark, returns.index)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = write_tearsheet(
            returns,
            bench,
            Path(tmp) / "tearsheet.html",
            title=f"paper account {account['name']}: AlphaRankStrategy vs {data.benchmark_name}",
            strategy_title="paper account",
        )
        return None if out is None else out.read_text()  # None: a flat account (no varying returns) has none


def _rebase(
    path: Path, state: dict, problems: list, tearsheet: bool, fetch: dict, sell_all: bool, progress: bool
) -> StepResult:
    """A new generation from today's book: the current configuration, model and code are frozen
    again; it starts at the book's date with the book's value as cash (flat). With open positions
    it refuses, saying so, unless sell_all: then the old generation's positions are to be sold at
    the next open (orders with reason 'rebase'). A refitting account plans its folds again and
    trains the one that scores the new start."""
    book = state["book"]
    if book is None:
        raise ConfigError(f"{path}: nothing to rebase, the account has not stepped yet; remove {path} and init again")
    held = {t: p["shares"] for t, p in book["positions"].items() if p["shares"]}
    if held and not sell_all:
        raise ConfigError(_rebase_refusal(path.name, state["account"]["generation"] + 1, book, held))
    account = json.loads(json.dumps(state["account"]))
    config = resolve_config(account["config_source"])
    if account.get("refit", "none") != "none":
        months = account["walk_forward"]["refit_every_months"]
        account |= {"walk_forward": refit_plan(config, load_data(config), months), "folds": []}
    else:
        _rebase_model(path, account)
    account["generation"] += 1
    account["generations"].append(
        {
            "generation": account["generation"],
            "start": book["date"],
            "cash": float(book["value"]),
            "reason": "rebase: " + ("; ".join(problems) or "asked for"),
        }
    )
    account["config_sha256"] = config_sha256(config)
    account["code_version"] = code_version()
    sells = [
        {
            "ticker": t,
            "action": "SELL",
            "shares": shares,
            "price": book["positions"][t]["close"],
            "score": "",
            "rank": "",
            "reason": "rebase",
        }
        for t, shares in held.items()
    ]
    new_state = {**state, "account": account, "config": config}
    result = _step(path, new_state, tearsheet, rebase_rows=sells, fetch=fetch, progress=progress)
    result.messages.insert(
        0,
        f"generation {account['generation']} starts {book['date']} with cash "
        f"{book['value']:,.2f} (the old book's value); {len(sells)} old position(s) to sell",
    )
    return result


def _rebase_refusal(name: str, generation: int, book: dict, held: dict) -> str:
    listed = ", ".join(f"{t} {n}" for t, n in held.items())
    return (
        f"paper account {name}: refusing to rebase, the book of {book['date']} holds {len(held)} position(s) "
        f"({listed}). A rebase starts generation {generation} flat, with the book's value {book['value']:,.2f} "
        "as cash: it would sell these at the next open (orders with reason 'rebase', their proceeds at the "
        f"open may differ from the close they are valued at). To do that, run 'paper step {name} --rebase "
        "--sell-all'; to keep them, undo the change and step without --rebase"
    )


def _rebase_model(path: Path, account: dict) -> None:
    """The fixed model of the new generation: its source as it is now, copied in if it changed."""
    source = Path(account["model"]["source"])
    model_dir = source if source.is_dir() else path / account["model"]["dir"]
    sha = tree_sha256(model_dir)
    if sha != account["model"]["sha256"]:
        load_model(model_dir)  # a damaged artifact is refused before it is copied in
        target = path / f"models/{sha[:16]}"
        if not target.exists():
            with atomic_dir(target) as tmp:
                shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
        account["model"] = {"dir": f"models/{sha[:16]}", "sha256": sha, "source": str(source)}


# ============================================================================ status
def refit_lines(account: dict) -> list[str]:
    """The refit schedule, the folds trained so far and the next refit date (none without refits)."""
    if account.get("refit", "none") == "none":
        return []
    plan = account["walk_forward"]
    folds = ", ".join(f"{f['number']} (refit {f['refit_date']}, sha256 {f['sha256'][:16]})" for f in account["folds"])
    number = max(f["number"] for f in account["folds"]) + 1
    upcoming = fold_split(plan, number).test_start
    return [f"  refits {account['refit']}: folds {folds}; the next is trained on the first step on or after {upcoming}"]


def status_text(root, name: str) -> str:
    path = account_dir(root, name)
    state = read_state(path)
    account, book, journal = state["account"], state["book"], state["journal"]
    lines = [
        f"paper account {name} (generation {account['generation']}, started "
        f"{account['generations'][0]['start']} with {account['generations'][0]['cash']:,.2f})"
    ]
    lines += refit_lines(account)
    if book is None:
        return "\n".join(lines + ["  not stepped yet: run 'paper step " + name + "'"])
    first = journal[0]
    cash0 = float(account["generations"][0]["cash"])
    pnl = book["value"] - cash0
    bench = float(journal[-1]["benchmark"]) / float(first["benchmark"]) - 1.0
    lines.append(f"  book at the close of {book['date']}: value {book['value']:,.2f}, cash {book['cash']:,.2f}")
    lines.append(
        f"  P&L since {first['date']}: {pnl:+,.2f} ({100 * pnl / cash0:+.2f}%); benchmark "
        f"{100 * bench:+.2f}% over the same days"
    )
    if book["positions"]:
        lines.append(f"  {'ticker':8}{'shares':>8}{'close':>12}{'value':>14}  entry       next review")
        for t, p in book["positions"].items():
            review = p["next_review"] or f"in {p['review_in_bars']} bar(s)"
            lines.append(
                f"  {t:8}{p['shares']:>8}{p['close']:>12.2f}{p['market_value']:>14,.2f}  {p['entry']}  {review}"
            )
    else:
        lines.append("  no positions")
    orders = state["orders"]
    lines.append(f"  orders for the next open ({len(orders)}):" if orders else "  no orders for the next open")
    for o in orders:
        lines.append(
            f"    {o['action']:4} {o['ticker']:8} {o['shares']:>6} shares (at the last close "
            f"{float(o['price']):.2f})  {o['reason']}" + (f", rank {o['rank']}" if o["rank"] else "")
        )
    return "\n".join(lines)


# ============================================================================ command line
def parser() -> argparse.ArgumentParser:
    """`run_backtest.py paper`'s options; the shared ones (--no-progress, --model-store) come from
    core.cli.add_shared_options, so they mean what they mean for every command."""
    from core.cli import add_shared_options

    p = argparse.ArgumentParser(
        prog="run_backtest.py paper",
        description="A daily paper-trading account whose state equals the backtest (docs/paper.md).",
    )
    p.add_argument("--root", default=str(ACCOUNTS), help="the accounts folder (default: paper/)")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("init", help="create paper/NAME with the frozen configuration, model and data source")
    i.add_argument("name")
    i.add_argument(
        "--start",
        required=True,
        type=day_argument("--start"),
        help="first trading day of the account (its first decisions)",
    )
    i.add_argument("--cash", type=float, help="starting cash (default: the config's backtest.cash)")
    i.add_argument("--preset", choices=["default", "seed"], default="default")
    i.add_argument("--config", metavar="FILE.toml")
    i.add_argument(
        "--model", metavar="DIR", help="a saved model artifact (default: the preset's saved or trained model)"
    )
    i.add_argument("--data", metavar="DIR", help="a CSV folder, re-read at every step")
    i.add_argument("--benchmark", metavar="TICKER")
    i.add_argument("--source", choices=["embedded", "csv", "yfinance"])
    i.add_argument(
        "--refit",
        choices=list(REFIT_CHOICES),
        help="none (default): the model stays the one frozen at init; yearly: the account trains a walk-forward "
        "fold on the first step after each refit date, as --walk-forward does in a backtest (docs/paper.md)",
    )
    i.add_argument("--refit-every-months", type=int, metavar="N", help="refit every N months instead (yearly = 12)")
    add_shared_options(i, "--model-store", "--no-progress")
    s = sub.add_parser("step", help="bring the data up to date and replay to the newest bar")
    s.add_argument("name")
    s.add_argument(
        "--rebase",
        action="store_true",
        help="start a new generation from today's book (after a configuration, model or code change); "
        "refused while the book holds positions, unless --sell-all",
    )
    s.add_argument(
        "--sell-all",
        action="store_true",
        help="with --rebase: start the new generation flat and sell the old positions at the next open",
    )
    s.add_argument("--no-tearsheet", action="store_true", help="skip the QuantStats report (faster)")
    add_shared_options(s, "--no-progress")
    t = sub.add_parser("status", help="print the book, P&L against the benchmark and the next orders")
    t.add_argument("name")
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "init":
            path = init(
                args.root,
                args.name,
                args.start,
                args.cash,
                args.preset,
                args.config,
                args.model,
                args.data,
                args.benchmark,
                args.source,
                args.refit,
                args.model_store,
                args.refit_every_months,
                progress=not args.no_progress,
            )
            print(f"paper account created: {path}; next: run_backtest.py paper step {args.name}")
            return 0
        if args.command == "step":
            result = step(
                args.root,
                args.name,
                rebase=args.rebase,
                tearsheet=not args.no_tearsheet,
                sell_all=args.sell_all,
                progress=not args.no_progress,
            )
            for message in result.messages:
                print(message)
            if result.divergences:
                print(f"{'date':12}{'ticker':8}{'journal (kept)':28}revised data would decide", file=sys.stderr)
                for d in result.divergences:
                    print(f"{d['date']:12}{d['ticker']:8}{d['old']:28}{d['new']}", file=sys.stderr)
                return 3
            return 0
        print(status_text(args.root, args.name))
        return 0
    except AlphaPluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
