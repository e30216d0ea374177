"""Walk-forward retraining: one model per refit date, each scoring only the dates after it.

    model = WalkForwardModel(ModelConfig(...), first_test="2017-01-01", last_test="2022-12-31",
                             refit_every_months=12, window="expanding", model="lstm")
    model.fit(prices, benchmark)     # folds are independent: by default one process per usable CPU
    scores = model.predict(prices, benchmark)        # fold i scores the dates in [d_i, d_i+1)
    print(model.fold_table())
    model.save("models/store/walkforward"); load_any("models/store/walkforward")

Fold i, refit on date d_i (first_test, first_test + refit_every_months, ...):
- validation: the `valid_years` before d_i, i.e. [d_i - valid_years, d_i - 1 day];
- training: from the config's train_start ("expanding") or d_i - valid_years - rolling_years
  ("rolling") to the day before validation starts;
- scores: the dates in [d_i, d_i+1); the last fold also scores everything after it.
- learning: the base config's, except `train_stride` (default 1): a fold then trains on every
  train_stride-th of its training windows per ticker (config.stride x train_stride) and validates
  on the base config's validation windows, all of them at stride 1, so its early stopping sees the
  same validation set whatever train_stride is. The sweep's selection folds use 2
  ([walk_forward] selection_train_stride; docs/selection.md measures what it costs them).
Each fold is an ordinary fit of a zoo model (models.registry; the LSTM by default) with that Split,
so labels whose horizon crosses the end of training (validation) are purged, and its
`report_.windows["last_label_date"]` (the last date any label it learned from reached) lies before
d_i. Each fold is also handed only the prices up to the end of its validation period, so it could
not see a later price even by mistake.

WalkForwardModel has the one model interface (models.base: predict, warmup, features_, config, save,
load), so the alpha indicators and the rest of the project use it unchanged; windows, column checks,
the last_only / start filters and batched scoring are models.base's, shared with every zoo model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import ArtifactError, ConfigError
from core.io import atomic_dir
from core.pool import auto_workers
from feeds.panel import PricePanel, series_fingerprint
from models.artifact import checked, read_manifest, with_checksums
from models.base import BaseAlphaModel, FitReport, check_columns, scatter_scores, select_ends, set_threads
from models.config import ModelConfig
from models.dataset import Split
from models.registry import load_model, make_model, model_from_state

FORMAT_VERSION = 1
KIND = "lstm-alpha-walkforward"
BUNDLE = "bundle.json"
WINDOWS = ("expanding", "rolling")


# ---------------------------------------------------------------------- the fold plan (pure)
def _day(ts) -> str:
    return str(pd.Timestamp(ts).date())


def refit_dates(first_test, last_test, refit_every_months: int) -> list[pd.Timestamp]:
    """first_test, first_test + m months, ... up to last_test."""
    first, last = pd.Timestamp(first_test), pd.Timestamp(last_test)
    dates, k = [], 0
    while (d := first + pd.DateOffset(months=k * refit_every_months)) <= last:
        dates.append(d)
        k += 1
    return dates


def check_whole(checks: dict) -> None:
    """Each value a whole number >= 1 (the plan's counts), or one ConfigError naming it."""
    for name, value in checks.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"WalkForwardModel parameter {name}={value!r}: give a whole number >= 1")


def fold_learning(config: ModelConfig, train_stride: int) -> ModelConfig:
    """A fold's learning: `config` with every train_stride-th of its training windows per ticker;
    its validation windows stay the base config's (valid_stride pinned to them), so a fold's
    validation loss, and the epoch it chooses, are measured on the same windows at any train_stride."""
    check_whole({"train_stride": train_stride})
    if train_stride == 1:
        return config
    train, valid = config.strides
    return config.replace(stride=train * int(train_stride), valid_stride=valid)


