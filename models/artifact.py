"""The saved model: a directory with `model.json` (everything needed to use the fitted state, and
to judge whether to trust it) and the model's state files, each with its sha256 in model.json:
`weights.pt` for torch networks (a state dict, loaded with weights_only=True), LightGBM's own
text format, JSON coefficients for linear models. No pickle anywhere. Written to a temporary
directory and renamed, so an interrupted save never leaves half an artifact.

The same manifest and files travel between processes (walk-forward folds, the zoo's workers) as
plain dicts and bytes: `to_payload` / `from_payload`.
"""
from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.errors import ArtifactError
from feeds.io import atomic_dir

FORMAT_VERSION = 2
META = "model.json"
WEIGHTS = "weights.pt"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_versions() -> dict:
    import backtrader
    import torch
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "backtrader": backtrader.__version__}


def manifest(model, files: dict) -> dict:
    from models.base import config_fingerprint
    model._check_fitted()
    report = model.report_
    return {
        "format_version": FORMAT_VERSION,
        "kind": model.KIND,
        "model": model.NAME,
        "score": model.SCORE if model.config.label == "classification" else "raw regression output",
        "config": model.config.to_dict(),
        "config_fingerprint": config_fingerprint(model.config),
        "params": model.params,
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
        "chosen": report.extra if report else {},
        "fit_seconds": round(report.seconds, 2) if report else None,
        "threads": model.config.threads,
        "data_fingerprint": model.data_fingerprint_,
        "versions": package_versions(),
        "files": {name: _sha256(data) for name, data in files.items()},
    }


def to_payload(model) -> dict:
    """The fitted model as a JSON-able manifest plus {file: bytes}: what save writes."""
    files = model._state_files()
    return {"meta": manifest(model, files), "files": files}


def from_payload(payload: dict, where: str = "payload"):
    """Rebuild a model from a manifest and its files (checksums checked)."""
    from models.base import FitReport
    from models.config import ModelConfig
    from models.dataset import Scaler
    from models.registry import model_class

    meta, files = payload["meta"], payload["files"]
    for name, digest in meta.get("files", {}).items():
        if name not in files:
            raise ArtifactError(f"{where}: {name} missing; the artifact is incomplete, retrain it")
        if _sha256(files[name]) != digest:
            raise ArtifactError(f"{where}: {name}: checksum differs from the one recorded in {META}; the file is "
                                "damaged or was replaced. Retrain (--retrain) rather than trust it")
    cls = model_class(meta.get("model"), where)
    try:
        config = ModelConfig.from_dict(meta["config"])
        model = cls(config, **meta.get("params", {}))
        model.features_ = list(meta["features"])
        model.scaler_ = Scaler.from_dict(meta["scaler"])
        from models.base import set_threads
        set_threads(config.threads)
        model._load_state(files, meta)
    except ArtifactError:
        raise
    except Exception as exc:  # a state that does not fit the recorded architecture, a bad key...
        raise ArtifactError(f"{where}: cannot rebuild the model from its files ({type(exc).__name__}: {exc}); "
                            "retrain it") from exc
    model.report_ = FitReport(history=meta.get("history", []), best_epoch=meta.get("best_epoch") or 0,
                              n_samples=meta.get("n_samples", {}), windows=meta.get("fit_windows", {}),
                              dropped_features=meta.get("dropped_features", []),
                              seconds=meta.get("fit_seconds") or 0.0, extra=meta.get("chosen", {}))
    model.data_fingerprint_ = meta.get("data_fingerprint", {})
    model.meta_ = meta
    return model


def save_model(model, path) -> Path:
    path = Path(path)
    payload = to_payload(model)
    with atomic_dir(path) as tmp:
        for name, data in payload["files"].items():
            (tmp / name).write_bytes(data)
        (tmp / META).write_text(json.dumps(payload["meta"], indent=2) + "\n")
    return path


def read_manifest(path, filename: str, kind, version, writer: str) -> dict:
    """The JSON file that says what a saved directory is; ArtifactError naming it when it is
    missing, damaged, or of another kind (a name or a tuple of names) or format version (a number
    or a tuple of numbers)."""
    path = Path(path)
    file = path / filename
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    versions = (version,) if isinstance(version, int) else tuple(version)
    if not file.is_file():
        raise ArtifactError(f"{file}: missing; is {path} a directory written by {writer}?")
    try:
        found = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{file}: damaged JSON ({exc}); retrain with --retrain or restore the file") from exc
    if found.get("format_version") not in versions or found.get("kind") not in kinds:
        raise ArtifactError(f"{file}: format {found.get('kind')!r} v{found.get('format_version')!r} is not "
                            f"{' / '.join(kinds)} v{versions[-1]}; retrain with this version of the project")
    return found


def read_meta(path) -> dict:
    """A model's manifest. Version 1 (LSTM only, written before the zoo) is read as version 2:
    its one state file is weights.pt, whose sha256 it recorded as weights_sha256."""
    from models.registry import artifact_kinds
    meta = read_manifest(path, META, artifact_kinds(), (1, FORMAT_VERSION), "a model's save()")
    if meta["format_version"] == 1:
        if meta["kind"] != "lstm-alpha":
            raise ArtifactError(f"{Path(path) / META}: format v1 of kind {meta['kind']!r} does not exist; retrain it")
        meta = {**meta, "model": "lstm", "files": {WEIGHTS: meta.get("weights_sha256")}}
    return meta


def load_model(path):
    """Any zoo model from its directory (the kind recorded in model.json says which class)."""
    path = Path(path)
    meta = read_meta(path)
    files = {}
    for name in meta.get("files", {}):
        file = path / name
        if not file.is_file():
            raise ArtifactError(f"{file}: missing; the artifact at {path} is incomplete, retrain it")
        files[name] = file.read_bytes()
    return from_payload({"meta": meta, "files": files}, where=str(path))
