"""Positive control: does the LSTM find a signal that is known to be there?

A synthetic universe with a planted 20-day reversal (feeds/synthetic.py, planted_ic) is split 60/20/20
by date (split = "auto"); the default preset's LSTM is fitted on it and its test-period rank IC is set
against the planted one. Each row is one seed of the data and the model; the first numeric columns
are the planted feature's own rank IC on the same test days (what a perfect model could show there).
Standard errors (se) are Newey-West over all test days, 9 lags for the overlapping 10-day labels
(analyzers/ic.ic_summary). SYNTHETIC data: says nothing about real stocks.

    python -m bench.positive_control                       # 150 stocks, 1500 days, planted 0.10, 3 seeds
    python -m bench.positive_control --planted 0 --seeds 1 # the null: no planted signal
    python -m bench.positive_control --fast                # hidden 16, 3 epochs, stride 2 (the slow test's model)
"""

from __future__ import annotations

import argparse
import time

from bench.common import print_table

FAST = {"hidden": 16, "epochs": 3, "stride": 2}


def control_row(n_tickers: int, n_days: int, planted: float, seed: int, fast: bool) -> dict:
    """One fit on one planted universe: the planted feature's and the LSTM's test rank IC, with se."""
    import numpy as np

    from analyzers.ic import daily_ic, forward_excess_returns_from, ic_summary
    from configs import load_config
    from jobs.market import planted_data
    from jobs.periods import resolve_split
    from jobs.store import model_config, model_diagnostics
    from models import AlphaModel

    data = planted_data(n_tickers=n_tickers, n_days=n_days, planted_ic=planted, seed=seed)
    model_keys = {"split": "auto", "seed": seed, **(FAST if fast else {})}
    config = resolve_split(load_config("default", overrides={"model": model_keys}), data)
    t0 = time.perf_counter()
    model = AlphaModel(model_config(config)).fit(data.prices, data.benchmark, progress=False)
    fit_seconds = time.perf_counter() - t0
    d = model_diagnostics(model, data, config)
    start, end = model.config.split.period("test")
    close = data.prices.close
    reversal = -np.log(close / close.shift(20))
    fwd = forward_excess_returns_from(close, data.benchmark, 10)
    feature = ic_summary(daily_ic(reversal.loc[start:end], fwd.loc[start:end], "spearman"), 10)
    test, trade = d["test_rank_ic"], d["test_tradeable_rank_ic"]
    return {
        "seed": seed,
        "planted": planted,
        "feature_ic": round(feature["mean"], 4),
        "feature_se": round(feature["se"], 4),
        "lstm_ic": round(test["mean"], 4),
        "lstm_se": round(test["se"], 4),
        "lstm_tradeable_ic": round(trade["mean"], 4),
        "tradeable_se": round(trade["se"], 4),
        "recovered_%": round(100 * test["mean"] / planted, 1) if planted else None,
        "best_epoch": model.report_.best_epoch,
        "fit_s": round(fit_seconds, 1),
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stocks", type=int, default=150)
    parser.add_argument("--days", type=int, default=1500)
    parser.add_argument("--planted", type=float, default=0.10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--fast", action="store_true", help="a small LSTM: " + ", ".join(f"{k} {v}" for k, v in FAST.items())
    )
    args = parser.parse_args(argv)
    rows = [control_row(args.stocks, args.days, args.planted, seed, args.fast) for seed in range(args.seeds)]
    print(
        f"SYNTHETIC positive control: {args.stocks} stocks x {args.days} days, planted rank IC {args.planted}, "
        f"{'fast' if args.fast else 'default-preset'} LSTM; test = last 20 % of the dates"
    )
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
