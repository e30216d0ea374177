"""Trained models and results folders on disk (shared by every job): get_model and
get_selection_model fit a model or reuse the saved one whose kind, configuration and data
fingerprints match (artifact_dir names it), model_diagnostics says whether its signal is worth
trading, resolve_out_dir keeps a run's folder inside the results root."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from core.pool import auto_workers
from feeds import ConfigError, series_fingerprint
from jobs import ROOT
from jobs.market import MarketData
from jobs.periods import resolve_split
from models import ModelConfig, make_model

__all__ = [
    "MODEL_STORE",
    "RESULTS",
    "artifact_dir",
    "get_model",
    "get_selection_model",
    "model_config",
    "model_diagnostics",
    "model_kind",
    "resolve_out_dir",
    "walk_forward_params",
]


MODEL_STORE = ROOT / "models" / "store"


RESULTS = ROOT / "results"


def resolve_out_dir(root, name: str) -> Path:
    """results/<name>, refusing a name that climbs out of the results folder."""
    root = Path(root).resolve()
    blocker = next((p for p in (root, *root.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:  # found now, before minutes of training, not when the results are written
        where = "" if blocker == root else f": {blocker}"
        raise ConfigError(
            f"--out {root}{where} is a file, not a folder; give the folder the results go into (default results/)"
        )
    target = (root / name).resolve()
    if not name or root not in target.parents:
        raise ConfigError(f"run name {name!r} would write outside {root}; use a plain name such as 'default'")
    return target


def model_config(config: dict) -> ModelConfig:
    """The model's hyperparameters ([model] without `kind`, which names the zoo model), with the split
    resolved to dates."""
    if not isinstance(config["model"].get("split"), dict) or not config["model"]["split"].get("test_end"):
        raise ConfigError(
            "model.split is 'auto' or has empty dates: call jobs.periods.resolve_split(config, data) first"
        )
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
    wf.pop("selection_train_stride", None)  # the sweep's selection folds only (get_selection_model)
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
    (models.selection.check_unseen proves it for the dates a sweep uses). Each fold trains on every
    `selection_train_stride`-th training window (2 by default, validation on all of them; the
    plan records it, so a model stored with another stride is not reused)."""
    from models.selection import SELECTION_TRAIN_STRIDE, selection_walk_forward

    config = resolve_split(config, data)
    cfg = model_config(config)
    plan = {k: v for k, v in config.get("walk_forward", {}).items() if k not in ("enabled", "workers")}
    plan["train_stride"] = plan.pop("selection_train_stride", SELECTION_TRAIN_STRIDE)
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
    workers = int(config["walk_forward"].get("workers", 0)) or auto_workers(cfg.threads, len(model.folds))
    if progress:
        where = "as Ray tasks" if ray else f"in {workers} process(es) x {cfg.threads} torch thread(s)"
        print(f"training the walk-forward model: {len(model.folds)} folds {where}, kept in {path}")
    model = model.fit(data.prices, data.benchmark, vix=data.vix, progress=progress, workers=workers, ray=ray)
    model.save(path)
    return model, path, False


def model_diagnostics(model, data: MarketData, config: dict, scores: pd.DataFrame | None = None) -> dict:
    """Validation and test rank IC (Newey-West t over the same days), the spread of p, and how often a
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
