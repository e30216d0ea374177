"""Whole-backtest benchmark: the LSTM indicator in runonce mode through AlphaRankStrategy on
ArrayData(lean=True) and LeanBroker, against the naive set-up (stock PandasData and broker, the
same strategy and indicator), measured in the same process. Synthetic universe (not market data),
an untrained LSTM of the default preset's shape (speed, not skill).

    python -m bench.bench_backtest                      # 500 tickers x 2520 days (the target size)
    python -m bench.bench_backtest --tickers 100 --days 750 --repeats 1

Prints microseconds per data-bar (a data-bar = one stock on one day), the speed-up over the
baseline and the process's peak RSS. Targets: <= 8 us per data-bar, >= 6x, peak < 2 GB; on
cached scores (ScoreAlpha) <= 5 us, i.e. >= 17x. ``--profile cached`` profiles the cached-scores
run, ``--breakdown`` times its layers (Cerebro + lean feeds + LeanBroker alone, then with the
alphas).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import warnings

import backtrader as bt
import numpy as np

from bench.common import print_table, process_peak_rss_mb, timed
from feeds.arraydata import ArrayData, feed_frame
from feeds.synthetic import SYNTHETIC_LABEL, make_synthetic_universe

TARGET_US, TARGET_SPEEDUP, TARGET_RSS_MB = 8.0, 6.0, 2048.0
# cached scores: <= 5 us per data-bar, i.e. >= 17x the 84.7 us baseline of an unloaded run
# (docs/benchmarks.md); on a shared machine the ratio is the test
CACHED_TARGET_US, CACHED_TARGET_SPEEDUP = 5.0, 17.0


def untrained_model(hidden: int = 32, seq_len: int = 30, seed: int = 0, threads: int = 1):
    """An AlphaModel of the default preset's shape with random weights and an identity scaler:
    the same work per window as a trained one, without the training."""
    import torch

    from models import AlphaModel, ModelConfig
    from models import features as F
    from models.dataset import Scaler
    from models.lstm import AlphaLSTM

    names = [n for n in F.DEFAULT_FEATURES]
    model = AlphaModel(ModelConfig(hidden=hidden, seq_len=seq_len, seed=seed, threads=threads, features=tuple(names)))
    torch.manual_seed(seed)
    model.features_ = names
    model.scaler_ = Scaler(
        np.zeros(len(names), np.float32), np.ones(len(names), np.float32), ("untrained", "untrained")
    )
    model.net_ = AlphaLSTM(len(names), hidden).eval()
    return model


def build(panel, bench, model, lean: bool, top_k: int = 10, scores=None) -> bt.Cerebro:
    from feeds.broker import LeanBroker
    from models import LSTMAlpha
    from strategies import AlphaRankStrategy

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    if lean:
        cerebro.broker = LeanBroker()
    cerebro.broker.setcash(1_000_000.0)
    cerebro.broker.setcommission(commission=0.0005)
    if lean:
        bench_feed = cerebro.adddata(ArrayData(dataname=bench, lean=True), name="SYNTH_INDEX")
        for ticker, frame in panel.items():
            cerebro.adddata(ArrayData(dataname=frame, lean=True), name=ticker)
    else:
        bench_feed = cerebro.adddata(bt.feeds.PandasData(dataname=feed_frame(bench)), name="SYNTH_INDEX")
        for ticker, frame in panel.items():
            cerebro.adddata(bt.feeds.PandasData(dataname=feed_frame(frame)), name=ticker)
    from strategies import ScoreAlpha

    alpha = LSTMAlpha.factory(model, benchmark=bench_feed) if scores is None else ScoreAlpha.factory(scores)
    cerebro.addstrategy(AlphaRankStrategy, alpha=alpha, benchmark="SYNTH_INDEX", top_k=top_k, position_pct=1.0 / top_k)
    return cerebro


def run_backtest(panel, bench, model, lean: bool, scores=None) -> float:
    strategy = build(panel, bench, model, lean, scores=scores).run()[0]
    return strategy.broker.getvalue()


def profile(panel, bench, model, lines: int = 18, scores=None) -> str:
    prof = cProfile.Profile()
    prof.enable()
    run_backtest(panel, bench, model, lean=True, scores=scores)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(lines)
    return out.getvalue()


class Idle(bt.Strategy):
    """Does nothing: what Cerebro's loop, the lean feeds and LeanBroker cost on their own."""


class IdleWithAlphas(bt.Strategy):
    """Makes one ScoreAlpha per stock, as AlphaRankStrategy does, and reads none of them."""

    params = (("alpha", None), ("benchmark", None))

    def __init__(self):
        self.alphas = [self.p.alpha(d) for d in self.datas if d._name != self.p.benchmark]