def plan_folds(
    train_start,
    first_test,
    last_test,
    refit_every_months: int = 12,
    window: str = "expanding",
    rolling_years: int = 10,
    valid_years: int = 3,
) -> list[Split]:
    """One Split per refit date; its test period is the range of dates that fold scores."""
    check_whole({"refit_every_months": refit_every_months, "rolling_years": rolling_years, "valid_years": valid_years})
    if window not in WINDOWS:
        raise ConfigError(f"WalkForwardModel parameter window={window!r}: use one of {WINDOWS}")
    if pd.Timestamp(first_test) > pd.Timestamp(last_test):
        raise ConfigError(f"WalkForwardModel: first_test={first_test} comes after last_test={last_test}")
    dates = refit_dates(first_test, last_test, refit_every_months)
    one_day = pd.Timedelta(days=1)
    splits = []
    for i, d in enumerate(dates):
        valid_start = d - pd.DateOffset(years=valid_years)
        train_start = (
            pd.Timestamp(train_start) if window == "expanding" else d - pd.DateOffset(years=valid_years + rolling_years)
        )
        test_end = dates[i + 1] - one_day if i + 1 < len(dates) else pd.Timestamp(last_test)
        if train_start >= valid_start:
            raise ConfigError(
                f"WalkForwardModel fold {i} (refit {_day(d)}): the training period would start on "
                f"{_day(train_start)}, not before validation starts on {_day(valid_start)}; move "
                "split.train_start earlier, first_test later, or lower valid_years"
            )
        splits.append(
            Split(
                train_start=_day(train_start),
                train_end=_day(valid_start - one_day),
                valid_start=_day(valid_start),
                valid_end=_day(d - one_day),
                test_start=_day(d),
                test_end=_day(test_end),
            )
        )
    return splits


def fold_number(first_test, refit_every_months: int, day) -> int:
    """The fold that scores `day`: the number of the last refit date on or before it (-1 before the first)."""
    return len(refit_dates(first_test, day, refit_every_months)) - 1


def fold_due(plan: dict, start, newest, trained) -> list[int]:
    """The folds an open-ended plan (first_test, refit_every_months) must have trained to score
    every day from `start` to `newest` and does not have yet (`trained`: fold numbers): the fold
    that scores `start` and every later one whose refit date has come by `newest`. A paper
    account calls this on every step; a fold is due on the first step whose newest bar reaches
    its refit date."""
    first = fold_number(plan["first_test"], plan["refit_every_months"], start)
    if first < 0:
        raise ConfigError(
            f"the walk-forward plan's first refit is {_day(plan['first_test'])}, after {_day(start)}: no fold "
            "could score that day; start on or after the first refit, or move the split's test_start earlier"
        )
    last = fold_number(plan["first_test"], plan["refit_every_months"], newest)
    return [n for n in range(first, last + 1) if n not in set(trained)]


def fold_split(plan: dict, number: int) -> Split:
    """Fold `number` of an open-ended plan (train_start, first_test, refit_every_months, window,
    rolling_years, valid_years), by plan_folds itself: it scores [its refit date, the next refit
    date - 1 day], as every fold but the last of a WalkForwardModel over a longer span does."""
    m = plan["refit_every_months"]
    next_refit = pd.Timestamp(plan["first_test"]) + pd.DateOffset(months=(number + 1) * m)
    splits = plan_folds(
        plan["train_start"],
        plan["first_test"],
        next_refit - pd.Timedelta(days=1),
        m,
        plan.get("window", "expanding"),
        plan.get("rolling_years", 10),
        plan.get("valid_years", 3),
    )
    return splits[number]


@dataclass
class Fold:
    """One refit: its Split (test = the dates it scores) and, once fitted, its model."""

    number: int
    split: Split
    model: BaseAlphaModel | None = None

    @property
    def score_start(self) -> pd.Timestamp:
        return pd.Timestamp(self.split.test_start)

    @property
    def windows(self) -> dict:
        """The fit windows of the fitted fold (first/last sample date of train and valid, the
        scaler's rows, and last_label_date)."""
        return dict(self.model.report_.windows) if self.model is not None and self.model.report_ else {}

    @property
    def last_label_date(self) -> pd.Timestamp | None:
        day = self.windows.get("last_label_date")
        return pd.Timestamp(day) if day else None


