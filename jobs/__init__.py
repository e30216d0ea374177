"""The jobs the command line runs, one floor above the library (core, feeds, models, strategies,
analyzers, configs): the main backtest, the variant sweep (jobs/sweep/), the model zoo
(jobs/zoo.py) and the paper account (jobs/paper.py).

Nothing below this floor imports it; run_backtest.py parses the command line and calls one job.
"""
