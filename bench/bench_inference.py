"""Inference benchmark: LSTMAlpha's batched once() (runonce, one model.predict for every stock)
against its event-driven next() (runonce=False, one window scored per stock per bar), on the same
series in the same process. Both paths must give the same scores (checked). Target >= 20x.

    python -m bench.bench_inference                    # 5 tickers x 400 days (next() takes minutes)
    python -m bench.bench_inference --tickers 2 --days 260
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import backtrader as bt
import numpy as np

from bench.bench_backtest import untrained_model
from bench.common import print_table, timed
from feeds.arraydata import ArrayData
from feeds.synthetic import SYNTHETIC_LABEL, make_synthetic_universe

TARGET = 20.0


class ReadScores(bt.Strategy):
    """Holds one LSTMAlpha per stock and does nothing else: the run's time is the indicator's."""

    params = (("alpha", None),)

    def __init__(self):
        self.alphas = {d._name: self.p.alpha(d) for d in self.datas[1:]}


def score_lines(panel, bench, model, runonce: bool) -> dict:
    from models import LSTMAlpha

    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    bench_feed = cerebro.adddata(ArrayData(dataname=bench), name="SYNTH_INDEX")
    for ticker, frame in panel.items():
        cerebro.adddata(ArrayData(dataname=frame), name=ticker)
    cerebro.addstrategy(ReadScores, alpha=LSTMAlpha.factory(model, benchmark=bench_feed))
    strategy = cerebro.run()[0]
    return {t: np.asarray(a.lines.score.array) for t, a in strategy.alphas.items()}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=5)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the batched run (median)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    panel, bench = make_synthetic_universe(n_tickers=args.tickers, n_days=args.days, seed=1, late_start_share=0.0)
    model = untrained_model()
    print(f"{SYNTHETIC_LABEL}\n{panel!r}; untrained LSTM, hidden 32")

    batched = []
    for _ in range(max(1, args.repeats)):
        seconds, once_scores = timed(lambda: score_lines(panel, bench, model, runonce=True))
        batched.append(seconds)
    per_bar_s, next_scores = timed(lambda: score_lines(panel, bench, model, runonce=False))
    once_s = statistics.median(batched)
    n_scores = sum(int(np.isfinite(v).sum()) for v in once_scores.values())
    diff = max(float(np.nanmax(np.abs(once_scores[t] - next_scores[t]))) for t in once_scores)
    same_nan = all((np.isnan(once_scores[t]) == np.isnan(next_scores[t])).all() for t in once_scores)
    rows = [
        {
            "path": "once(): batched, runonce",
            "seconds": once_s,
            "scores/s": n_scores / once_s,
            "speed-up": per_bar_s / once_s,
        },
        {"path": "next(): one window per bar", "seconds": per_bar_s, "scores/s": n_scores / per_bar_s, "speed-up": 1.0},
    ]
    print_table(rows)
    print(f"{n_scores:,} scores; once vs next: max |difference| {diff:.2g}, same missing bars: {same_nan}")
    ratio = per_bar_s / once_s
    return [
        {
            "benchmark": f"inference {args.tickers}x{args.days}",
            "measure": "scores/s batched",
            "value": n_scores / once_s,
            "baseline": n_scores / per_bar_s,
            "ratio": ratio,
            "target": f">= {TARGET:.0f}x",
            "met": ratio >= TARGET and diff < 1e-5 and same_nan,
        }
    ]


if __name__ == "__main__":
    main()
