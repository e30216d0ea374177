"""Paper-trading step benchmark: the live-mode replay of jobs/paper.py (one Cerebro with live
feeds, so preload and runonce are off; batched scores for the history, LSTMAlpha.next() on the
newest bar) against the same backtest in runonce mode (jobs.engines.build_cerebro, ArrayData), on the
embedded data (20 stocks), measured in the same process. An untrained LSTM of the default preset's
shape (speed, not skill).

    python -m bench.bench_paper                        # 20 stocks x 3 years (2020-2022)
    python -m bench.bench_paper --start 2022-01-03 --repeats 3

Prints median seconds of each and their ratio, and microseconds per data-bar of the replay.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from bench.bench_backtest import untrained_model
from bench.common import median_time, print_table


def main(argv=None) -> int:
    from feeds import CAVEATS, load_embedded
    from jobs import paper as papertrade
    from jobs.engines import build_cerebro, lstm_alpha
    from jobs.market import MarketData

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--start", default="2020-01-02")
    p.add_argument("--end", default="2022-12-28")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    prices, bench = load_embedded()
    data = MarketData(prices, bench, None, [CAVEATS])
    model = untrained_model()
    start, end = pd.Timestamp(args.start), pd.Timestamp(args.end)
    params = {"top_k": 5, "close_at_end": False}

    def runonce():
        cerebro = build_cerebro(data, start, end, lstm_alpha(model, data, start), params, 100_000.0, 0.0005)
        return cerebro.run()[0]

    def live():
        return papertrade.replay(model, data, start, end, params, 100_000.0, 0.0005)

    base, base_times, ref = median_time(runonce, args.repeats)
    paper, paper_times, run = median_time(live, args.repeats)
    assert abs(run.value - ref.broker.getvalue()) < 1e-6, "the replay and the backtest disagree"
    bars = len(bench.loc[start:end])
    data_bars = bars * (len(prices.tickers) + 1)
    print_table(
        [
            {
                "run": "backtest, runonce (baseline)",
                "median s": base,
                "all s": [round(t, 2) for t in base_times],
                "us/data-bar": 1e6 * base / data_bars,
            },
            {
                "run": "paper replay, live mode",
                "median s": paper,
                "all s": [round(t, 2) for t in paper_times],
                "us/data-bar": 1e6 * paper / data_bars,
            },
        ],
        title=f"{len(prices.tickers)} stocks x {bars} bars ({start.date()}..{end.date()}), embedded data",
    )
    print(f"paper replay / runonce backtest: {paper / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
