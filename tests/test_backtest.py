"""The wiring and the command line: metrics agree with Backtrader and QuantStats, --scores runs,
bad options get one clear error, the main job writes what the README promises."""

import json
import math
import subprocess
import sys

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

import analyzers as A
import run_backtest
from configs import load_config
from jobs.engines import build_cerebro, lstm_alpha, score_alpha, strategy_params, universe_baseline
from jobs.market import MarketData
from jobs.store import artifact_dir, model_config
from tests.conftest import ROOT

START, END = pd.Timestamp("2021-01-04"), pd.Timestamp("2022-12-28")


def test_metrics_agree_with_backtrader_and_quantstats(embedded, tiny_model):
    prices, bench = embedded
    data = MarketData(prices, bench)
    params = strategy_params(load_config("default"))
    cerebro = build_cerebro(
        data, START, END, lstm_alpha(tiny_model, data, START), params, cash=100_000, commission=0.0005
    )
    cerebro.addanalyzer(A.PortfolioMetrics, benchmark=bench, _name="metrics")
    cerebro.addanalyzer(A.TradeLog, _name="tradelog")
    cerebro.addanalyzer(
        bt.analyzers.SharpeRatio,
        timeframe=bt.TimeFrame.Days,
        annualize=True,
        riskfreerate=0.0,
        stddev_sample=True,
        convertrate=True,
        _name="bt_sharpe",
    )
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="bt_drawdown")
    cerebro.addanalyzer(bt.analyzers.TimeReturn, timeframe=bt.TimeFrame.Days, _name="bt_returns")
    strat = cerebro.run()[0]
    m = strat.analyzers.metrics.get_analysis()
    assert m["n_trades"] > 10 and strat.rejected_orders == 0
    bt_returns = pd.Series(strat.analyzers.bt_returns.get_analysis())
    assert m["sharpe"] == pytest.approx(strat.analyzers.bt_sharpe.get_analysis()["sharperatio"], abs=1e-9)
    assert -100 * m["max_drawdown"] == pytest.approx(
        strat.analyzers.bt_drawdown.get_analysis()["max"]["drawdown"], abs=1e-9
    )
    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(bt_returns), abs=1e-9)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(bt_returns), abs=1e-9)
    # benchmark columns: buy and hold of the index over the same days, by hand
    b = bench.loc[:END]
    first = b[b.index < START].iloc[-1]
    assert m["benchmark_total_return"] == pytest.approx(b.iloc[-1] / first - 1, abs=1e-12)
    bench_rets = b.loc[START:].pct_change().fillna(b.loc[START:].iloc[0] / first - 1)
    assert m["benchmark_sharpe"] == pytest.approx(bench_rets.mean() / bench_rets.std() * math.sqrt(252), abs=1e-9)


def _scores_csv(path, prices, seed=0):
    rng = np.random.default_rng(seed)
    dates = prices.dates[(prices.dates >= START) & (prices.dates <= END)]
    frame = pd.DataFrame(
        rng.uniform(-1, 1, size=(len(dates), len(prices.tickers))).round(4),
        index=dates.strftime("%Y-%m-%d"),
        columns=prices.tickers,
    )
    frame.index.name = "Date"
    frame.to_csv(path)
    return frame