# ---------------------------------------------------------------------- one fold's fit (runs in workers)
def fit_fold(
    config: ModelConfig, kind: str, params: dict, prices: PricePanel, benchmark: pd.Series, vix=None, progress=False
):
    """The walk-forward rule for one fold: a fit of zoo model `kind` with the fold's Split
    (`config.split`), handed only the prices up to its validation end, so no later price, and no
    label reaching past that day, can enter it. A backtest's folds and a paper account's refits
    are both this call."""
    set_threads(config.threads)
    cut = pd.Timestamp(config.split.valid_end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropped features are reported once by the caller
        return make_model(kind, config, **params).fit(
            prices.between(None, cut), benchmark.loc[:cut], None if vix is None else vix.loc[:cut], progress=progress
        )


def _fit_payload(task: tuple, prices: PricePanel, benchmark: pd.Series, vix) -> dict:
    """fit_fold (task = (config, model name, model params)); return its manifest and state files
    as plain dicts and bytes (models.artifact), so no torch or LightGBM object crosses a process
    boundary and every engine hands back the same bits."""
    config, kind, params = task
    return with_checksums(fit_fold(config, kind, params, prices, benchmark, vix).state())


_WORKER_DATA: dict = {}


def _init_worker(prices, benchmark, vix, threads):
    # the price panel crosses to each worker once, not once per fold
    set_threads(threads)
    _WORKER_DATA.update(prices=prices, benchmark=benchmark, vix=vix)


def _fit_in_worker(task: tuple) -> dict:
    return _fit_payload(task, _WORKER_DATA["prices"], _WORKER_DATA["benchmark"], _WORKER_DATA["vix"])


def _fit_in_ray(task: tuple, prices, benchmark, vix) -> dict:
    return _fit_payload(task, prices, benchmark, vix)


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def thread_env(threads: int):
    """Children spawned inside inherit these: without them each worker's BLAS/OpenMP pools take
    every core and the workers fight over them (measured: a fold fit 1.5-2x slower)."""
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(threads) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def worker_pythonpath() -> str:
    """PYTHONPATH for spawned or Ray workers: the project folder first, so they import this code."""
    root = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


# ---------------------------------------------------------------------- the model
class WalkForwardModel:
    """Walk-forward model: refit every `refit_every_months` on an expanding or rolling window.
    `model` names the zoo model each fold fits (models.registry), `model_params` its own
    hyperparameters.

    `config` is the base ModelConfig; after construction `self.config.split` summarises the plan:
    the first fold's train/valid periods and test = [first_test, last_test], the span where every
    score is out of sample. The folds' own Splits are in `self.folds[i].split`."""

    def __init__(
        self,
        config: ModelConfig | None = None,
        first_test="2017-01-01",
        last_test="2022-12-31",
        refit_every_months: int = 12,
        window: str = "expanding",
        rolling_years: int = 10,
        valid_years: int = 3,
        model: str = "lstm",
        model_params: dict | None = None,
        train_stride: int = 1,
    ):
        self.model_name, self.model_params = model, dict(model_params or {})
        check_whole({"train_stride": train_stride})
        base = make_model(model, config or ModelConfig(), **self.model_params).config  # resolves the feature list
        splits = plan_folds(
            base.split.train_start, first_test, last_test, refit_every_months, window, rolling_years, valid_years
        )
        self.params = {
            "first_test": _day(first_test),
            "last_test": _day(last_test),
            "refit_every_months": int(refit_every_months),
            "window": window,
            "rolling_years": int(rolling_years),
            "valid_years": int(valid_years),
        }
        if train_stride != 1:  # recorded only when it changes how a fold learns: the bundles (and
            self.params["train_stride"] = int(train_stride)  # store paths) of stride 1 stay valid
        first = splits[0]
        self.config = base.replace(
            split=Split(
                first.train_start,
                first.train_end,
                first.valid_start,
                first.valid_end,
                self.params["first_test"],
                self.params["last_test"],
            )
        )
        self.folds = [Fold(i, split) for i, split in enumerate(splits)]
        self.data_fingerprint_: dict = {}
        self.meta_: dict = {}
        self.fit_seconds_: float = 0.0
        self.fit_workers_: int | str | None = None  # processes that trained the folds ("ray": Ray tasks)

    @classmethod
    def from_folds(
        cls,
        config: ModelConfig,
        plan: dict,
        models: dict,
        model: str = "lstm",
        model_params: dict | None = None,
    ) -> "WalkForwardModel":
        """A WalkForwardModel from folds fitted one by one (a paper account's refits): `plan` as
        the constructor's keywords (first_test, last_test, refit_every_months, window, ...),
        `models` {fold number: fitted model}, a run of consecutive folds that ends with the plan's
        last. Folds before the first one given are left out: dates before it get no score."""
        out = cls(config, **plan, model=model, model_params=model_params)
        numbers = sorted(models)
        last = out.folds[-1].number
        if not numbers or numbers != list(range(numbers[0], last + 1)):
            raise ConfigError(
                f"WalkForwardModel.from_folds: folds {numbers} given; the plan {plan} needs a run of "
                f"consecutive folds ending with its last, fold {last}"
            )
        out.folds = out.folds[numbers[0] :]
        out._attach([models[n] for n in numbers])
        return out

    def fold_config(self, fold: Fold) -> ModelConfig:
        """The config fold `fold` is fitted with: its Split and the plan's learning (fold_learning)."""
        return fold_learning(self.config.replace(split=fold.split), self.params.get("train_stride", 1))

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        prices: PricePanel,
        benchmark: pd.Series,
        vix: pd.Series | None = None,
        progress: bool = True,
        workers: int | None = None,
        ray: bool = False,
    ) -> "WalkForwardModel":
        """Fit every fold. workers: processes ('spawn'); None or 0 (the default) as many as fill the
        usable CPUs at config.threads torch threads each (core.pool.auto_workers); 1 fits in this process;
        ray=True: Ray tasks. Every engine gives the same weights: each fold is fitted with the
        same seed and config.threads whichever process runs it."""
        if workers is None or (workers == 0 and not isinstance(workers, bool)):
            workers = auto_workers(self.config.threads, len(self.folds))
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ConfigError(f"WalkForwardModel.fit: workers={workers!r}; give a whole number >= 1")
        t0 = time.perf_counter()
        configs = [(self.fold_config(f), self.model_name, self.model_params) for f in self.folds]
        if ray:
            payloads = self._fit_ray(configs, prices, benchmark, vix, progress)
        elif workers > 1 and len(configs) > 1:
            payloads = self._fit_processes(configs, prices, benchmark, vix, progress, workers)
        else:
            workers = 1
            payloads = [_fit_payload(c, prices, benchmark, vix) for c in progress_bar(configs, progress)]
        models = [
            model_from_state(checked(p, f"walk-forward fold {i}"), where=f"walk-forward fold {i}")
            for i, p in enumerate(payloads)
        ]
        self._attach(models)
        dropped = sorted({n for m in models for n in m.report_.dropped_features})
        if dropped:
            warnings.warn(
                f"features {dropped} need columns this data does not have ({sorted(prices.available)}); "
                f"the folds were trained without them, on {self.features_}",
                stacklevel=2,
            )
        self.data_fingerprint_ = {
            "prices": prices.fingerprint(),
            "benchmark": series_fingerprint(benchmark),
            "tickers": prices.tickers,
            "first_date": _day(prices.dates[0]),
            "last_date": _day(prices.dates[-1]),
        }
        self.fit_seconds_ = time.perf_counter() - t0
        self.fit_workers_ = "ray" if ray else int(workers)
        return self

    def _fit_processes(self, configs, prices, benchmark, vix, progress, workers) -> list[dict]:
        import concurrent.futures as cf

        from core.pool import process_pool

        setup = (prices, benchmark, vix, self.config.threads)
        with (
            thread_env(self.config.threads),
            process_pool(workers, len(configs), "spawn", _init_worker, setup) as pool,
        ):
            # the longest training windows first (an expanding window's last folds), so the short
            # ones fill the gaps at the end instead of one long fold running alone
            order = sorted(range(len(configs)), key=lambda i: _train_days(configs[i][0]), reverse=True)
            futures = {pool.submit(_fit_in_worker, configs[i]): i for i in order}
            payloads: list = [None] * len(configs)
            # as each fold finishes, so the bar counts folds done ("3/10"), not folds in order
            for future in progress_bar(cf.as_completed(futures), progress, len(configs), workers):
                payloads[futures[future]] = future.result()
            return payloads

    def _fit_ray(self, configs, prices, benchmark, vix, progress) -> list[dict]:
        from core.pool import ray_session

        with ray_session(2) as ray_module:
            # workers find the project through PYTHONPATH whatever directory they start in; Ray
            # merges this with the job's own runtime_env (a cluster's working_dir still applies)
            task = ray_module.remote(num_cpus=1)(_fit_in_ray).options(
                runtime_env={"env_vars": {"PYTHONPATH": worker_pythonpath()}}
            )
            shared = [ray_module.put(prices), ray_module.put(benchmark), ray_module.put(vix)]
            refs = [task.remote(c, *shared) for c in configs]
            return [ray_module.get(r) for r in progress_bar(refs, progress)]

    def _attach(self, models: list[BaseAlphaModel]) -> None:
        features = [list(m.features_) for m in models]
        if any(f != features[0] for f in features):
            raise ConfigError(
                f"the walk-forward folds were trained on different features {features}: "
                "every fold must see the same columns; give data that has them in every period"
            )
        for fold, model in zip(self.folds, models):
            fold.model = model

    # ------------------------------------------------------------------ the model interface
    def _check_fitted(self):
        if any(f.model is None for f in self.folds):
            raise ConfigError(
                "this WalkForwardModel is not fitted: call fit(prices, benchmark) or WalkForwardModel.load(path)"
            )

    @property
    def features_(self) -> list[str] | None:
        return None if self.folds[0].model is None else list(self.folds[0].model.features_)

    @property
    def warmup(self) -> int:
        self._check_fitted()
        return max(f.model.warmup for f in self.folds)

    @property
    def report_(self) -> FitReport:
        """A conservative summary: last_label_date is the latest over all folds (the last fold's);
        per-fold windows are in fold_table() and folds[i].windows."""
        self._check_fitted()
        reports = [f.model.report_ for f in self.folds]

        def span(name):
            return [min(r.windows[name][0] for r in reports), max(r.windows[name][1] for r in reports)]

        return FitReport(
            history=[],
            best_epoch=reports[-1].best_epoch,
            n_samples={k: sum(r.n_samples[k] for r in reports) for k in ("train", "valid")},
            windows={
                "train": span("train"),
                "valid": span("valid"),
                "folds": len(reports),
                "last_label_date": max(r.windows["last_label_date"] for r in reports),
            },
            dropped_features=reports[0].dropped_features,
            seconds=self.fit_seconds_,
        )

    def fingerprint(self) -> str:
        """sha256 over the plan, the model name and every fold's period and fitted state."""
        from models.score_cache import model_fingerprint

        return model_fingerprint(self)

    def fold_index(self, dates) -> np.ndarray:
        """For each date the number of the fold that scores it; -1 before the first fold's test period."""
        starts = np.array([f.score_start for f in self.folds], dtype="datetime64[ns]")
        numbers = np.array([f.number for f in self.folds])
        pos = np.searchsorted(starts, np.asarray(pd.DatetimeIndex(dates), dtype="datetime64[ns]"), side="right") - 1
        return np.where(pos >= 0, numbers[np.maximum(pos, 0)], -1)

    def predict(
        self,
        prices: PricePanel,
        benchmark: pd.Series,
        vix: pd.Series | None = None,
        last_only: bool = False,
        start=None,
    ) -> pd.DataFrame:
        """Scores on prices.dates x prices.tickers; each date scored by the fold whose test period
        holds it, NaN before the first fold's. Features are computed once; every window runs through
        exactly one fold's scaler and network. last_only and start as in AlphaModel.predict."""
        self._check_fitted()
        first = self.folds[0].model
        check_columns(self.features_, prices, vix)
        set_threads(self.config.threads)
        index = first._windows(prices, benchmark, self.features_, vix)
        ends = select_ends(index, last_only, start)
        owner = self.fold_index(index.row_dates[ends])
        scores = np.full(prices.close.shape, np.nan)
        for fold in self.folds:
            mine = ends[owner == fold.number]
            if len(mine):
                scatter_scores(prices, index, mine, fold.model.scores_for(index, mine), out=scores)
        return pd.DataFrame(scores, index=prices.dates, columns=prices.tickers)

    def fold_table(self) -> pd.DataFrame:
        """One row per fold: its periods, the last label date it learned from, best epoch, samples."""
        rows = []
        for f in self.folds:
            s, r = f.split, (f.model.report_ if f.model is not None else None)
            last = f is self.folds[-1]
            rows.append(
                {
                    "fold": f.number,
                    "train": f"{s.train_start}..{s.train_end}",
                    "valid": f"{s.valid_start}..{s.valid_end}",
                    "test": f"{s.test_start}..{s.test_end}" + (" and later" if last else ""),
                    "last_label_date": r.windows.get("last_label_date") if r else None,
                    "best_epoch": r.best_epoch if r else None,
                    "epochs": len(r.history) if r else None,
                    "n_train": r.n_samples.get("train") if r else None,
                    "n_valid": r.n_samples.get("valid") if r else None,
                }
            )
        return pd.DataFrame(rows).set_index("fold")

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """A directory: bundle.json plus fold_00/, fold_01/, ... each a model artifact; the
        whole directory appears at once (core.io.atomic_dir)."""
        from models.artifact import META, package_versions

        self._check_fitted()
        path = Path(path)
        with atomic_dir(path) as tmp:
            entries = []
            for f in self.folds:
                name = f"fold_{f.number:02d}"
                f.model.save(tmp / name)
                entries.append(
                    {
                        "number": f.number,
                        "dir": name,
                        "split": _split_dict(f.split),
                        "last_label_date": f.windows.get("last_label_date"),
                        "model_json_sha256": _sha256(tmp / name / META),
                    }
                )
            bundle = {
                "format_version": FORMAT_VERSION,
                "kind": KIND,
                "params": self.params,
                "model": self.model_name,
                "model_params": self.model_params,
                "config": self.config.to_dict(),
                "features": self.features_,
                "folds": entries,
                "fit_seconds": round(self.fit_seconds_, 2),
                "fit_workers": self.fit_workers_,
                "data_fingerprint": self.data_fingerprint_,
                "versions": package_versions(),
            }
            (tmp / BUNDLE).write_text(json.dumps(bundle, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path) -> "WalkForwardModel":
        from models.artifact import META

        path = Path(path)
        bundle = read_bundle(path)
        try:
            model = cls(
                ModelConfig.from_dict(bundle["config"]),
                **bundle["params"],
                model=bundle.get("model", "lstm"),
                model_params=bundle.get("model_params"),
            )
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"{path / BUNDLE}: cannot rebuild the walk-forward plan ({exc}); retrain it") from exc
        entries = bundle.get("folds", [])
        first = entries[0].get("number", 0) if entries else 0  # a bundle of from_folds may start later
        model.folds = model.folds[first:]
        if [e.get("split") for e in entries] != [_split_dict(f.split) for f in model.folds]:
            raise ArtifactError(
                f"{path / BUNDLE}: the recorded folds do not match the plan its params give; "
                "the file was edited or written by another version: retrain it"
            )
        models = []
        for entry in entries:
            fold_dir = path / entry["dir"]
            if not (fold_dir / META).is_file() or _sha256(fold_dir / META) != entry.get("model_json_sha256"):
                raise ArtifactError(
                    f"{fold_dir}: missing, or not the fold recorded in {BUNDLE} (checksum differs); "
                    "the bundle is damaged: retrain it"
                )
            fold_model = load_model(fold_dir)
            if _split_dict(fold_model.config.split) != entry["split"]:
                raise ArtifactError(f"{fold_dir}: its split differs from the one recorded in {BUNDLE}; retrain it")
            models.append(fold_model)
        model._attach(models)
        model.data_fingerprint_ = bundle.get("data_fingerprint", {})
        model.fit_seconds_ = bundle.get("fit_seconds") or 0.0
        model.fit_workers_ = bundle.get("fit_workers")
        model.meta_ = bundle
        return model

    def __repr__(self):
        state = "fitted" if all(f.model is not None for f in self.folds) else "not fitted"
        p = self.params
        return (
            f"WalkForwardModel({self.model_name}, {state}, {len(self.folds)} folds "
            f"{p['first_test']}..{p['last_test']}, "
            f"refit every {p['refit_every_months']} months, {p['window']} window)"
        )


