"""Training benchmark: the default preset's model fitted on the embedded data (real prices),
against one epoch of the same fit as the baseline, in the same process. Target: the whole fit
(early stopping included) in < 60 s on this 2-core machine.

    python -m bench.bench_train
    python -m bench.bench_train --epochs 3             # cap the epochs (a quicker look)
"""

from __future__ import annotations

import argparse
import statistics
import warnings

from bench.common import print_table, timed

TARGET_SECONDS = 60.0


def main(argv=None) -> list[dict]:
    from configs import load_config
    from feeds import load_embedded
    from jobs.store import model_config
    from models import AlphaModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="cap the preset's epochs")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    prices, bench = load_embedded()
    cfg = model_config(load_config("default"))
    if args.epochs:
        cfg = cfg.replace(epochs=min(cfg.epochs, args.epochs))
    # the one-epoch baseline before and after the full fit (median of the two): the first fit of a
    # process also pays for warm-up, and a shared machine's load drifts
    one = [timed(lambda: AlphaModel(cfg.replace(epochs=1)).fit(prices, bench, progress=False))[0]]
    full_s, model = timed(lambda: AlphaModel(cfg).fit(prices, bench, progress=False))
    one.append(timed(lambda: AlphaModel(cfg.replace(epochs=1)).fit(prices, bench, progress=False))[0])
    one_s = statistics.median(one)
    report = model.report_
    epochs = len(report.history)
    rows = [
        {
            "fit": f"default preset ({epochs} epochs, best {report.best_epoch}, of max {cfg.epochs})",
            "seconds": full_s,
            "x one epoch": full_s / one_s,
            "x 60 s target": full_s / TARGET_SECONDS,
        },
        {
            "fit": f"one epoch (baseline; runs {', '.join(f'{x:.1f}' for x in one)} s)",
            "seconds": one_s,
            "x one epoch": 1.0,
            "x 60 s target": one_s / TARGET_SECONDS,
        },
    ]
    print(f"embedded data {prices!r}; samples {report.n_samples}; threads {cfg.threads}")
    print_table(rows)
    return [
        {
            "benchmark": "train default preset" + (f" (<= {args.epochs} epochs)" if args.epochs else ""),
            "measure": "seconds",
            "value": full_s,
            "baseline": one_s,
            "ratio": full_s / one_s,
            "target": f"< {TARGET_SECONDS:.0f} s",
            "met": full_s < TARGET_SECONDS,
        }
    ]


if __name__ == "__main__":
    main()
