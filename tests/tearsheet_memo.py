"""QuantStats' HTML report rendered once per distinct input for a whole test run (every xdist worker
and the subprocesses a test starts), kept as files in one folder.

The report is the slowest step of a backtest (~4 s of CPU, nearly all matplotlib), and many tests
write it for the very same returns: a sweep's confirmation replays, a variant run again alone, the
SIGKILL test's child sweeps. The first rendering of every input is the real one; a repeat writes
that rendering's bytes. A test that replaces QuantStats' report function gets the real call.
Used by tests/conftest.py and tests/sweep_kill_child.py (no pytest here)."""

import hashlib
import inspect
import os
import sys
from pathlib import Path

ENV = "ALPHA_TEST_TEARSHEET_MEMO"  # the memo folder, for a test's subprocesses to share it


def memo_writer(real, folder: Path):
    """A drop-in for analyzers.tearsheet.write_tearsheet that renders each distinct input once."""
    from core.io import atomic_path

    signature = inspect.signature(real)
    html = []  # QuantStats' own report function, seen at the first call (importing it takes seconds)

    def write_tearsheet(*args, **kwargs):
        qs = sys.modules.get("quantstats")  # not imported yet: nobody replaced it (a repeat never imports it)
        if qs is not None and not html:
            html.append(qs.reports.html)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = tearsheet_key(bound.arguments)
        if key is None or (qs is not None and qs.reports.html is not html[0]):  # a test that replaced QuantStats
            return real(*args, **kwargs)
        path, kept = Path(bound.arguments["path"]), folder / f"{key}.html"
        if not kept.is_file():
            out = real(*args, **kwargs)
            if out is not None:  # None: QuantStats cannot report on these returns, nothing written
                with atomic_path(kept) as tmp:  # another worker may render the same input: same bytes
                    tmp.write_bytes(Path(out).read_bytes())
            return out
        with atomic_path(path, suffix=".html") as tmp:
            tmp.write_bytes(kept.read_bytes())
        return path

    return write_tearsheet


def modules_holding(real) -> list:
    """Every loaded module with `real` as its write_tearsheet (`from analyzers.tearsheet import ...` too)."""
    return [m for m in list(sys.modules.values()) if getattr(m, "write_tearsheet", None) is real]


def install_from_env() -> None:
    """In a test's subprocess: use the run's memo folder, when the test passed one down."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    import analyzers.tearsheet as tearsheet

    real = tearsheet.write_tearsheet
    writer = memo_writer(real, Path(folder))
    for module in modules_holding(real):
        module.write_tearsheet = writer


def tearsheet_key(arguments: dict) -> str | None:
    """sha256 over every input of write_tearsheet but the path; None for inputs this does not know."""
    import numpy as np
    import pandas as pd

    h = hashlib.sha256()
    for name, value in arguments.items():
        if name == "path":
            continue
        h.update(name.encode())
        if isinstance(value, pd.Series) and isinstance(value.index, pd.DatetimeIndex):
            h.update(repr((value.name, str(value.dtype), str(value.index.tz))).encode())
            h.update(np.ascontiguousarray(value.index.asi8).tobytes())
            h.update(np.ascontiguousarray(value.to_numpy()).tobytes())
        elif value is None or isinstance(value, (str, int, float, bool)):
            h.update(repr(value).encode())
        else:
            return None
    return h.hexdigest()
