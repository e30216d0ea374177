"""Feed benchmark: stock PandasData against ArrayData, lean ArrayData and the lean broker.

A synthetic universe (SYNTHETIC_LABEL: not market data), a trivial strategy that reads every data
and its position on every bar, runonce=True, stdstats=False. Prints microseconds per data-bar and
the ratio against PandasData measured in this same process.

    python -m bench.bench_feed                     # 500 tickers x 2520 days (~2 min)
    python -m bench.bench_feed --tickers 100 --days 500 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backtrader as bt

from bench.common import print_table, process_peak_rss_mb, timed
from feeds.arraydata import ArrayData, FastArrayData, feed_frame
from feeds.broker import LeanBroker
from feeds.synthetic import SYNTHETIC_LABEL, make_synthetic_universe


class TouchEveryData(bt.Strategy):
    """Reads close and position of every started data each bar; buys once so the broker has work."""

    def prenext(self):
        self.next()

    def next(self):
        total = 0.0
        for d in self.datas:
            if len(d):
                total += d.close[0]
                if not self.getposition(d).size and len(d) == 20 and d._name.endswith("1"):
                    self.buy(data=d, size=1)
        self.checksum = total


def run_once(frames: dict, feed_cls, broker_cls=None, **feed_kwargs) -> float:
    cerebro = bt.Cerebro(stdstats=False)
    if broker_cls is not None:
        cerebro.broker = broker_cls()
    cerebro.broker.setcash(1e9)
    for name, frame in frames.items():
        cerebro.adddata(feed_cls(dataname=frame, **feed_kwargs), name=name)
    cerebro.addstrategy(TouchEveryData)
    cerebro.run()
    return cerebro.broker.getvalue()


VARIANTS = (
    ("PandasData (stock)", bt.feeds.PandasData, None),
    ("ArrayData", ArrayData, None),
    ("ArrayData lean", FastArrayData, None),
    ("ArrayData lean + LeanBroker", FastArrayData, LeanBroker),
)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    panel, _ = make_synthetic_universe(n_tickers=args.tickers, n_days=args.days, seed=args.seed)
    # PandasData reads the same normalised frames (volume NaN -> 0, openinterest 0) as ArrayData.
    frames = {ticker: feed_frame(frame) for ticker, frame in panel.items()}
    data_bars = sum(len(f) for f in frames.values())
    print(f"{SYNTHETIC_LABEL}\n{panel!r}: {data_bars:,} data-bars, median of {args.repeats} run(s)")

    # Round-robin over the variants in each repeat, so load drift on a shared machine hits all alike.
    timings = {label: [] for label, _, _ in VARIANTS}
    values = set()
    for _ in range(max(1, args.repeats)):
        for label, feed_cls, broker_cls in VARIANTS:
            seconds, value = timed(lambda f=feed_cls, b=broker_cls: run_once(frames, f, b))
            timings[label].append(seconds)
            values.add(round(value, 6))
    baseline = statistics.median(timings[VARIANTS[0][0]])
    rows = []
    for label, times in timings.items():
        seconds = statistics.median(times)
        rows.append(
            {
                "feed": label,
                "seconds": seconds,
                "us/data-bar": 1e6 * seconds / data_bars,
                "speed-up vs PandasData": baseline / seconds,
            }
        )
    print_table(rows)
    print(f"final broker values agree: {len(values) == 1}; peak RSS {process_peak_rss_mb():.0f} MB")
    return rows


if __name__ == "__main__":
    main()
