"""Atomic writes: a file or a directory either appears whole or not at all; and JSON-safe values.

Write to a temporary sibling, then os.replace (atomic on POSIX), so an interrupted run never
leaves a half-written cache entry, result file or model artifact behind. JSON has no NaN, no
numpy numbers and no dates: `json_safe` turns a result into plain JSON values (NaN -> null).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and caches are meant to be shared
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=json_default) + "\n")


def json_default(value):
    """json.dumps' `default=` for results: numpy scalars, timestamps and paths as plain JSON."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary directory beside `path`; on success it replaces `path` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------- JSON-safe values
def json_safe(value):
    """A copy of `value` made only of dict, list, str, int, float (finite), bool and None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (_dt.date, _dt.datetime, pd.Timestamp, np.datetime64)):
        return _iso(value)
    if isinstance(value, pd.DataFrame):
        return [json_safe(r) for r in value.reset_index().to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {_key(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {_key(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):
        return json_safe(value.item())
    return str(value)


def _key(key) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (_dt.date, _dt.datetime, pd.Timestamp, np.datetime64)):
        return _iso(key)
    safe = json_safe(key)
    return safe if isinstance(safe, str) else str(safe)


def _iso(value) -> str:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, _dt.datetime) and value.time() == _dt.time(0) and value.tzinfo is None:
        return value.date().isoformat()  # daily bars: "2019-01-02", not "2019-01-02T00:00:00"
    return value.isoformat()
