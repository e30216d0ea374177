"""Feature benchmark: models.features.compute_features on the whole panel (vectorized over all
tickers) against a loop that computes them one single-ticker panel at a time, in the same process.
The numbers must agree (checked). Targets: >= 5x and < 3 s for 500 tickers x 10 years.

    python -m bench.bench_features                     # 500 tickers x 2520 days
    python -m bench.bench_features --tickers 100 --days 1000
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from bench.common import print_table, timed
from feeds.synthetic import SYNTHETIC_LABEL, make_synthetic_universe
from models import features as F

TARGET_RATIO, TARGET_SECONDS = 5.0, 3.0


def per_ticker(panel, bench, names) -> dict:
    """The same features, one single-ticker panel per call (what a per-stock loop would do)."""
    return {t: F.compute_features(panel.select([t]), bench, names) for t in panel.tickers}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the vectorized call (median)")
    args = parser.parse_args(argv)
    panel, bench = make_synthetic_universe(n_tickers=args.tickers, n_days=args.days, seed=0)
    # every registered feature this data can give (full OHLCV and a benchmark; no VIX)
    names, _ = F.usable_features(list(F.FEATURES), set(panel.available) | {"benchmark"})
    print(f"{SYNTHETIC_LABEL}\n{panel!r}; {len(names)} features")
    times = []
    for _ in range(max(1, args.repeats)):
        seconds, whole = timed(lambda: F.compute_features(panel, bench, names))
        times.append(seconds)
    loop_s, parts = timed(lambda: per_ticker(panel, bench, names))
    fast_s = statistics.median(times)
    worst = 0.0
    for t, feats in parts.items():
        for n in names:
            a, b = feats[n][t].to_numpy(), whole[n][t].to_numpy()
            both = np.isfinite(a) & np.isfinite(b)
            assert (np.isfinite(a) == np.isfinite(b)).all(), (t, n)
            if both.any():
                worst = max(worst, float(np.max(np.abs(a[both] - b[both]) / (1.0 + np.abs(b[both])))))
    rows = [
        {"path": "compute_features(panel)", "seconds": fast_s, "speed-up": loop_s / fast_s},
        {"path": "per-ticker loop", "seconds": loop_s, "speed-up": 1.0},
    ]
    print_table(rows)
    print(f"largest relative difference panel vs per ticker: {worst:.2g}")
    ratio = loop_s / fast_s
    return [
        {
            "benchmark": f"features {args.tickers}x{args.days}",
            "measure": "seconds",
            "value": fast_s,
            "baseline": loop_s,
            "ratio": ratio,
            "target": f">= {TARGET_RATIO:.0f}x, < {TARGET_SECONDS:.0f} s",
            "met": ratio >= TARGET_RATIO and fast_s < TARGET_SECONDS and worst < 1e-9,
        }
    ]


if __name__ == "__main__":
    main()
