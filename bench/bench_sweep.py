"""Sweep benchmark: N strategy variants on one model's cached scores, run one after another, in
local processes (concurrent.futures) and as Ray tasks on a local instance, in the same process.
Every mode must give the same metrics (checked). Synthetic universe (not market data), untrained LSTM.

    python -m bench.bench_sweep                        # 50 variants, 60 tickers x 750 days
    python -m bench.bench_sweep --variants 8 --no-ray
"""
from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

from bench.bench_backtest import untrained_model
from bench.common import print_table, timed
from feeds.synthetic import SYNTHETIC_LABEL, make_synthetic_universe


def variants_toml(n: int, start: str, end: str) -> str:
    lines = ['base = "default"', "[backtest]", f'start = "{start}"', f'end = "{end}"']
    for i in range(n):
        lines += ["[[variants.list]]", f'name = "v{i:02d}"', f"top_k = {3 + i % 8}",
                  f"entry_threshold = {round(0.05 * (i // 8), 2)}", f"review_days = {5 + i % 3}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    import pipeline
    import sweep
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=50)
    parser.add_argument("--tickers", type=int, default=60)
    parser.add_argument("--days", type=int, default=750)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    panel, bench = make_synthetic_universe(n_tickers=args.tickers, n_days=args.days, seed=0)
    data = pipeline.MarketData(panel, bench, None, [SYNTHETIC_LABEL])
    model = untrained_model()
    start = str(panel.dates[len(panel.dates) // 3].date())
    end = str(panel.dates[-1].date())
    print(f"{SYNTHETIC_LABEL}\n{panel!r}; {args.variants} variants, backtest {start}..{end}, {args.workers} workers")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        path = tmp / "bench_sweep.toml"
        path.write_text(variants_toml(args.variants, start, end))
        common = dict(model_for=lambda cfg, d: model, data=data, cache_dir=tmp / "cache", progress=None,
                      engine="cerebro")  # Cerebro for every variant: bench_vector measures the vector engine
        score_s, _ = timed(lambda: sweep.period_scores(model, data, pipeline.backtest_period(
            sweep.load_sweep(path)[0], data)[0], panel.dates[-1], tmp / "cache"))
        modes = [("sequential", {}), (f"processes ({args.workers})", {"mode": "processes", "workers": args.workers})]
        if not args.no_ray:
            modes.append((f"Ray local ({args.workers} CPUs)", {"mode": "ray", "workers": args.workers}))
        results = {}
        for label, kwargs in modes:
            seconds, result = timed(lambda: sweep.run_sweep(path, out_root=tmp / "out" / label.split()[0],
                                                            **kwargs, **common))
            results[label] = (seconds, result)
    base_s, base = results["sequential"]
    rows, agree = [], True
    for label, (seconds, result) in results.items():
        broken = sum(1 for o in result.outcomes.values() if o.error)
        agree &= all(result.outcomes[n].metrics == o.metrics for n, o in base.outcomes.items())
        rows.append({"mode": label, "seconds": seconds, "s/variant": seconds / args.variants,
                     "speed-up": base_s / seconds, "inference runs": result.inference_runs, "broken": broken})
    print(f"scoring once (features + LSTM, then cached): {score_s:.2f}s")
    print_table(rows)
    print(f"same metrics in every mode: {agree}")
    best = max(rows[1:], key=lambda r: r["speed-up"]) if len(rows) > 1 else rows[0]
    return [{"benchmark": f"sweep {args.variants} variants", "measure": f"s ({best['mode']})",
             "value": best["seconds"], "baseline": base_s, "ratio": best["speed-up"],
             "target": "faster than sequential, same metrics", "met": best["speed-up"] > 1.0 and agree}]


if __name__ == "__main__":
    main()
