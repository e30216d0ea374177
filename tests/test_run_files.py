"""What a run traded, on disk, and what cost breaks it: scores.csv (re-traded with --scores it
gives the same trades.csv), the tradeable rank IC in alpha_daily_rank_ic.csv, the traded bars in
run.json, and the cost table in metrics.json, the summary and cost_sensitivity.png."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import run_backtest
from configs import load_config
from jobs.backtest import run
from jobs.engines import period_scores
from jobs.market import MarketData
from strategies import load_scores_csv
from strategies.cost_sensitivity import GRID_BP

PERIOD = ("2022-10-01", "2022-12-31")  # a Saturday; the embedded data ends 2022-12-28


@pytest.fixture(scope="module")
def model_run(embedded, tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    prices, bench = embedded
    data = MarketData(prices, bench)
    config = load_config("default", None, {"backtest": {"start": PERIOD[0], "end": PERIOD[1]}})
    result = run(config, tmp / "model", model=tiny_model, data=data, progress=False)
    return tmp, result, data


def test_scores_csv_is_what_the_model_scored_on_each_bar(model_run, tiny_model):
    tmp, result, data = model_run
    read = load_scores_csv(result.out_dir / "scores.csv")
    assert read.index.equals(pd.DatetimeIndex(result.equity.index.normalize(), name="date"))  # the run's calendar
    scored, _ = period_scores(tiny_model, data, *(pd.Timestamp(d) for d in PERIOD), cache_dir=tmp / "cache")
    expected = scored.reindex(index=read.index, columns=read.columns)
    has_bar = data.prices.close.reindex(index=read.index, columns=read.columns).notna()
    expected = expected.where(has_bar)
    np.testing.assert_array_equal(read.to_numpy(), expected.to_numpy())  # the model's scores, bit for bit
    assert read.notna().to_numpy().mean() > 0.9


@pytest.mark.slow  # a second end-to-end run through the command line
def test_scores_csv_retraded_with_scores_gives_the_same_trades(model_run, tmp_path, capsys):
    _, result, _ = model_run
    first = result.out_dir
    argv = ["--scores", str(first / "scores.csv"), "--cross-section", "rank", "--start", PERIOD[0], "--end", PERIOD[1]]
    code = run_backtest.main([*argv, "--out", str(tmp_path), "--name", "again", "--no-progress"])
    assert code == 0
    again = tmp_path / "again"
    trades = (first / "trades.csv").read_text()
    assert trades.count("\n") > 20  # it traded
    assert (again / "trades.csv").read_text() == trades
    assert (again / "scores.csv").read_bytes() == (first / "scores.csv").read_bytes()
    ours, theirs = (json.loads((d / "metrics.json").read_text()) for d in (again, first))
    assert ours["cost_sensitivity"] == theirs["cost_sensitivity"]
    out = capsys.readouterr().out
    assert out.count("cost a side -> Sharpe (excess over equal-weight): 0 bp") == 1
    assert "breakeven" in out and "turnover" in out


def test_run_json_gives_the_traded_bars_beside_the_requested_period(model_run):
    _, result, _ = model_run
    info = json.loads((result.out_dir / "run.json").read_text())
    equity = pd.read_csv(result.out_dir / "equity.csv")
    assert info["period"] == [PERIOD[0], "2022-12-28"]  # as asked, its end cut to the data's last day
    assert info["traded_bars"] == [equity["date"].iloc[0], equity["date"].iloc[-1]] == ["2022-10-03", "2022-12-28"]
    assert info["seconds"]["cost_sensitivity"] >= 0


def test_the_cost_row_at_the_runs_own_cost_is_the_run(model_run):
    """The table is the vector engine on the scores Cerebro read: at the run's 5 bp it is the run."""
    _, result, _ = model_run
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    rows = metrics["cost_sensitivity"]
    assert [row["cost_bp"] for row in rows] == list(GRID_BP)
    own = next(row for row in rows if row["cost_bp"] == 5.0)  # default.toml: commission = 0.0005
    for key in ("sharpe", "cagr", "total_return", "turnover"):
        assert own[key] == pytest.approx(metrics[key], rel=1e-9, abs=1e-12), key
    assert own["n_trades"] == metrics["n_trades"]
    assert rows[0]["sharpe"] > rows[-1]["sharpe"]
    found = metrics["breakeven_cost"]
    assert found["status"] in ("found", "below_bracket", "above_bracket") and found["resolution_bp"] == 0.25
    assert metrics["breakeven_cost_bp"] == found["bp"]
    assert "cost_sensitivity" not in result.metrics  # the sweep compares result.metrics with the vector engine's
    assert result.cost_sensitivity["cost_sensitivity"] == rows
    assert (result.out_dir / "cost_sensitivity.png").read_bytes()[:4] == b"\x89PNG"


def test_alpha_daily_rank_ic_has_the_tradeable_series(model_run):
    _, result, _ = model_run
    daily = pd.read_csv(result.out_dir / "alpha_daily_rank_ic.csv", index_col="date")
    assert {"10", "tradeable_10"} <= set(daily.columns)
    alpha = json.loads((result.out_dir / "alpha.json").read_text())
    assert daily["tradeable_10"].mean() == pytest.approx(alpha["horizons"]["10"]["tradeable_rank_ic"]["mean"])
