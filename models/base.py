"""One model interface and the machinery every alpha model shares.

`AlphaModelLike` is the face the rest of the project relies on (the indicator, the jobs in jobs/, the
walk-forward bundle, the zoo): fit, predict -> scores in [-1, 1], save / load, the feature names
(`features_`) and the bars a stock needs before its first score (`warmup`).

`BaseAlphaModel` implements it once: config and column checks, feature windows, the leak-free
train / validation samples and the scaler fitted on training rows, batched inference, the
last_only / start filters, the fit report and the data fingerprint. A model adds only what is its
own: `_fit_state` (learn from the prepared samples), `_output` (raw output of a batch of inputs),
`_state_files` / `_load_state` (its weights as bytes, never pickle) and `_state_digest`.

Two input shapes: INPUT = "window" gives a model [n, seq_len, F] scaled windows (the LSTM, the
MLP); INPUT = "last_day" gives [n, F], the scaled features of the window's last day (logistic,
LightGBM, momentum). Either way the same windows are scored, so every model scores the same
(date, ticker) cells and warms up over the same bars.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from core.errors import ArtifactError, ConfigError, DataError
from feeds.panel import PricePanel, series_fingerprint
from models import features as F
from models import labels as L
from models.config import ModelConfig
from models.dataset import SPLIT_FIX, Scaler, WindowIndex, build_windows, lookup, split_samples

INFERENCE_BATCH = 1024  # 1024-window batches ran ~2x faster than 16384 on one core (cache-sized)


@runtime_checkable
class AlphaModelLike(Protocol):
    """What the indicator, the jobs (jobs/), walk-forward and the zoo need of a model."""

    config: ModelConfig
    features_: list | None

    def fit(self, prices: PricePanel, benchmark: pd.Series, vix: pd.Series | None = None): ...

    def predict(
        self,
        prices: PricePanel,
        benchmark: pd.Series,
        vix: pd.Series | None = None,
        last_only: bool = False,
        start=None,
    ) -> pd.DataFrame: ...

    def save(self, path) -> Path: ...

    @classmethod
    def load(cls, path): ...

    @property
    def warmup(self) -> int: ...


def score_from_output(output: np.ndarray, label: str) -> np.ndarray:
    """Classifier: score = 2p - 1 with p = sigmoid(logit). Regression (seed): the raw output."""
    if label == "classification":
        return 2.0 / (1.0 + np.exp(-output.astype(np.float64))) - 1.0
    return output.astype(np.float64)


@dataclass
class FitReport:
    history: list = field(default_factory=list)  # [{"epoch", "train_loss", "valid_loss"}]
    best_epoch: int = 0
    n_samples: dict = field(default_factory=dict)
    windows: dict = field(default_factory=dict)  # name -> [first sample date, last sample date]
    dropped_features: list = field(default_factory=list)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)  # what a model chose and wants reported (e.g. momentum's feature)


@dataclass
class Prepared:
    """Everything a fit needs, computed once by BaseAlphaModel._prepare: windows over all rows, the
    train / valid sample positions (purged) and labels, the scaler fitted on training rows."""

    features: list
    dropped: list
    index: WindowIndex
    samples: dict
    y: np.ndarray
    scaler: Scaler
    label_ends: pd.DataFrame
    prices: PricePanel
    benchmark: pd.Series

    def ends(self, name: str) -> np.ndarray:
        return self.index.ends[self.samples[name]]

    def labels(self, name: str) -> np.ndarray:
        return self.y[self.samples[name]]


# ---------------------------------------------------------------------- shared helpers (pure)
def resolve_config(config: ModelConfig | None, params: dict, owner: str) -> ModelConfig:
    if config is not None and params:
        raise ConfigError(f"{owner}: give either a ModelConfig or keyword parameters, not both")
    config = config or ModelConfig(**params)
    if not config.features:
        config = config.replace(features=tuple(F.DEFAULT_FEATURES))
    unknown = [n for n in config.features if n not in F.FEATURES]
    if unknown:
        raise ConfigError(f"unknown feature(s) {unknown}; registered features: {sorted(F.FEATURES)}")
    return config


def available_inputs(prices: PricePanel, vix) -> set:
    return set(prices.available) | {"benchmark"} | ({"vix"} if vix is not None else set())


def check_columns(features, prices: PricePanel, vix) -> None:
    """ArtifactError naming the features whose inputs the data lacks."""
    available = available_inputs(prices, vix)
    missing = [n for n in features if not F.FEATURES[n].needs <= available]
    if missing:
        needs = sorted(set().union(*(F.FEATURES[n].needs for n in missing)) - available)
        raise ArtifactError(
            f"the model uses features {missing}, which need {needs}; the data {prices!r} lacks them: "
            "give data with those columns or retrain on this data"
        )


def feature_windows(prices: PricePanel, benchmark: pd.Series, names, seq_len: int, vix=None) -> WindowIndex:
    feats = F.compute_features(prices, benchmark, names, vix=vix)
    array = F.feature_array(feats, names)
    traded = prices.close.notna().to_numpy()
    return build_windows(array, traded, prices.dates, prices.tickers, seq_len)


def select_ends(index: WindowIndex, last_only: bool = False, start=None) -> np.ndarray:
    """The window ends to score: all, each stock's newest (last_only), or those dated >= start."""
    ends = index.ends
    if last_only:
        last_rows = np.r_[np.flatnonzero(np.diff(index.row_ticker)), len(index.row_ticker) - 1]
        ends = ends[np.isin(ends, last_rows)]
    if start is not None:
        ends = ends[index.row_dates[ends] >= np.datetime64(pd.Timestamp(start))]
    return ends


