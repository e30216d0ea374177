"""The jobs the command line runs, one floor above the library (core, feeds, models, strategies,
analyzers, configs):

    backtest.py  the main job: data -> model -> Cerebro or vector -> analyzers -> results folder
    sweep/       strategy-variant sweeps ranked on a selection period (spec, runners, report)
    zoo.py       the model zoo (every model x seeds, and the positive control)
    paper.py     the paper account (one daily step at a time)

and the services they share: market.py (data), periods.py (splits, backtest periods), store.py
(trained models, results folders), engines.py (Cerebro and vector set-up, the yardstick).
Nothing below this floor imports it; one job uses another only through the shared modules or
the other job's __all__; run_backtest.py parses the command line and calls one job.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the project folder