def breakdown(panel, bench, scores, data_bars: int) -> list[dict]:
    """µs per data-bar of the cached-scores run built up in layers, each timed on its own."""
    from feeds.broker import LeanBroker
    from strategies import ScoreAlpha

    def run_layer(strategy, **params):
        cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
        cerebro.broker = LeanBroker()
        cerebro.adddata(ArrayData(dataname=bench, lean=True), name="SYNTH_INDEX")
        for ticker, frame in panel.items():
            cerebro.adddata(ArrayData(dataname=frame, lean=True), name=ticker)
        cerebro.addstrategy(strategy, **params)
        return cerebro.run()

    def timed_layer(strategy, **params) -> float:  # set-up included, as run_backtest times it
        seconds, _ = timed(lambda: run_layer(strategy, **params))
        return 1e6 * seconds / data_bars

    alpha = ScoreAlpha.factory(scores)
    idle = timed_layer(Idle)
    with_alphas = timed_layer(IdleWithAlphas, alpha=alpha, benchmark="SYNTH_INDEX")
    return [
        {"layer": "Cerebro loop + lean feeds + LeanBroker, a strategy doing nothing", "us/data-bar": idle},
        {"layer": "  + one ScoreAlpha per stock (stock Strategy loop)", "us/data-bar": with_alphas},
    ]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the fast run (median)")
    parser.add_argument("--baseline-repeats", type=int, default=1, help="repeats of the slow baseline")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="lstm",
        choices=["lstm", "cached"],
        help="cProfile the fast run (or with 'cached' the cached-scores run) and print where the time goes",
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="time the cached-scores run's layers: loop+feeds+broker, alphas"
    )
    parser.add_argument("--hidden", type=int, default=32, help="LSTM units (32 = the default preset; 8 = a tiny model)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    panel, bench = make_synthetic_universe(n_tickers=args.tickers, n_days=args.days, seed=0)
    data_bars = int(panel.close.notna().to_numpy().sum())
    model = untrained_model(hidden=args.hidden)
    print(
        f"{SYNTHETIC_LABEL}\n{panel!r}: {data_bars:,} data-bars; untrained LSTM (hidden {args.hidden}, "
        f"{len(model.features_)} features); fast: median of {args.repeats}, baseline: {args.baseline_repeats}"
    )

    predict_s, scores = timed(lambda: model.predict(panel, bench))
    cached = []
    for _ in range(max(1, args.repeats)):
        seconds, cached_value = timed(lambda: run_backtest(panel, bench, model, lean=True, scores=scores))
        cached.append(seconds)
    cached_s = statistics.median(cached)
    fast, values = [], set()
    for _ in range(max(1, args.repeats)):
        seconds, value = timed(lambda: run_backtest(panel, bench, model, lean=True))
        fast.append(seconds)
        values.add(round(value, 4))
    peak_fast = process_peak_rss_mb()  # before the baseline, whose PandasData frames weigh more
    slow = []
    for _ in range(max(1, args.baseline_repeats)):
        seconds, value = timed(lambda: run_backtest(panel, bench, model, lean=False))
        slow.append(seconds)
        values.add(round(value, 4))
    fast_s, slow_s = statistics.median(fast), statistics.median(slow)
    us, base_us = 1e6 * fast_s / data_bars, 1e6 * slow_s / data_bars
    rows = [
        {"run": "ArrayData lean + LeanBroker", "seconds": fast_s, "us/data-bar": us, "speed-up": slow_s / fast_s},
        {
            "run": "  of which features + LSTM (one predict)",
            "seconds": predict_s,
            "us/data-bar": 1e6 * predict_s / data_bars,
            "speed-up": "",
        },
        {
            "run": "  the rest (feeds, strategy, broker)",
            "seconds": fast_s - predict_s,
            "us/data-bar": 1e6 * (fast_s - predict_s) / data_bars,
            "speed-up": "",
        },
        {"run": "PandasData + stock broker (baseline)", "seconds": slow_s, "us/data-bar": base_us, "speed-up": 1.0},
        {
            "run": "lean, ScoreAlpha on cached scores (a sweep's run)",
            "seconds": cached_s,
            "us/data-bar": 1e6 * cached_s / data_bars,
            "speed-up": slow_s / cached_s,
        },
    ]
    print_table(rows)
    print(
        f"final values agree (lean == stock == cached scores): {values == {round(cached_value, 4)}}; "
        "peak RSS after the fast runs "
        f"{peak_fast:.0f} MB, after all {process_peak_rss_mb():.0f} MB"
    )
    if args.breakdown:
        layers = breakdown(panel, bench, scores, data_bars)
        whole = {"layer": "AlphaRankStrategy on cached scores", "us/data-bar": 1e6 * cached_s / data_bars}
        layers.append(whole)
        print_table(layers)
    met = us <= TARGET_US and slow_s / fast_s >= TARGET_SPEEDUP and peak_fast < TARGET_RSS_MB
    if args.profile == "cached":
        print("where the cached-scores run's time goes (cProfile, by own time):")
        print(profile(panel, bench, model, lines=30, scores=scores))
    elif args.profile or not met:
        print("where the fast run's time goes (cProfile, by own time):")
        print(profile(panel, bench, model))
    size = f"{args.tickers}x{args.days}, hidden {args.hidden}"
    cached_us = 1e6 * cached_s / data_bars
    return [
        {
            "benchmark": f"backtest {size}",
            "measure": "us/data-bar",
            "value": us,
            "baseline": base_us,
            "ratio": slow_s / fast_s,
            "target": f"<= {TARGET_US} us, >= {TARGET_SPEEDUP}x",
            "met": us <= TARGET_US and slow_s / fast_s >= TARGET_SPEEDUP,
        },
        {
            "benchmark": f"backtest {size}, cached scores",
            "measure": "us/data-bar",
            "value": cached_us,
            "baseline": base_us,
            "ratio": slow_s / cached_s,
            "target": f"<= {CACHED_TARGET_US} us, i.e. >= {CACHED_TARGET_SPEEDUP:.0f}x",
            "met": slow_s / cached_s >= CACHED_TARGET_SPEEDUP,
        },
        {
            "benchmark": f"backtest {size}",
            "measure": "peak RSS MB",
            "value": peak_fast,
            "baseline": "",
            "ratio": "",
            "target": f"< {TARGET_RSS_MB:.0f} MB",
            "met": peak_fast < TARGET_RSS_MB,
        },
    ]


if __name__ == "__main__":
    main()