def test_scores_file_runs_without_the_model(tmp_path, embedded, capsys):
    prices, _ = embedded
    scores = _scores_csv(tmp_path / "s.csv", prices)
    code = run_backtest.main(
        [
            "--scores",
            str(tmp_path / "s.csv"),
            "--start",
            str(START.date()),
            "--end",
            str(END.date()),
            "--out",
            str(tmp_path / "res"),
            "--name",
            "mine",
            "--no-progress",
            "--analyzer",
            "backtrader.analyzers.SQN",
        ]
    )
    assert code == 0
    out = tmp_path / "res" / "mine"
    for name in (
        "tearsheet.html",
        "trades.csv",
        "metrics.json",
        "equity.csv",
        "equity.png",
        "analyzers.json",
        "run.json",
    ):
        assert (out / name).is_file(), name
    trades = pd.read_csv(out / "trades.csv")
    buys, sells = trades[trades.Action == "BUY"], trades[trades.Action == "SELL"]
    assert len(buys) > 20
    # taken as given: each buy's score is the file's score on the decision day (the bar before the fill) and > 0.2
    assert (buys.Score > 0.2).all()
    days = pd.DatetimeIndex(scores.index)
    for _, row in buys.head(10).iterrows():
        decided = days[days < pd.Timestamp(row.Date)][-1]
        assert scores.loc[decided.strftime("%Y-%m-%d"), row.Ticker] == pytest.approx(row.Score)
    assert ((sells.Reason == "end") | (sells.Score < 0)).all()
    assert "SQN" in json.loads((out / "analyzers.json").read_text())
    equity = pd.read_csv(out / "equity.csv")
    assert list(equity.columns) == ["date", "value"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_value"] == pytest.approx(equity.value.iloc[-1])
    assert "Caveat" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config", "{cfg}"], "unknown config key 'strategy.topk'"),
        (["--start", "2022-06-01", "--end", "2021-01-01"], "after its end"),
        (["--name", "../escape"], "outside"),
        (["--commission", "5"], "--commission"),
        (["--data", "{tmp}/nowhere", "--benchmark", "SPY"], "nowhere"),
        (["--data", "{tmp}"], "--benchmark"),
    ],
)
def test_bad_options_get_one_clear_error(tmp_path, capsys, argv, message):
    (tmp_path / "bad.toml").write_text("[strategy]\ntopk = 3\n")
    argv = [a.replace("{cfg}", str(tmp_path / "bad.toml")).replace("{tmp}", str(tmp_path)) for a in argv]
    code = run_backtest.main(
        argv
        + [
            "--scores",
            str(ROOT / "tests" / "fixtures" / "strategy_scores.csv"),
            "--out",
            str(tmp_path / "res"),
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_threshold_out_of_range_in_a_config(tmp_path, embedded, capsys):
    prices, _ = embedded
    _scores_csv(tmp_path / "s.csv", prices)
    (tmp_path / "t.toml").write_text("[strategy]\nentry_threshold = 1.5\n")
    code = run_backtest.main(
        [
            "--config",
            str(tmp_path / "t.toml"),
            "--scores",
            str(tmp_path / "s.csv"),
            "--start",
            "2021-01-04",
            "--end",
            "2021-06-30",
            "--out",
            str(tmp_path / "res"),
            "--no-progress",
        ]
    )
    assert code == 2
    assert "entry_threshold" in capsys.readouterr().err
    assert not any((tmp_path / "res").glob("*/metrics.json"))  # nothing half-written


def test_trade_stats_command(capsys):
    code = run_backtest.main(["trade-stats", str(ROOT / "tests" / "fixtures" / "seed_backtest_trades.csv")])
    assert code == 0
    out = capsys.readouterr().out
    assert "61" in out


def test_artifact_key_changes_with_data_and_config(embedded, tmp_path):
    prices, bench = embedded
    config = load_config("default")
    data = MarketData(prices, bench)
    a = artifact_dir(config, model_config(config), data, tmp_path)
    other_cfg = load_config("default", overrides={"model": {"seed": 1}})
    b = artifact_dir(other_cfg, model_config(other_cfg), data, tmp_path)
    close = prices.close.copy()
    close.iloc[-1, 0] *= 1.01
    from feeds import PricePanel

    c = artifact_dir(
        config,
        model_config(config),
        MarketData(PricePanel({"close": close}, {"close"}), bench),
        tmp_path,
    )
    assert len({a, b, c}) == 3


@pytest.mark.slow
def test_main_job_cold_then_warm_is_reproducible(tmp_path):
    """The README's main command on a fresh store: trains, writes everything; the second run reuses
    the model and reproduces every number to the last digit."""
    cmd = [
        sys.executable,
        str(ROOT / "run_backtest.py"),
        "--no-progress",
        "--out",
        str(tmp_path / "res"),
        "--model-store",
        str(tmp_path / "store"),
    ]
    cold = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert cold.returncode == 0, cold.stderr[-3000:]
    assert "trained and saved" in cold.stdout and "Caveat" in cold.stdout
    out = tmp_path / "res" / "default"
    for name in ("tearsheet.html", "trades.csv", "metrics.json", "equity.csv", "equity.png", "alpha.json", "run.json"):
        assert (out / name).is_file(), name
    first = (out / "metrics.json").read_text()
    trades = (out / "trades.csv").read_text()
    # the timings say where the time went: the cold run trained, so its model time is seconds, not 0.0
    cold_seconds = json.loads((out / "run.json").read_text())["seconds"]
    assert cold_seconds["model"] > 1.0 and cold_seconds["data"] > 0.0
    assert f"model {cold_seconds['model']:.1f}s" in cold.stdout
    warm = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert "reused" in warm.stdout
    assert (out / "metrics.json").read_text() == first
    assert (out / "trades.csv").read_text() == trades
    metrics = json.loads(first)
    assert metrics["start"] >= "2017-01-01" and metrics["n_trades"] > 0
    run = json.loads((out / "run.json").read_text())
    assert run["rejected_orders"] == 0 and run["model_path"].startswith(str(tmp_path / "store"))


def test_universe_smaller_than_top_k_is_an_error(embedded):
    prices, bench = embedded
    data = MarketData(prices.select(["AAPL", "XOM", "KO"]), bench)
    from feeds import DataError

    with pytest.raises(DataError, match="fewer than top_k=5"):
        build_cerebro(data, START, END, score_alpha(pd.DataFrame()), {"top_k": 5}, 100_000, 0.0)


def test_universe_baseline_is_equal_weight_daily_rebalanced():
    from feeds import PricePanel

    dates = pd.date_range("2021-01-04", periods=4, freq="B")
    close = pd.DataFrame({"A": [10.0, 11.0, 12.1, 12.1], "B": [20.0, 18.0, np.nan, 19.8]}, index=dates)
    got = universe_baseline(PricePanel({"close": close}, {"close"}), dates)
    # day 2: (+10% - 10%)/2 = 0; day 3: only A trades, +10%; day 4: A 0%, B has no return (gap) -> 0
    assert got["universe_ew_total_return"] == pytest.approx(1.0 * 1.10 * 1.0 - 1)


def test_parallel_options_need_a_sweep_or_walk_forward(tmp_path, capsys):
    code = run_backtest.main(["--workers", "2", "--out", str(tmp_path), "--no-progress"])
    assert code == 2 and "--variants" in capsys.readouterr().err
