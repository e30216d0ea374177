"""The saved model: a directory with `weights.pt` (a torch state dict, loaded with
weights_only=True) and `model.json` (everything needed to use the weights, and to judge whether
to trust them). No pickle anywhere. Written to a temporary directory and renamed, so an
interrupted save never leaves half an artifact.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from feeds.errors import ArtifactError
from feeds.io import atomic_dir

FORMAT_VERSION = 1
WEIGHTS = "weights.pt"
META = "model.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_versions() -> dict:
    import backtrader
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "backtrader": backtrader.__version__}


def save_model(model, path) -> Path:
    from models.train import config_fingerprint
    model._check_fitted()
    path = Path(path)
    with atomic_dir(path) as tmp:
        torch.save(model.net_.state_dict(), tmp / WEIGHTS)
        report = model.report_
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": "lstm-alpha",
            "score": "2p-1" if model.config.label == "classification" else "raw regression output",
            "config": model.config.to_dict(),
            "config_fingerprint": config_fingerprint(model.config),
            "features": model.features_,
            "dropped_features": report.dropped_features if report else [],
            "seq_len": model.config.seq_len,
            "horizon": model.config.horizon,
            "label": model.config.label,
            "scaler": model.scaler_.to_dict(),
            "fit_windows": report.windows if report else {},
            "n_samples": report.n_samples if report else {},
            "history": report.history if report else [],
            "best_epoch": report.best_epoch if report else None,
            "fit_seconds": round(report.seconds, 2) if report else None,
            "threads": model.config.threads,
            "data_fingerprint": model.data_fingerprint_,
            "versions": package_versions(),
            "weights_sha256": _sha256(tmp / WEIGHTS),
        }
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    return path


def read_manifest(path, filename: str, kind: str, version: int, writer: str) -> dict:
    """The JSON file that says what a saved directory is; ArtifactError naming it when it is
    missing, damaged, or of another kind or format version."""
    path = Path(path)
    file = path / filename
    if not file.is_file():
        raise ArtifactError(f"{file}: missing; is {path} a directory written by {writer}?")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{file}: damaged JSON ({exc}); retrain with --retrain or restore the file") from exc
    if manifest.get("format_version") != version or manifest.get("kind") != kind:
        raise ArtifactError(f"{file}: format {manifest.get('kind')!r} v{manifest.get('format_version')!r} is not "
                            f"{kind} v{version}; retrain with this version of the project")
    return manifest


def read_meta(path) -> dict:
    return read_manifest(path, META, "lstm-alpha", FORMAT_VERSION, "AlphaModel.save()")


def load_model(path):
    from models.config import ModelConfig
    from models.dataset import Scaler
    from models.lstm import AlphaLSTM
    from models.train import AlphaModel, FitReport

    path = Path(path)
    meta = read_meta(path)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise ArtifactError(f"{weights}: missing; the artifact at {path} is incomplete, retrain it")
    if _sha256(weights) != meta.get("weights_sha256"):
        raise ArtifactError(f"{weights}: checksum differs from the one recorded in {META}; the file is damaged or "
                            "was replaced. Retrain (--retrain) rather than trust it")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        config = ModelConfig.from_dict(meta["config"])
        model = AlphaModel(config)
        torch.set_num_threads(config.threads)
        net = AlphaLSTM(len(meta["features"]), config.hidden, config.layers, config.dropout)
        net.load_state_dict(state)
    except ArtifactError:
        raise
    except Exception as exc:  # a state dict that does not fit the recorded architecture, a bad key...
        raise ArtifactError(f"{path}: cannot rebuild the model from its files ({type(exc).__name__}: {exc}); retrain it") from exc
    net.eval()
    model.net_ = net
    model.features_ = list(meta["features"])
    model.scaler_ = Scaler.from_dict(meta["scaler"])
    model.report_ = FitReport(history=meta.get("history", []), best_epoch=meta.get("best_epoch") or 0,
                              n_samples=meta.get("n_samples", {}), windows=meta.get("fit_windows", {}),
                              dropped_features=meta.get("dropped_features", []), seconds=meta.get("fit_seconds") or 0.0)
    model.data_fingerprint_ = meta.get("data_fingerprint", {})
    model.meta_ = meta
    return model
