"""Score once, trade many: a model's scores on a data set, computed once and kept on disk.

A sweep of 50 strategy variants over one model needs the model's scores once, not 50 times. The
scores of a (model, data) pair are written as Parquet under cache/scores/, named by a key made of

- the model's fingerprint: its configuration fingerprint, the features it uses, its fitted scaler
  and every weight tensor (so a different seed, epoch or hyperparameter is a different model), and
- the data's fingerprints: ``prices.fingerprint()``, ``series_fingerprint(benchmark)`` and the
  VIX series' when given (one changed price is different data).

A changed model or changed data therefore never reads a stale file. Files are written atomically
(a temporary sibling, then os.replace), so a crashed run leaves no half-written entry.

    scores, hit = cached_scores(model, prices, benchmark)       # model.predict on a miss
    cerebro.addstrategy(AlphaRankStrategy, alpha=ScoreAlpha.factory(scores), ...)

Bit for bit: the LSTM's batched inference can differ in the last float32 digit (~1e-9) with the
set of windows scored together, so to reproduce an LSTMAlpha run exactly, score the panel that
Cerebro sees (the fed tickers, up to the backtest's end) with start = its first day, as
jobs.engines.period_scores does; LSTMAlpha's BatchScorer makes the same model.predict call.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from core.errors import ArtifactError
from core.io import atomic_path
from feeds.panel import PricePanel, series_fingerprint

DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / "cache" / "scores"
KEY_VERSION = 1  # bump when the meaning of a cached file changes


def model_fingerprint(model) -> str:
    """sha256 over what decides the model's output (models.base.BaseAlphaModel.fingerprint: kind,
    config, params, features, scaler, fitted state; a walk-forward model: its plan and every fold's)."""
    if not hasattr(model, "folds"):
        return model.fingerprint()
    model._check_fitted()
    h = hashlib.sha256()  # a walk-forward bundle: its plan, its model's name, each fold's period and model
    h.update(json.dumps(getattr(model, "params", {}), sort_keys=True, default=str).encode())
    h.update(
        json.dumps(
            [getattr(model, "model_name", "lstm"), getattr(model, "model_params", {})], sort_keys=True, default=str
        ).encode()
    )
    for fold in model.folds:
        h.update(repr(fold.split).encode())
        h.update(fold.model.fingerprint().encode())
    return h.hexdigest()[:16]


def data_fingerprint(prices: PricePanel, benchmark: pd.Series | None, vix: pd.Series | None = None) -> str:
    parts = [
        prices.fingerprint(),
        series_fingerprint(benchmark) if benchmark is not None else "no-benchmark",
        series_fingerprint(vix) if vix is not None else "no-vix",
    ]
    return ":".join(parts)


def score_key(model, prices: PricePanel, benchmark: pd.Series | None, vix: pd.Series | None = None, start=None) -> str:
    """The cache key of model.predict(prices, benchmark, vix, start=start): 24 hex digits."""
    import torch

    from models.train import INFERENCE_BATCH

    first = "all" if start is None else str(pd.Timestamp(start).date())
    # the batch size and torch build change the last float bits of a score: part of the key
    engine = f"torch{torch.__version__}:batch{INFERENCE_BATCH}"
    text = f"v{KEY_VERSION}:{model_fingerprint(model)}:{data_fingerprint(prices, benchmark, vix)}:{first}:{engine}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class ScoreCache:
    """A folder of `<key>.parquet` score frames (index dates, one column per ticker)."""

    def __init__(self, root=DEFAULT_CACHE_DIR):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.parquet"

    def read(self, key: str) -> pd.DataFrame | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # a damaged file: say which, and how to fix it
            raise ArtifactError(
                f"score cache {path}: unreadable ({type(exc).__name__}: {exc}); "
                f"delete the file and it will be recomputed"
            ) from exc

    def write(self, key: str, scores: pd.DataFrame) -> Path:
        path = self.path(key)
        with atomic_path(path, suffix=".parquet") as tmp:
            scores.to_parquet(tmp)
        return path

    def get_or_compute(
        self, model, prices: PricePanel, benchmark: pd.Series | None, vix: pd.Series | None = None, start=None
    ) -> tuple[pd.DataFrame, bool]:
        """(scores, hit): the cached model.predict(prices, benchmark, vix, start=start), computed on a miss."""
        key = score_key(model, prices, benchmark, vix, start)
        cached = self.read(key)
        if cached is not None:
            return cached, True
        scores = model.predict(prices, benchmark, vix=vix, start=start)
        scores.columns = [str(c) for c in scores.columns]  # Parquet wants string column names
        self.write(key, scores)
        return self.read(key), False


def cached_scores(
    model,
    prices: PricePanel,
    benchmark: pd.Series | None,
    vix: pd.Series | None = None,
    start=None,
    cache_dir=DEFAULT_CACHE_DIR,
) -> tuple[pd.DataFrame, bool]:
    """(scores, hit): model.predict(prices, benchmark, vix, start=start) from cache_dir, or
    computed and stored. `start` scores only windows ending on or after it (earlier rows are warm-up)."""
    return ScoreCache(cache_dir).get_or_compute(model, prices, benchmark, vix, start)
