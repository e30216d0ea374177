"""Vector-engine benchmark: the compiled simulator of AlphaRankStrategy against the lean Cerebro run
(ArrayData lean + LeanBroker + ScoreAlpha on the same scores) of the same variant, in the same
process, then a grid of variants over top_k x entry x exit x review_days x position_pct.
Synthetic universe (not market data) with one set of seeded random scores (speed, not skill).

    python -m bench.bench_vector                    # 500 tickers x 2520 days, a 1,000-variant grid
    python -m bench.bench_vector --quick            # 100 tickers x 750 days, a 64-variant grid

Prints the compile time on its own line (a fresh numba cache in a subprocess), the time per variant
of the simulator after compile and of the lean Cerebro run (target >= 100x), the grid's wall time
(target <= 60 s for 1,000 variants) and variant-data-bars per second, and the peak RSS (< 3 GB).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import median_time, print_table, process_peak_rss_mb, timed
from feeds.synthetic import SYNTHETIC_LABEL, make_synthetic_universe

TARGET_SPEEDUP, TARGET_GRID_S, TARGET_RSS_MB = 100.0, 60.0, 3072.0
ROOT = Path(__file__).resolve().parents[1]
GRID = dict(
    top_k=[3, 5, 8, 10, 20],
    entry_threshold=[0.0, 0.2, 0.4, 0.6, 0.8],
    exit_threshold=[-0.4, -0.2, 0.0, 0.2],
    review_days=[1, 5, 7, 10, 21],
    position_pct=[0.05, 0.1],
)
QUICK_GRID = dict(
    top_k=[3, 5, 10, 20],
    entry_threshold=[0.2, 0.6],
    exit_threshold=[-0.2, 0.0],
    review_days=[5, 10],
    position_pct=[0.05, 0.1],
)
PARAMS = dict(top_k=10, position_pct=0.1)  # bench_backtest.build's variant
CASH, COMMISSION = 1_000_000.0, 0.0005

_COMPILE = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd
t0 = time.perf_counter()
from strategies.vector import simulate
t1 = time.perf_counter()
index = pd.bdate_range("2020-01-01", periods=20)
prices = {{t: pd.DataFrame({{"open": 10.0, "close": 11.0}}, index=index) for t in "AB"}}
scores = pd.DataFrame({{"A": 0.5, "B": -0.5}}, index=index)
simulate(prices, scores, dict(top_k=1), 10_000.0, 0.0)
t2 = time.perf_counter()
simulate(prices, scores, dict(top_k=1), 10_000.0, 0.0)
t3 = time.perf_counter()
print(t1 - t0, (t2 - t1) - (t3 - t2))
"""


