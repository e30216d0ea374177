"""The saved model: a directory with `model.json` (everything needed to use the fitted state, and
to judge whether to trust it) and the model's state files, each with its sha256 in model.json:
`weights.pt` for torch networks (a state dict, loaded with weights_only=True), LightGBM's own
text format, JSON coefficients for linear models. No pickle anywhere. Written to a temporary
directory and renamed, so an interrupted save never leaves half an artifact.

The same manifest and files travel between processes (walk-forward folds, the zoo's workers) as
plain dicts and bytes: a model's `state()` / `from_state()`, with `with_checksums` / `checked`. A
fitted model that is pickled (Backtrader's optstrategy workers, copy.deepcopy) pickles as such a
parcel (`to_parcel` / `from_parcel`): JSON text and bytes, never a pickled torch or LightGBM object.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import ArtifactError
from core.io import atomic_dir

FORMAT_VERSION = 2
META = "model.json"
WEIGHTS = "weights.pt"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_versions() -> dict:
    import backtrader
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "backtrader": backtrader.__version__,
    }


def with_checksums(state: dict) -> dict:
    """The state as written: its meta gains the format version, the package versions and the
    sha256 of every state file."""
    meta = {
        "format_version": FORMAT_VERSION,
        **state["meta"],
        "versions": package_versions(),
        "files": {name: _sha256(data) for name, data in state["files"].items()},
    }
    return {"meta": meta, "files": state["files"]}


def checked(state: dict, where: str = "state") -> dict:
    """The state back, once every file its meta lists is there with the recorded sha256."""
    meta, files = state["meta"], state["files"]
    for name, digest in meta.get("files", {}).items():
        if name not in files:
            raise ArtifactError(f"{where}: {name} missing; the artifact is incomplete, retrain it")
        if _sha256(files[name]) != digest:
            raise ArtifactError(
                f"{where}: {name}: checksum differs from the one recorded in {META}; the file is "
                "damaged or was replaced. Retrain (--retrain) rather than trust it"
            )
    return state


PARCEL = "alpha-model-state"


def to_parcel(state: dict) -> dict:
    """A model's state() as it crosses a process boundary inside a pickle: model.json's text (JSON,
    checksums included) and the state files' bytes, the artifact's content without the disk."""
    state = with_checksums(state)
    return {"parcel": PARCEL, "meta": json.dumps(state["meta"]), "files": dict(state["files"])}


def is_parcel(value) -> bool:
    return isinstance(value, dict) and value.get("parcel") == PARCEL


def from_parcel(parcel: dict, where: str = "a model sent between processes") -> dict:
    """The state a parcel holds, every file checked against its recorded sha256."""
    try:
        meta = json.loads(parcel["meta"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{where}: the model's manifest is damaged ({exc}); send it again") from exc
    return checked({"meta": meta, "files": parcel["files"]}, where=where)


def write_artifact(state: dict, path) -> Path:
    """Write a model's state() as a directory: its files and model.json, all or nothing."""
    path = Path(path)
    state = with_checksums(state)
    with atomic_dir(path) as tmp:
        for name, data in state["files"].items():
            (tmp / name).write_bytes(data)
        (tmp / META).write_text(json.dumps(state["meta"], indent=2) + "\n")
    return path


def read_manifest(path, filename: str, kind, version, writer: str) -> dict:
    """The JSON file that says what a saved directory is; ArtifactError naming it when it is
    missing, damaged, or of another kind (a name or a tuple of names) or format version (a number
    or a tuple of numbers; kind None accepts any)."""
    path = Path(path)
    file = path / filename
    kinds = None if kind is None else (kind,) if isinstance(kind, str) else tuple(kind)
    versions = (version,) if isinstance(version, int) else tuple(version)
    if not file.is_file():
        raise ArtifactError(f"{file}: missing; is {path} a directory written by {writer}?")
    try:
        found = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{file}: damaged JSON ({exc}); retrain with --retrain or restore the file") from exc
    if found.get("format_version") not in versions or (kinds is not None and found.get("kind") not in kinds):
        expected = " / ".join(kinds) if kinds else "a saved model"
        raise ArtifactError(
            f"{file}: format {found.get('kind')!r} v{found.get('format_version')!r} is not "
            f"{expected} v{versions[-1]}; retrain with this version of the project"
        )
    return found


def read_meta(path, kinds=None) -> dict:
    """A model's manifest (`kinds`: the artifact kinds to accept; None accepts any). Version 1
    (LSTM only, written before the zoo) is read as version 2: its one state file is weights.pt,
    whose sha256 it recorded as weights_sha256."""
    path = Path(path)
    meta = read_manifest(path, META, kinds, (1, FORMAT_VERSION), "a model's save()")
    if meta["format_version"] == 1:
        if meta["kind"] != "lstm-alpha":
            raise ArtifactError(f"{path / META}: format v1 of kind {meta['kind']!r} does not exist; retrain it")
        meta = {**meta, "model": "lstm", "files": {WEIGHTS: meta.get("weights_sha256")}}
    return meta


def read_artifact(path, kinds=None) -> dict:
    """A saved model's state ({"meta", "files"}), its files checked against model.json."""
    path = Path(path)
    meta = read_meta(path, kinds)
    files = {}
    for name in meta.get("files", {}):
        file = path / name
        if not file.is_file():
            raise ArtifactError(f"{file}: missing; the artifact at {path} is incomplete, retrain it")
        files[name] = file.read_bytes()
    return checked({"meta": meta, "files": files}, where=str(path))