# ---------------------------------------------------------------------- helpers
def progress_bar(items, progress: bool, total: int | None = None, workers: int = 1):
    """`items` under a tqdm bar when `progress` (the folds here, "walk-forward folds 3/10"; the zoo's
    fits), else as they are."""
    if not progress:
        return items
    from tqdm.auto import tqdm

    where = f" ({workers} processes)" if workers > 1 else ""
    return tqdm(items, total=total, desc=f"walk-forward folds{where}", unit="fold")


def _train_days(config: ModelConfig) -> int:
    return (pd.Timestamp(config.split.train_end) - pd.Timestamp(config.split.train_start)).days


def _split_dict(split: Split) -> dict:
    return {name: getattr(split, name) for name in split.__dataclass_fields__}


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_bundle(path) -> dict:
    return read_manifest(path, BUNDLE, KIND, FORMAT_VERSION, "WalkForwardModel.save()")


def load_any(path):
    """Any zoo model (directory with model.json) or a WalkForwardModel (directory with bundle.json)."""
    from models.artifact import META

    path = Path(path)
    if (path / BUNDLE).is_file():
        return WalkForwardModel.load(path)
    if (path / META).is_file():
        return load_model(path)
    raise ArtifactError(
        f"{path}: neither {META} (a model's save()) nor {BUNDLE} (WalkForwardModel.save) is there; "
        "give the directory a model was saved to, or train one"
    )
