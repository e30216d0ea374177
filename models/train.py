"""AlphaModel: the scikit-learn-like face of the research core.

    model = AlphaModel(ModelConfig(...)).fit(prices, benchmark)   # learns on train, selects on valid
    scores = model.predict(prices, benchmark)                     # date x ticker, score = 2p - 1
    model.save("models/store/default"); AlphaModel.load(...)

fit never sees a label whose horizon reaches past the training (validation) period, the scaler
sees only training rows, and the best epoch is chosen on the validation loss: the test period is
never looked at.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from feeds.errors import ArtifactError, ConfigError, DataError
from feeds.panel import PricePanel, series_fingerprint
from models import features as F
from models import labels as L
from models.config import ModelConfig
from models.dataset import SPLIT_FIX, Scaler, WindowIndex, build_windows, split_samples
from models.lstm import AlphaLSTM

INFERENCE_BATCH = 1024  # 1024-window batches ran ~2x faster than 16384 on one core (cache-sized)


def config_fingerprint(config: ModelConfig) -> str:
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def score_from_output(output: np.ndarray, label: str) -> np.ndarray:
    """Classifier: score = 2p - 1 with p = sigmoid(logit). Regression (seed): the raw output."""
    if label == "classification":
        return 2.0 / (1.0 + np.exp(-output.astype(np.float64))) - 1.0
    return output.astype(np.float64)


@dataclass
class FitReport:
    history: list = field(default_factory=list)   # [{"epoch", "train_loss", "valid_loss"}]
    best_epoch: int = 0
    n_samples: dict = field(default_factory=dict)
    windows: dict = field(default_factory=dict)   # name -> [first sample date, last sample date]
    dropped_features: list = field(default_factory=list)
    seconds: float = 0.0


class AlphaModel:
    def __init__(self, config: ModelConfig | None = None, **params):
        if config is not None and params:
            raise ConfigError("give either a ModelConfig or keyword parameters, not both")
        config = config or ModelConfig(**params)
        if not config.features:
            config = config.replace(features=tuple(F.DEFAULT_FEATURES))
        unknown = [n for n in config.features if n not in F.FEATURES]
        if unknown:
            raise ConfigError(f"unknown feature(s) {unknown}; registered features: {sorted(F.FEATURES)}")
        self.config = config
        self.features_: list[str] | None = None   # the features actually used (after close-only drops)
        self.scaler_: Scaler | None = None
        self.net_: AlphaLSTM | None = None
        self.report_: FitReport | None = None
        self.data_fingerprint_: dict = {}
        self.meta_: dict = {}

    # ------------------------------------------------------------------ features and windows
    def _available(self, prices: PricePanel, vix) -> set:
        return set(prices.available) | {"benchmark"} | ({"vix"} if vix is not None else set())

    def _windows(self, prices: PricePanel, benchmark: pd.Series, names, vix=None) -> WindowIndex:
        feats = F.compute_features(prices, benchmark, names, vix=vix)
        array = F.feature_array(feats, names)
        traded = prices.close.notna().to_numpy()
        return build_windows(array, traded, prices.dates, prices.tickers, self.config.seq_len)

    # ------------------------------------------------------------------ fit
    def fit(self, prices: PricePanel, benchmark: pd.Series, vix: pd.Series | None = None, progress: bool = True) -> "AlphaModel":
        import time

        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        cfg = self.config
        torch.set_num_threads(cfg.threads)
        kept, dropped = F.usable_features(list(cfg.features), self._available(prices, vix))
        if dropped:
            warnings.warn(
                f"features {dropped} need columns this data does not have ({sorted(prices.available)}); "
                f"training without them on {kept}", stacklevel=2)
        if not kept:
            raise DataError(f"none of the features {list(cfg.features)} can be computed from {prices!r}")
        index = self._windows(prices, benchmark, kept, vix)
        labels = L.make_labels(prices, benchmark, cfg.horizon, cfg.label)
        label_ends = L.label_end_dates(prices, cfg.horizon)
        samples, y = split_samples(index, labels, label_ends, cfg.split, cfg.stride)
        for name in ("train", "valid"):
            if len(samples[name]) == 0:
                s, e = cfg.split.period(name)
                raise DataError(f"no {name} samples between {s.date()} and {e.date()}: the data {prices!r} does not "
                                f"cover that period (after the feature warm-up and the label purge); {SPLIT_FIX}")
        scaler = Scaler.fit(index.rows, index.row_dates, cfg.split.train_start, cfg.split.train_end)
        scaled = scaler.transform(index.rows)

        rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        net = AlphaLSTM(len(kept), cfg.hidden, cfg.layers, cfg.dropout)
        optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = nn.BCEWithLogitsLoss() if cfg.label == "classification" else nn.MSELoss()
        train_ends, valid_ends = index.ends[samples["train"]], index.ends[samples["valid"]]
        y_train = torch.from_numpy(y[samples["train"]].astype(np.float32))
        y_valid = torch.from_numpy(y[samples["valid"]].astype(np.float32))

        report = FitReport(dropped_features=dropped)
        best_loss, best_state, stale = np.inf, None, 0
        bar = tqdm(range(1, cfg.epochs + 1), desc="training", unit="epoch", disable=not progress)
        for epoch in bar:
            net.train()
            order = rng.permutation(len(train_ends))
            total = 0.0
            for start in range(0, len(order), cfg.batch_size):
                batch = order[start:start + cfg.batch_size]
                xb = torch.from_numpy(index.gather(train_ends[batch], scaled))
                optimiser.zero_grad()
                loss = loss_fn(net(xb), y_train[batch])
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            train_loss = total / len(order)
            valid_loss = float(loss_fn(torch.from_numpy(self._raw(net, index, valid_ends, scaled)), y_valid))
            report.history.append({"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss})
            bar.set_postfix(train=f"{train_loss:.4f}", valid=f"{valid_loss:.4f}")
            if valid_loss < best_loss - 1e-6:
                best_loss, stale, report.best_epoch = valid_loss, 0, epoch
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
        bar.close()
        net.load_state_dict(best_state)
        net.eval()

        dates = index.sample_dates()
        for name in ("train", "valid"):
            d = dates[samples[name]]
            report.n_samples[name] = int(len(d))
            report.windows[name] = [str(pd.Timestamp(d.min()).date()), str(pd.Timestamp(d.max()).date())]
        report.windows["scaler"] = list(scaler.fitted_on)
        # the last label date a fitted thing saw: the horizon end of the last kept sample
        ends_seen = L.label_end_dates(prices, cfg.horizon)
        from models.dataset import lookup
        last_label = pd.Series(lookup(ends_seen, index, np.concatenate([train_ends, valid_ends]))).max()
        report.windows["last_label_date"] = str(pd.Timestamp(last_label).date())
        report.seconds = time.perf_counter() - t0

        self.features_, self.scaler_, self.net_, self.report_ = kept, scaler, net, report
        self.data_fingerprint_ = {"prices": prices.fingerprint(), "benchmark": series_fingerprint(benchmark),
                                  "tickers": prices.tickers, "first_date": str(prices.dates[0].date()),
                                  "last_date": str(prices.dates[-1].date())}
        return self

    @staticmethod
    def _raw(net: AlphaLSTM, index: WindowIndex, ends: np.ndarray, scaled: np.ndarray) -> np.ndarray:
        out = np.empty(len(ends), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(ends), INFERENCE_BATCH):
                chunk = ends[start:start + INFERENCE_BATCH]
                out[start:start + len(chunk)] = net(torch.from_numpy(index.gather(chunk, scaled))).numpy()
        return out

    # ------------------------------------------------------------------ predict
    def _check_fitted(self):
        if self.net_ is None:
            raise ConfigError("this AlphaModel is not fitted: call fit(prices, benchmark) or AlphaModel.load(path)")

    def predict(self, prices: PricePanel, benchmark: pd.Series, vix: pd.Series | None = None,
                last_only: bool = False, start=None) -> pd.DataFrame:
        """Scores on prices.dates x prices.tickers (NaN where no full window exists yet).

        Pure: the score dated t depends on prices and benchmark up to t only. last_only scores
        just each stock's newest window (the event-driven path); start skips windows ending
        before that date (earlier rows still serve as warm-up)."""
        self._check_fitted()
        missing = [n for n in self.features_ if not F.FEATURES[n].needs <= self._available(prices, vix)]
        if missing:
            needs = sorted(set().union(*(F.FEATURES[n].needs for n in missing)) - self._available(prices, vix))
            raise ArtifactError(f"the model uses features {missing}, which need {needs}; the data {prices!r} lacks them: "
                                "give data with those columns or retrain on this data")
        torch.set_num_threads(self.config.threads)
        index = self._windows(prices, benchmark, self.features_, vix)
        if last_only:
            last_rows = np.r_[np.flatnonzero(np.diff(index.row_ticker)), len(index.row_ticker) - 1]
            index.ends = index.ends[np.isin(index.ends, last_rows)]
        if start is not None:
            index.ends = index.ends[index.row_dates[index.ends] >= np.datetime64(pd.Timestamp(start))]
        out = self._raw(self.net_, index, index.ends, self.scaler_.transform(index.rows))
        scores = np.full(prices.close.shape, np.nan)
        rows = prices.dates.get_indexer(pd.DatetimeIndex(index.row_dates[index.ends]))
        scores[rows, index.row_ticker[index.ends]] = score_from_output(out, self.config.label)
        return pd.DataFrame(scores, index=prices.dates, columns=prices.tickers)

    @property
    def warmup(self) -> int:
        """Bars a stock needs before its first score: the feature warm-up plus the window."""
        self._check_fitted()
        return F.max_warmup(self.features_) + self.config.seq_len - 1

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> "pathlib.Path":
        from models.artifact import save_model
        return save_model(self, path)

    @classmethod
    def load(cls, path) -> "AlphaModel":
        from models.artifact import load_model
        return load_model(path)

    def __repr__(self):
        state = "fitted" if self.net_ is not None else "not fitted"
        return f"AlphaModel({state}, label={self.config.label}, features={self.features_ or list(self.config.features)})"
