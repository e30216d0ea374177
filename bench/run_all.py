"""Run every benchmark and print one table of results, each against its own baseline measured in
the same process (the machine may be shared: the ratios hold up better than the seconds).

    python -m bench.run_all            # quick sizes (a few minutes)
    python -m bench.run_all --full     # the issue's sizes: 500 tickers x 10 years, a 50-variant sweep
    python -m bench.run_all --only backtest features
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback

from bench.common import print_table

# name -> (module, quick arguments, full arguments)
BENCHMARKS = {
    "backtest": (
        "bench.bench_backtest",
        ["--tickers", "100", "--days", "1000", "--repeats", "2"],
        ["--tickers", "500", "--days", "2520", "--repeats", "3"],
    ),
    "inference": (
        "bench.bench_inference",
        ["--tickers", "2", "--days", "260", "--repeats", "3"],
        ["--tickers", "5", "--days", "400", "--repeats", "3"],
    ),
    "features": (
        "bench.bench_features",
        ["--tickers", "100", "--days", "2520", "--repeats", "3"],
        ["--tickers", "500", "--days", "2520", "--repeats", "3"],
    ),
    "sweep": (
        "bench.bench_sweep",
        ["--variants", "8", "--tickers", "40", "--days", "500"],
        ["--variants", "50", "--tickers", "60", "--days", "750"],
    ),
    "train": ("bench.bench_train", [], []),
    "vector": ("bench.bench_vector", ["--quick"], []),
}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes (takes much longer)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    args = parser.parse_args(argv)
    rows = []
    for name in args.only or list(BENCHMARKS):
        module, quick, full = BENCHMARKS[name]
        print(f"\n=== {name}: python -m {module} {' '.join(full if args.full else quick)}")
        t0 = time.perf_counter()
        try:
            rows += importlib.import_module(module).main(full if args.full else quick)
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
            traceback.print_exc()
            rows.append({"benchmark": name, "measure": "error", "value": f"{type(exc).__name__}: {exc}", "met": False})
        print(f"({name}: {time.perf_counter() - t0:.0f}s wall)")
    for row in rows:
        row["met"] = "yes" if row.get("met") else "NO"
    print()
    print_table(
        rows,
        title=f"Benchmark summary ({'full' if args.full else 'quick'} sizes; ratio = against the "
        "baseline measured in the same process)",
    )
    return rows


if __name__ == "__main__":
    main()
