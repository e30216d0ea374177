"""The zoo's baselines: the models the LSTM has to beat to earn its place.

Each uses the default preset's features, labels, windows, split and scaler (BaseAlphaModel) and
adds only its own learner and its own file format (never pickle):

- LogisticModel:  scikit-learn logistic regression on the last day's scaled features;
                  coefficients saved as JSON. Deterministic.
- LightGBMModel:  LightGBM classifier on the last day's scaled features, early stopping on the
                  validation loss; saved in LightGBM's own text format.
- MLPModel:       a small torch MLP on the flattened scaled window; weights_only=True loading.
- MomentumModel:  the single feature with the best validation rank IC, sign included, chosen on
                  validation only and reported by name. Deterministic. Score = tanh(sign * z),
                  z the feature's robust z-score: a ranking, not a probability.
- RandomModel:    seeded noise, the null: a hash of (seed, ticker, date) mapped to [-1, 1], so
                  a cell's score is the same whatever panel it is scored in.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
from torch import nn

from core.errors import ArtifactError, ConfigError
from models import labels as L
from models.base import BaseAlphaModel, Prepared
from models.dataset import WindowIndex, lookup
from models.train import TorchNetModel, loss_function


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def _read_json(files: dict, name: str, kind: str) -> dict:
    if name not in files:
        raise ArtifactError(f"the {kind} artifact has no {name}; retrain it")
    return json.loads(files[name].decode())


def _check_positive(owner: str, **values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not value > 0:
            raise ConfigError(f"{owner} parameter {name}={value!r}: give a number > 0")


def last_day_samples(prep: Prepared, name: str, model: BaseAlphaModel) -> tuple[np.ndarray, np.ndarray]:
    """(scaled last-day features, labels) of the train or valid samples."""
    return model._inputs(prep.index, prep.ends(name)), prep.labels(name)


def _valid_loss(model: BaseAlphaModel, prep: Prepared) -> float:
    import torch

    raw = model.raw_output(prep.index, prep.ends("valid")).astype(np.float32)
    y = prep.labels("valid").astype(np.float32)
    return float(loss_function(model.config.label)(torch.from_numpy(raw), torch.from_numpy(y)))


# ---------------------------------------------------------------------- logistic regression
class LogisticModel(BaseAlphaModel):
    NAME = "logistic"
    KIND = "logistic-alpha"
    INPUT = "last_day"
    SEED_DEPENDENT = False  # lbfgs on a convex loss: the same fit whatever the seed
    LABELS = ("classification",)
    FILE = "coefficients.json"

    def __init__(self, config=None, C: float = 1.0, max_iter: int = 1000, **config_params):
        super().__init__(config, **config_params)
        _check_positive("LogisticModel", C=C, max_iter=max_iter)
        self.params = {"C": float(C), "max_iter": int(max_iter)}
        self.coef_: np.ndarray | None = None
        self.intercept_: float | None = None

    def _fit_state(self, prep: Prepared, progress: bool) -> None:
        from sklearn.linear_model import LogisticRegression

        x, y = last_day_samples(prep, "train", self)
        clf = LogisticRegression(C=self.params["C"], max_iter=self.params["max_iter"])
        clf.fit(x.astype(np.float64), y.astype(int))
        self.coef_, self.intercept_ = clf.coef_[0].astype(np.float64), float(clf.intercept_[0])
        self.report_.history.append({"epoch": 1, "valid_loss": _valid_loss(self, prep)})

    def _output(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float64) @ self.coef_ + self.intercept_

    def _is_fitted(self) -> bool:
        return self.coef_ is not None

    def _state_files(self) -> dict:
        return {
            self.FILE: _json_bytes(
                {"features": self.features_, "coef": self.coef_.tolist(), "intercept": self.intercept_}
            )
        }

    def _load_state(self, files: dict, meta: dict) -> None:
        state = _read_json(files, self.FILE, self.KIND)
        if state.get("features") != self.features_ or len(state["coef"]) != len(self.features_):
            raise ArtifactError(f"{self.FILE}: its coefficients do not match the features {self.features_}; retrain it")
        self.coef_, self.intercept_ = np.asarray(state["coef"], np.float64), float(state["intercept"])


# ---------------------------------------------------------------------- LightGBM
class LightGBMModel(BaseAlphaModel):
    NAME = "lightgbm"
    KIND = "lightgbm-alpha"
    INPUT = "last_day"
    LABELS = ("classification",)
    FILE = "booster.txt"

    def __init__(
        self,
        config=None,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 200,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        early_stopping_rounds: int = 20,
        max_train_rows: int = 100_000,
        **config_params,
    ):
        super().__init__(config, **config_params)
        _check_positive(
            "LightGBMModel",
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            subsample=subsample,
            colsample_bytree=colsample_bytree,
            early_stopping_rounds=early_stopping_rounds,
            max_train_rows=max_train_rows,
        )
        self.params = {
            "n_estimators": int(n_estimators),
            "learning_rate": float(learning_rate),
            "num_leaves": int(num_leaves),
            "min_child_samples": int(min_child_samples),
            "subsample": float(subsample),
            "colsample_bytree": float(colsample_bytree),
            "early_stopping_rounds": int(early_stopping_rounds),
            "max_train_rows": int(max_train_rows),
        }
        self.booster_ = None

    def _fit_state(self, prep: Prepared, progress: bool) -> None:
        import lightgbm as lgb

        p, cfg = self.params, self.config
        x, y = last_day_samples(prep, "train", self)
        if len(x) > p["max_train_rows"]:  # a bound on fit time for big universes; seeded
            keep = np.sort(np.random.default_rng(cfg.seed).choice(len(x), p["max_train_rows"], replace=False))
            x, y = x[keep], y[keep]
        xv, yv = last_day_samples(prep, "valid", self)
        clf = lgb.LGBMClassifier(
            n_estimators=p["n_estimators"],
            learning_rate=p["learning_rate"],
            num_leaves=p["num_leaves"],
            min_child_samples=p["min_child_samples"],
            subsample=p["subsample"],
            subsample_freq=1,
            colsample_bytree=p["colsample_bytree"],
            random_state=cfg.seed,
            n_jobs=cfg.threads,
            verbose=-1,
        )
        clf.fit(
            x,
            y.astype(int),
            eval_set=[(xv, yv.astype(int))],
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(p["early_stopping_rounds"], verbose=False)],
        )
        best = int(clf.best_iteration_ or clf.n_estimators_)
        # predict through the saved text from the start, so a loaded model gives the same numbers
        self.booster_ = lgb.Booster(model_str=clf.booster_.model_to_string(num_iteration=best))
        self.report_.best_epoch = best
        self.report_.history.append({"epoch": best, "valid_loss": _valid_loss(self, prep)})

    def _output(self, x: np.ndarray) -> np.ndarray:
        return self.booster_.predict(x, raw_score=True, num_threads=self.config.threads)

    def _is_fitted(self) -> bool:
        return self.booster_ is not None

    def _state_files(self) -> dict:
        return {self.FILE: self.booster_.model_to_string().encode()}

    def _load_state(self, files: dict, meta: dict) -> None:
        import lightgbm as lgb

        if self.FILE not in files:
            raise ArtifactError(f"the {self.KIND} artifact has no {self.FILE}; retrain it")
        self.booster_ = lgb.Booster(model_str=files[self.FILE].decode())
        if self.booster_.num_feature() != len(self.features_):
            raise ArtifactError(
                f"{self.FILE}: a booster on {self.booster_.num_feature()} features, the manifest "
                f"names {len(self.features_)}; retrain it"
            )


# ---------------------------------------------------------------------- MLP
class AlphaMLP(nn.Module):
    """Flattened window -> hidden (ReLU, dropout) -> one output."""

    def __init__(self, n_inputs: int, hidden: int = 32, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, x):
        return self.body(x).squeeze(-1)


class MLPModel(TorchNetModel):
    NAME = "mlp"
    KIND = "mlp-alpha"

    def _make_net(self, n_features: int) -> nn.Module:
        cfg = self.config
        return AlphaMLP(cfg.seq_len * n_features, cfg.hidden, cfg.dropout)


# ---------------------------------------------------------------------- momentum (one feature)
def daily_rank_ic(values: np.ndarray, target: np.ndarray, dates: np.ndarray, min_stocks: int = 3) -> np.ndarray:
    """Mean over days of the cross-sectional Spearman correlation of each column of `values`
    [n, F] with `target` [n], samples grouped by date (ties averaged; days with fewer than
    min_stocks samples left out)."""
    frame = pd.DataFrame(values).assign(target=target, date=dates)
    by_day = frame.groupby("date")
    ranks = by_day.rank()
    centred = ranks - ranks.groupby(frame["date"]).transform("mean")
    x, t = centred.drop(columns="target"), centred["target"]
    num = x.mul(t, axis=0).groupby(frame["date"]).sum()
    den = np.sqrt((x**2).groupby(frame["date"]).sum().mul((t**2).groupby(frame["date"]).sum(), axis=0))
    ic = num / den.where(den > 0)
    ic = ic[by_day.size() >= min_stocks]
    return ic.mean(axis=0).to_numpy()


class MomentumModel(BaseAlphaModel):
    NAME = "momentum"
    KIND = "momentum-alpha"
    INPUT = "last_day"
    SEED_DEPENDENT = False
    SCORE = "tanh(sign * robust z of the chosen feature)"
    FILE = "momentum.json"

    def __init__(self, config=None, **config_params):
        super().__init__(config, **config_params)
        self.feature_: str | None = None
        self.sign_: float | None = None

    def _fit_state(self, prep: Prepared, progress: bool) -> None:
        cfg, index = self.config, prep.index
        ends = prep.ends("valid")  # purged: every label ends inside validation
        fwd = L.forward_excess_returns(prep.prices, prep.benchmark, cfg.horizon)
        ic = daily_rank_ic(index.rows[ends], lookup(fwd, index, ends), index.row_dates[ends])
        if not np.isfinite(ic).any():
            raise ConfigError("MomentumModel: no feature has a finite validation rank IC (fewer than 3 stocks a day?)")
        best = int(np.nanargmax(np.abs(ic)))
        self.feature_, self.sign_ = prep.features[best], float(np.sign(ic[best]) or 1.0)
        self.report_.extra = {
            "feature": self.feature_,
            "sign": self.sign_,
            "valid_rank_ic": {n: float(v) for n, v in zip(prep.features, ic)},
        }

    def _output(self, x: np.ndarray) -> np.ndarray:
        return self.sign_ * x[:, self.features_.index(self.feature_)].astype(np.float64)

    def _to_score(self, raw: np.ndarray) -> np.ndarray:
        return np.tanh(raw)

    def _is_fitted(self) -> bool:
        return self.feature_ is not None

    def _state_files(self) -> dict:
        return {self.FILE: _json_bytes({"feature": self.feature_, "sign": self.sign_})}

    def _load_state(self, files: dict, meta: dict) -> None:
        state = _read_json(files, self.FILE, self.KIND)
        if state.get("feature") not in self.features_ or state.get("sign") not in (1.0, -1.0):
            raise ArtifactError(
                f"{self.FILE}: feature {state.get('feature')!r} / sign {state.get('sign')!r} do not "
                f"fit the features {self.features_}; retrain it"
            )
        self.feature_, self.sign_ = state["feature"], float(state["sign"])


# ---------------------------------------------------------------------- random (the null)
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def cell_noise(seed: int, tickers, dates) -> np.ndarray:
    """Uniform noise in [-1, 1) from (seed, ticker, date) alone: stable across panels and calls."""
    ticker_hash = np.array([zlib.crc32(str(t).encode()) for t in tickers], dtype=np.uint64)
    days = np.asarray(dates, dtype="datetime64[D]").astype(np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = _splitmix64(np.uint64(seed) * np.uint64(0x100000001B3) ^ ticker_hash)
        x = _splitmix64(x ^ days)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 2.0 - 1.0


class RandomModel(BaseAlphaModel):
    NAME = "random"
    KIND = "random-alpha"
    INPUT = "last_day"
    SCORE = "uniform noise in [-1, 1)"
    FILE = "random.json"

    def __init__(self, config=None, **config_params):
        super().__init__(config, **config_params)
        self.seed_: int | None = None

    def _fit_state(self, prep: Prepared, progress: bool) -> None:
        self.seed_ = int(self.config.seed)

    def scores_for(self, index: WindowIndex, ends: np.ndarray) -> np.ndarray:
        tickers = np.asarray(index.tickers, dtype=object)[index.row_ticker[ends]]
        return cell_noise(self.seed_, tickers, index.row_dates[ends])

    def raw_output(self, index: WindowIndex, ends: np.ndarray) -> np.ndarray:
        return self.scores_for(index, ends)

    def _is_fitted(self) -> bool:
        return self.seed_ is not None

    def _state_files(self) -> dict:
        return {self.FILE: _json_bytes({"seed": self.seed_})}

    def _load_state(self, files: dict, meta: dict) -> None:
        self.seed_ = int(_read_json(files, self.FILE, self.KIND)["seed"])