def compile_seconds(cache_dir: str) -> tuple[float, float]:
    """(import seconds, first-call seconds beyond a warm call) in a fresh process using `cache_dir`."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run(
        [sys.executable, "-c", _COMPILE.format(root=str(ROOT))], env=env, capture_output=True, text=True, check=True
    )
    first, compile_s = (float(x) for x in out.stdout.split())
    return first, compile_s


def grid_variants(grid: dict) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def cerebro_run(panel, bench, scores):
    from bench.bench_backtest import build

    strategy = build(panel, bench, None, lean=True, top_k=PARAMS["top_k"], scores=scores).run()[0]
    return strategy


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the simulator (median)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the grid")
    parser.add_argument("--quick", action="store_true", help="100 tickers x 750 days, a 64-variant grid")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.quick:
        args.tickers, args.days = 100, 750
    from jobs import sweep
    from strategies.vector import panel_benchmark_metrics, prepare, simulate_prepared

    with tempfile.TemporaryDirectory() as cache:
        import_s, compile_s = compile_seconds(cache)
    print(f"compile (numba, fresh cache, once per machine): {compile_s:.1f} s; import {import_s:.1f} s")

    panel, bench = make_synthetic_universe(n_tickers=args.tickers, n_days=args.days, seed=0)
    data_bars = int(panel.close.notna().to_numpy().sum())
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(rng.uniform(-1, 1, panel.close.shape), index=panel.dates, columns=panel.tickers)
    print(f"{SYNTHETIC_LABEL}\n{panel!r}: {data_bars:,} data-bars; one set of seeded random scores")

    frames = dict(panel.items())
    prepare_s, shared = timed(lambda: prepare(frames, scores, benchmark=bench))
    simulate_prepared(shared, PARAMS, CASH, COMMISSION)  # load the compiled loop
    full_s, _, full = median_time(lambda: simulate_prepared(shared, PARAMS, CASH, COMMISSION), args.repeats)
    lean_s, _, _ = median_time(
        lambda: simulate_prepared(shared, PARAMS, CASH, COMMISSION, trade_log=False), args.repeats
    )
    from strategies.vector import run_arrays

    loop_s, _, _ = median_time(lambda: run_arrays(shared, PARAMS, CASH, COMMISSION), args.repeats)
    cerebro_s, strategy = timed(lambda: cerebro_run(panel, bench, scores))
    value = strategy.broker.getvalue()
    same = abs(full.equity.iloc[-1] - value) <= 1e-9 * abs(value)
    rows = [
        {
            "run": "lean Cerebro, ScoreAlpha (baseline)",
            "seconds": cerebro_s,
            "us/data-bar": 1e6 * cerebro_s / data_bars,
            "speed-up": 1.0,
        },
        {
            "run": "vector: loop + metrics + trade log",
            "seconds": full_s,
            "us/data-bar": 1e6 * full_s / data_bars,
            "speed-up": cerebro_s / full_s,
        },
        {
            "run": "vector: loop + metrics (a sweep's variant)",
            "seconds": lean_s,
            "us/data-bar": 1e6 * lean_s / data_bars,
            "speed-up": cerebro_s / lean_s,
        },
        {
            "run": "vector: the compiled loop alone",
            "seconds": loop_s,
            "us/data-bar": 1e6 * loop_s / data_bars,
            "speed-up": cerebro_s / loop_s,
        },
        {
            "run": "vector: prepare (once per score set)",
            "seconds": prepare_s,
            "us/data-bar": 1e6 * prepare_s / data_bars,
            "speed-up": "",
        },
    ]
    print_table(rows, title=f"one variant {PARAMS}, medians of {args.repeats} (Cerebro: 1 run)")
    print(
        f"final value vector {full.equity.iloc[-1]:,.4f} vs Cerebro {value:,.4f}: equal {same}; "
        f"fills {len(full.trades)}"
    )

    grid = grid_variants(QUICK_GRID if args.quick else GRID)
    panels = {"bench": (shared, panel_benchmark_metrics(shared))}
    tasks = [sweep.VectorTask(f"v{i}", "bench", params, CASH, COMMISSION) for i, params in enumerate(grid)]
    mode = "processes" if args.workers > 1 else "sequential"
    grid_s, found = timed(lambda: sweep.simulate_variants(tasks, panels, mode, args.workers))
    errors = [name for name, (_, _, error) in found.items() if error]
    sharpes = [m["sharpe"] for m, _, e in found.values() if not e and m.get("sharpe") is not None]
    rate = len(grid) * data_bars / grid_s
    peak = process_peak_rss_mb()
    print(
        f"grid: {len(grid)} variants in {grid_s:.1f} s wall ({args.workers} processes), "
        f"{grid_s / len(grid) * 1e3:.1f} ms/variant, {rate:,.0f} variant-data-bars/s; errors {len(errors)}; "
        f"Sharpe range {min(sharpes):.2f}..{max(sharpes):.2f}"
    )
    import resource

    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"peak RSS: {peak:.0f} MB this process, {workers_peak:.0f} MB the largest worker "
        f"(forked: it shares the panel's pages with this process)"
    )
    speedup = cerebro_s / lean_s
    size = f"{args.tickers}x{args.days}"
    return [
        {
            "benchmark": f"vector {size}",
            "measure": "s/variant",
            "value": lean_s,
            "baseline": cerebro_s,
            "ratio": speedup,
            "target": f">= {TARGET_SPEEDUP:.0f}x",
            "met": speedup >= TARGET_SPEEDUP and same,
        },
        {
            "benchmark": f"vector {size}, {len(grid)}-variant grid",
            "measure": "s wall",
            "value": grid_s,
            "baseline": "",
            "ratio": "",
            "target": f"<= {TARGET_GRID_S:.0f} s (1,000 variants)",
            "met": grid_s * 1000 / len(grid) <= TARGET_GRID_S and not errors,
        },
        {
            "benchmark": "vector compile (once per machine)",
            "measure": "s",
            "value": compile_s,
            "baseline": "",
            "ratio": "",
            "target": "",
            "met": True,
        },
        {
            "benchmark": f"vector {size}",
            "measure": "peak RSS MB",
            "value": max(peak, workers_peak),
            "baseline": "",
            "ratio": "",
            "target": f"< {TARGET_RSS_MB:.0f} MB",
            "met": max(peak, workers_peak) < TARGET_RSS_MB,
        },
    ]


if __name__ == "__main__":
    main()