def scatter_scores(
    prices: PricePanel, index: WindowIndex, ends: np.ndarray, values: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Put each window's score on its (date, ticker) cell of a prices-shaped array."""
    out = np.full(prices.close.shape, np.nan) if out is None else out
    rows = prices.dates.get_indexer(pd.DatetimeIndex(index.row_dates[ends]))
    out[rows, index.row_ticker[ends]] = values
    return out


def data_fingerprint(prices: PricePanel, benchmark: pd.Series) -> dict:
    return {
        "prices": prices.fingerprint(),
        "benchmark": series_fingerprint(benchmark),
        "tickers": prices.tickers,
        "first_date": str(prices.dates[0].date()),
        "last_date": str(prices.dates[-1].date()),
    }


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


# ---------------------------------------------------------------------- the shared model
class BaseAlphaModel:
    """Subclasses set NAME (the zoo's name), KIND (the artifact's kind), INPUT ("window" or
    "last_day"), SEED_DEPENDENT (False: the same fit whatever the seed, so the zoo runs it once)
    and LABELS (label kinds it supports), and implement the hooks named in the module doc."""

    NAME = "base"
    KIND = "base-alpha"
    INPUT = "window"
    SEED_DEPENDENT = True
    LABELS = ("classification", "regression")
    SCORE = "2p-1"  # what the score means; "2p-1" classifiers keep the project's fixed meaning

    def __init__(self, config: ModelConfig | None = None, **config_params):
        self.config = resolve_config(config, config_params, type(self).__name__)
        if self.config.label not in self.LABELS:
            raise ConfigError(
                f"{type(self).__name__} supports label {self.LABELS}, not label={self.config.label!r}; "
                "use the default preset's classification label or another model"
            )
        self.params: dict = {}  # the model's own hyperparameters (explicit __init__ keywords)
        self.features_: list | None = None
        self.scaler_: Scaler | None = None
        self.report_: FitReport | None = None
        self.data_fingerprint_: dict = {}
        self.meta_: dict = {}

    # ------------------------------------------------------------------ hooks
    def _fit_state(self, prep: Prepared, progress: bool) -> None:
        raise NotImplementedError

    def _output(self, x: np.ndarray) -> np.ndarray:
        """Raw output of a batch of scaled inputs (a logit for classifiers)."""
        raise NotImplementedError

    def _state_files(self) -> dict:
        """{file name: bytes} of the fitted state (no pickle)."""
        raise NotImplementedError

    def _load_state(self, files: dict, meta: dict) -> None:
        raise NotImplementedError

    def _state_digest(self) -> bytes:
        """Bytes that change whenever the fitted state changes (for fingerprints)."""
        files = self._state_files()
        return b"".join(name.encode() + files[name] for name in sorted(files))

    def _is_fitted(self) -> bool:
        raise NotImplementedError

    def _to_score(self, raw: np.ndarray) -> np.ndarray:
        return score_from_output(raw, self.config.label)

    # ------------------------------------------------------------------ windows and samples
    def _available(self, prices: PricePanel, vix) -> set:
        return available_inputs(prices, vix)

    def _windows(self, prices: PricePanel, benchmark: pd.Series, names, vix=None) -> WindowIndex:
        return feature_windows(prices, benchmark, names, self.config.seq_len, vix)

    def _prepare(self, prices: PricePanel, benchmark: pd.Series, vix=None) -> Prepared:
        cfg = self.config
        kept, dropped = F.usable_features(list(cfg.features), available_inputs(prices, vix))
        if dropped:
            warnings.warn(
                f"features {dropped} need columns this data does not have ({sorted(prices.available)}); "
                f"training without them on {kept}",
                stacklevel=3,
            )
        if not kept:
            raise DataError(f"none of the features {list(cfg.features)} can be computed from {prices!r}")
        index = self._windows(prices, benchmark, kept, vix)
        labels = L.make_labels(prices, benchmark, cfg.horizon, cfg.label)
        label_ends = L.label_end_dates(prices, cfg.horizon)
        samples, y = split_samples(index, labels, label_ends, cfg.split, *cfg.strides)
        for name in ("train", "valid"):
            if len(samples[name]) == 0:
                s, e = cfg.split.period(name)
                raise DataError(
                    f"no {name} samples between {s.date()} and {e.date()}: the data {prices!r} does not "
                    f"cover that period (after the feature warm-up and the label purge); {SPLIT_FIX}"
                )
        scaler = Scaler.fit(index.rows, index.row_dates, cfg.split.train_start, cfg.split.train_end)
        return Prepared(kept, dropped, index, samples, y, scaler, label_ends, prices, benchmark)

    def _inputs(self, index: WindowIndex, ends: np.ndarray) -> np.ndarray:
        """Scaled model inputs of the windows ending at `ends` (scaling the gathered values equals
        gathering from scaled rows: the transform is per element)."""
        if self.INPUT == "window":
            return self.scaler_.transform(index.gather(ends))
        return self.scaler_.transform(index.rows[ends])

    def raw_output(self, index: WindowIndex, ends: np.ndarray) -> np.ndarray:
        """Batched: the model's raw output for each window end. Window models gather from rows
        scaled once (a row sits in seq_len windows), the same numbers as _inputs."""
        out = np.empty(len(ends), dtype=np.float64)
        scaled = self.scaler_.transform(index.rows) if self.INPUT == "window" else None
        for start in range(0, len(ends), INFERENCE_BATCH):
            chunk = ends[start : start + INFERENCE_BATCH]
            x = index.gather(chunk, scaled) if scaled is not None else self._inputs(index, chunk)
            out[start : start + len(chunk)] = self._output(x)
        return out

    def scores_for(self, index: WindowIndex, ends: np.ndarray) -> np.ndarray:
        return self._to_score(self.raw_output(index, ends))

    # ------------------------------------------------------------------ fit / predict
    def fit(self, prices: PricePanel, benchmark: pd.Series, vix: pd.Series | None = None, progress: bool = True):
        t0 = time.perf_counter()
        set_threads(self.config.threads)
        prep = self._prepare(prices, benchmark, vix)
        self.features_, self.scaler_ = prep.features, prep.scaler
        self.report_ = FitReport(dropped_features=prep.dropped)
        self._fit_state(prep, progress)
        self._finish_report(prep, prices)
        self.report_.seconds = time.perf_counter() - t0
        self.data_fingerprint_ = data_fingerprint(prices, benchmark)
        return self

    def _finish_report(self, prep: Prepared, prices: PricePanel) -> None:
        report, index = self.report_, prep.index
        dates = index.sample_dates()
        for name in ("train", "valid"):
            d = dates[prep.samples[name]]
            report.n_samples[name] = int(len(d))
            report.windows[name] = [str(pd.Timestamp(d.min()).date()), str(pd.Timestamp(d.max()).date())]
        report.windows["scaler"] = list(prep.scaler.fitted_on)
        # the last label date a fitted thing saw: the horizon end of the last kept sample
        seen = np.concatenate([prep.ends("train"), prep.ends("valid")])
        last_label = pd.Series(lookup(prep.label_ends, index, seen)).max()
        report.windows["last_label_date"] = str(pd.Timestamp(last_label).date())

    def _check_fitted(self):
        if self.features_ is None or not self._is_fitted():
            raise ConfigError(
                f"this {type(self).__name__} is not fitted: call fit(prices, benchmark) or "
                f"{type(self).__name__}.load(path)"
            )

    def predict(
        self,
        prices: PricePanel,
        benchmark: pd.Series,
        vix: pd.Series | None = None,
        last_only: bool = False,
        start=None,
    ) -> pd.DataFrame:
        """Scores on prices.dates x prices.tickers (NaN where no full window exists yet).

        Pure: the score dated t depends on prices and benchmark up to t only. last_only scores
        just each stock's newest window (the event-driven path); start skips windows ending
        before that date (earlier rows still serve as warm-up)."""
        self._check_fitted()
        check_columns(self.features_, prices, vix)
        set_threads(self.config.threads)
        index = self._windows(prices, benchmark, self.features_, vix)
        ends = select_ends(index, last_only, start)
        scores = scatter_scores(prices, index, ends, self.scores_for(index, ends))
        return pd.DataFrame(scores, index=prices.dates, columns=prices.tickers)

    @property
    def warmup(self) -> int:
        """Bars a stock needs before its first score: the feature warm-up plus the window."""
        self._check_fitted()
        return F.max_warmup(self.features_) + self.config.seq_len - 1

    def fingerprint(self) -> str:
        """sha256 over what decides the output: kind, config, params, features, scaler, state."""
        self._check_fitted()
        h = hashlib.sha256()
        h.update(self.KIND.encode())
        h.update(self.config.fingerprint().encode())
        h.update(json.dumps(self.params, sort_keys=True, default=str).encode())
        h.update(json.dumps(list(self.features_)).encode())
        h.update(json.dumps(self.scaler_.to_dict(), sort_keys=True, default=str).encode())
        h.update(self._state_digest())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict:
        """The fitted model as plain data, torch's state_dict pattern: {"meta": a JSON-able dict of
        everything needed to use and to judge it, "files": {file name: bytes} of the learned state}.
        models.artifact writes and reads it; walk-forward workers send it between processes."""
        self._check_fitted()
        report = self.report_ or FitReport()
        meta = {
            "kind": self.KIND,
            "model": self.NAME,
            "score": self.SCORE if self.config.label == "classification" else "raw regression output",
            "config": self.config.to_dict(),
            "config_fingerprint": self.config.fingerprint(),
            "params": self.params,
            "features": self.features_,
            "dropped_features": report.dropped_features,
            "seq_len": self.config.seq_len,
            "horizon": self.config.horizon,
            "label": self.config.label,
            "scaler": self.scaler_.to_dict(),
            "fit_windows": report.windows,
            "n_samples": report.n_samples,
            "history": report.history,
            "best_epoch": report.best_epoch,
            "chosen": report.extra,
            "fit_seconds": round(report.seconds, 2),
            "threads": self.config.threads,
            "data_fingerprint": self.data_fingerprint_,
        }
        return {"meta": meta, "files": self._state_files()}

    @classmethod
    def from_state(cls, state: dict, where: str = "state"):
        """The fitted model that `state()` gave (its files' checksums are models.artifact's job)."""
        meta, files = state["meta"], state["files"]
        if meta.get("model", "lstm") != cls.NAME:
            held = next((c.__name__ for c in _subclasses(BaseAlphaModel) if c.NAME == meta.get("model")), "?")
            raise ArtifactError(
                f"{where}: holds the {meta.get('model')!r} model ({held}), not {cls.NAME!r} "
                f"({cls.__name__}); load it with models.load_any(path) or {held}.load(path)"
            )
        try:
            config = ModelConfig.from_dict(meta["config"])
            model = cls(config, **meta.get("params", {}))
            model.features_ = list(meta["features"])
            model.scaler_ = Scaler.from_dict(meta["scaler"])
            set_threads(config.threads)
            model._load_state(files, meta)
        except ArtifactError:
            raise
        except Exception as exc:  # a state that does not fit the recorded architecture, a bad key...
            raise ArtifactError(
                f"{where}: cannot rebuild the model from its files ({type(exc).__name__}: {exc}); retrain it"
            ) from exc
        model.report_ = FitReport(
            history=meta.get("history", []),
            best_epoch=meta.get("best_epoch") or 0,
            n_samples=meta.get("n_samples", {}),
            windows=meta.get("fit_windows", {}),
            dropped_features=meta.get("dropped_features", []),
            seconds=meta.get("fit_seconds") or 0.0,
            extra=meta.get("chosen", {}),
        )
        model.data_fingerprint_ = meta.get("data_fingerprint", {})
        model.meta_ = meta
        return model

    def __getstate__(self) -> dict:
        """A fitted model pickles as its state (models.artifact.to_parcel: the manifest as JSON and
        the state files' bytes), so a model sent to another process, say one of Backtrader's
        optstrategy workers, is rebuilt there from weights and metadata by from_state."""
        if self.features_ is None or not self._is_fitted():
            return dict(self.__dict__)  # not fitted: only its config and params, plain data
        from models.artifact import to_parcel

        return to_parcel(self.state())

    def __setstate__(self, state: dict) -> None:
        from models.artifact import from_parcel, is_parcel

        if not is_parcel(state):
            self.__dict__.update(state)
            return
        rebuilt = type(self).from_state(from_parcel(state), where=f"a pickled {type(self).__name__}")
        self.__dict__.update(rebuilt.__dict__)

    def save(self, path) -> Path:
        """Write the artifact directory (models.artifact: checksums, versions, atomic)."""
        from models.artifact import write_artifact

        return write_artifact(self.state(), path)

    @classmethod
    def load(cls, path):
        from models.artifact import read_artifact

        return cls.from_state(read_artifact(path), where=str(path))

    def __repr__(self):
        state = "fitted" if self.features_ is not None and self._is_fitted() else "not fitted"
        return (
            f"{type(self).__name__}({state}, label={self.config.label}, "
            f"features={self.features_ or list(self.config.features)})"
        )


def _subclasses(cls) -> list:
    """Every loaded subclass of `cls`, at any depth (the zoo's classes, without importing the registry)."""
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out
