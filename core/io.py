"""Atomic writes: a file or a directory either appears whole or not at all; and JSON-safe values.

Write to a temporary sibling, then os.replace (atomic on POSIX), so an interrupted run never
leaves a half-written cache entry, result file or model artifact behind. JSON has no NaN, no
numpy numbers and no dates: `json_safe` turns a result into plain JSON values (NaN -> null).

A temporary is named after its owner, `.<name>.tmp-<host>-<pid>-<random><suffix>`, so a run killed
before its rename (SIGKILL, power loss) leaves something recognisable: the next write of the same
name removes the temporaries of `<name>` whose process is dead on this host, or, from another host
(a shared disk) or from before these names, that are older than STALE_AFTER. A live process's
temporaries on this host are never removed.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import datetime as _dt
import errno
import json
import math
import os
import re
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import ArtifactError, ConfigError


def ensure_folder(folder) -> Path:
    """mkdir -p `folder`; ConfigError naming the file in the way when a part of it is a file."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise ConfigError(
            f"{blocker} is a file, not a folder, so nothing can be written into {folder}; "
            f"choose another folder (e.g. with --out) or move the file away"
        ) from None
    return folder


STALE_AFTER = 24 * 3600.0  # seconds: a temporary whose owner cannot be checked is stale after a day


def _host() -> str:
    # '-' separates the name's fields, so the host keeps only letters, digits and '_'
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def temp_name(name: str, kind: str = "tmp", suffix: str = "") -> str:
    """`.<name>.<kind>-<host>-<pid>-<random><suffix>`: a temporary sibling of `name` owned by this
    process (kind "tmp" for what is being written, "old" for what is being replaced)."""
    return f".{name}.{kind}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def temp_owner(name: str, entry: str) -> tuple[str, int] | None:
    """(host, pid) when `entry` is a temporary of `name` made by temp_name, else None."""
    match = re.match(rf"\.{re.escape(name)}\.(?:tmp|old)-([A-Za-z0-9_]+)-(\d+)-[0-9a-f]{{8}}", entry)
    return (match.group(1), int(match.group(2))) if match else None


def _legacy_temp(name: str, entry: str) -> bool:
    # names from before temp_name, owner unknown: tempfile's `.<name>.<8 random chars>[suffix]`
    # and atomic_dir's `.<name>.old-<pid>`
    rest = entry[len(name) + 2 :] if entry.startswith(f".{name}.") else ""
    return bool(re.fullmatch(r"[a-z0-9_]{8}(\.[A-Za-z0-9.]+)?|old-\d+", rest))


def pid_alive(pid: int) -> bool:
    """True when a process `pid` exists on this host (another user's counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(name: str, entry: str, age: float, max_age: float = STALE_AFTER) -> bool:
    """Whether the sibling `entry` (`age` seconds since it was last modified) is a temporary of
    `name` left by a run that is gone: its pid is dead on this host, or its owner cannot be checked
    (another host, or a name from before temp_name) and it is older than `max_age`."""
    owner = temp_owner(name, entry)
    if owner is None:
        return _legacy_temp(name, entry) and age > max_age
    host, pid = owner
    if host == _host():
        return pid != os.getpid() and not pid_alive(pid)
    return age > max_age


def remove_stale_temps(path, max_age: float = STALE_AFTER) -> list[Path]:
    """Remove the stale temporaries of `path` (see is_stale) beside it; return what was removed."""
    path = Path(path)
    removed, now = [], time.time()
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.name.startswith(f".{path.name}."):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue  # its owner renamed or removed it meanwhile
        if is_stale(path.name, entry.name, age, max_age):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    ensure_folder(path.parent)
    remove_stale_temps(path)
    tmp = path.with_name(temp_name(path.name, suffix=suffix or ".tmp"))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # results and caches are shared
    os.close(fd)
    os.chmod(tmp, 0o644)  # whatever the umask
    try:
        yield tmp
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
    ensure_folder(path.parent)
    remove_stale_temps(path)
    tmp = path.with_name(temp_name(path.name))
    tmp.mkdir(mode=0o755)
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        if path.exists() and exchange(tmp, path):  # one atomic swap: never a moment without `path`
            shutil.rmtree(tmp, ignore_errors=True)  # tmp holds the replaced tree now
            return
        if path.exists():
            old = path.with_name(temp_name(path.name, kind="old"))
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def exchange(a, b) -> bool:
    """Swap two existing paths in one atomic rename (Linux renameat2 with RENAME_EXCHANGE): a reader
    sees either the old pair or the swapped pair, never a missing name. False, with nothing changed,
    where the platform, the C library or the file system cannot do it (callers then fall back to two
    renames)."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a C library older than glibc 2.28
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # not supported here (or across file systems): nothing was renamed
    raise OSError(err, os.strerror(err), str(a), None, str(b))


# ---------------------------------------------------------------------------- reading back
def read_json(path, restore: str):
    """The JSON value of the file at `path`; ArtifactError naming the file, where it is damaged and
    `restore` (how to get a good copy back) when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        where = f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
    except UnicodeDecodeError as exc:
        where = f"not text: byte {exc.start} is not UTF-8"
    raise ArtifactError(f"{path} is damaged ({where}); {restore}")


def read_csv_rows(path, columns, restore: str) -> list[dict]:
    """The rows of the CSV at `path` as dicts (all text; [] when the file is absent); ArtifactError
    naming the file, the line and `restore` when its header is not `columns` or a row has more or
    fewer fields (a cut-off write, an edit)."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            header, rows = reader.fieldnames, list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ArtifactError(f"{path} is damaged (not a readable CSV: {exc}); {restore}") from None
    if list(header or []) != list(columns):
        raise ArtifactError(f"{path} is damaged (its header is {header}, expected {list(columns)}); {restore}")
    for number, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise ArtifactError(
                f"{path} is damaged (line {number} has {'more' if None in row else 'fewer'} than "
                f"{len(columns)} fields); {restore}"
            )
    return rows


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
