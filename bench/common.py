"""Small helpers shared by the benchmarks: timing, medians over repeats, peak memory, a table.

Every benchmark measures its baseline in the same process and prints ratios against it, so the
numbers survive a busy or different machine."""

from __future__ import annotations

import gc
import resource
import statistics
import time
import tracemalloc
from typing import Any, Callable


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call, with the garbage collector settled first."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_time(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, list[float], Any]:
    """(median seconds, all timings, last result) over ``repeats`` calls."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        seconds, result = timed(fn)
        times.append(seconds)
    return statistics.median(times), times, result


def traced_peak_mb(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(peak MB of Python allocations during the call, result), via tracemalloc.

    tracemalloc slows the call down: never time a call and trace it in the same run."""
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, result


def process_peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def print_table(rows: list[dict], title: str = "") -> str:
    """Print dict rows as an aligned text table (columns in first-seen order); return the text."""
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    cells = [[fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [title] if title else []
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in cells]
    text = "\n".join(lines)
    print(text)
    return text
