"""Sweep benchmark: N strategy variants on one model's cached scores, each in its own Cerebro (the
runners of sweep.run_sweep --engine cerebro, one period), run one after another, in local processes
(concurrent.futures) and as Ray tasks on a local instance, in the same process. Every mode must give
the same metrics (checked). Synthetic universe (not market data), untrained LSTM: a whole run_sweep
would refuse it (it has no fit windows to prove its scores unseen), so this times the runners.

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


def variants_toml(n: int) -> str:
    lines = ['base = "default"']
    for i in range(n):
        lines += [
            "[[variants.list]]",
            f'name = "v{i:02d}"',
            f"top_k = {3 + i % 8}",
            f"entry_threshold = {round(0.05 * (i // 8), 2)}",
            f"review_days = {5 + i % 3}",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    from jobs import sweep
    from jobs.engines import period_scores
    from jobs.market import MarketData

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=50)
    parser.add_argument("--tickers", type=int, default=60)
    parser.add_argument("--days", type=int, default=750)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    panel, bench = make_synthetic_universe(n_tickers=args.tickers, n_days=args.days, seed=0)
    data = MarketData(panel, bench, None, [SYNTHETIC_LABEL])
    model = untrained_model()
    start = str(panel.dates[len(panel.dates) // 3].date())
    end = str(panel.dates[-1].date())
    print(f"{SYNTHETIC_LABEL}\n{panel!r}; {args.variants} variants, backtest {start}..{end}, {args.workers} workers")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        path = tmp / "bench_sweep.toml"
        path.write_text(variants_toml(args.variants))
        period = (panel.dates[len(panel.dates) // 3], panel.dates[-1])
        _, variants = sweep.load_sweep(path)
        score_s, (scores, _) = timed(lambda: period_scores(model, data, *period, tmp / "cache"))
        scores_by_key = {"scores": scores}
        # Cerebro for every variant: bench_vector measures the vector engine
        tasks = [
            sweep.VariantTask(v.name, sweep.period_config(v.config, period), "scores", sweep.flat_params(v.overrides))
            for v in variants
        ]
        modes = [
            ("sequential", lambda: sweep.run_sequential(tasks, data, scores_by_key)),
            (f"processes ({args.workers})", lambda: sweep.run_processes(tasks, data, scores_by_key, args.workers)),
        ]
        if not args.no_ray:
            modes.append(
                (
                    f"Ray local ({args.workers} CPUs)",
                    lambda: sweep.run_ray(tasks, data, scores_by_key, num_cpus=args.workers),
                )
            )
        results = {}
        for label, runner in modes:
            seconds, outcomes = timed(runner)
            results[label] = (seconds, {o.name: o for o in outcomes})
    base_s, base = results["sequential"]
    rows, agree = [], True
    for label, (seconds, outcomes) in results.items():
        broken = sum(1 for o in outcomes.values() if o.error)
        agree &= all(outcomes[n].metrics == o.metrics for n, o in base.items())
        rows.append(
            {
                "mode": label,
                "seconds": seconds,
                "s/variant": seconds / args.variants,
                "speed-up": base_s / seconds,
                "broken": broken,
            }
        )
    print(f"scoring once (features + LSTM, then cached): {score_s:.2f}s")
    print_table(rows)
    print(f"same metrics in every mode: {agree}")
    best = max(rows[1:], key=lambda r: r["speed-up"]) if len(rows) > 1 else rows[0]
    return [
        {
            "benchmark": f"sweep {args.variants} variants",
            "measure": f"s ({best['mode']})",
            "value": best["seconds"],
            "baseline": base_s,
            "ratio": best["speed-up"],
            "target": "faster than sequential, same metrics",
            "met": best["speed-up"] > 1.0 and agree,
        }
    ]


if __name__ == "__main__":
    main()
