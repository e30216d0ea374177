"""The zoo runner: the plan, the summary and verdict (pure, fast), and end to end on a tiny
synthetic universe (slow): zoo.csv / zoo.md / zoo.png, the LSTM's seed-0 row is the main job's
model, the Sharpe is the strategy's, processes give the same rows as one process."""

import math

import numpy as np
import pandas as pd
import pytest

from feeds import ConfigError
from jobs import zoo


def _table(rows):
    return pd.DataFrame(rows, columns=zoo.ZOO_COLUMNS + ["test_rank_ic_se"])


def _row(model, seed, valid, test, se=0.01):
    return [model, seed, valid, test, test / se, test, 0.0, 0.5, 1.0, se]


def test_plan_runs_a_deterministic_model_once_and_the_lstm_first():
    tasks, notes = zoo.plan_tasks(["logistic", "random", "lstm", "momentum"], 3)
    assert [(t.model, t.seed) for t in tasks] == [
        ("lstm", 0),
        ("lstm", 1),
        ("lstm", 2),
        ("logistic", 0),
        ("random", 0),
        ("random", 1),
        ("random", 2),
        ("momentum", 0),
    ]
    assert any("logistic is deterministic" in n for n in notes) and any("momentum" in n for n in notes)
    with pytest.raises(ConfigError, match="--seeds"):
        zoo.plan_tasks(["lstm"], 0)
    with pytest.raises(ConfigError, match="xgb"):
        zoo.parse_models("lstm,xgb")
    assert zoo.parse_models(None) == ["lstm", "logistic", "lightgbm", "mlp", "momentum", "random"]


def test_best_baseline_is_chosen_on_validation_not_on_test():
    table = _table(
        [
            _row("lstm", 0, 0.03, 0.010),
            _row("lstm", 1, 0.03, 0.014),
            _row("lstm", 2, 0.03, 0.018),
            _row("gbm", 0, 0.05, 0.001),
            _row("gbm", 1, 0.05, 0.002),
            _row("gbm", 2, 0.05, 0.006),
            _row("lucky", 0, 0.00, 0.090),
            _row("lucky", 1, 0.00, 0.080),
            _row("lucky", 2, 0.00, 0.070),
        ]
    )
    versus = zoo.lstm_versus_best_baseline(table)
    assert versus["baseline"] == "gbm" and versus["paired"]
    diff = np.array([0.009, 0.012, 0.012])  # by hand: lstm - gbm per seed
    assert versus["diff"] == pytest.approx(diff.mean())
    assert versus["t"] == pytest.approx(diff.mean() / (diff.std(ddof=1) / math.sqrt(3)))


def test_a_deterministic_baseline_is_compared_with_its_single_run():
    table = _table([_row("lstm", 0, 0.03, 0.01), _row("lstm", 1, 0.03, 0.02), _row("logistic", 0, 0.04, 0.005)])
    versus = zoo.lstm_versus_best_baseline(table)
    assert not versus["paired"] and versus["n"] == 2
    assert versus["diff"] == pytest.approx(0.01)


def test_the_summary_t_is_of_the_seed_mean_beside_it():
    # one strong seed and two weak negative ones: the mean of the runs' t's (+1.27) would disagree in
    # sign with the seed mean (-0.0233); the summary's t is that mean over one run's test-day se
    table = _table([_row("lstm", 0, 0.03, 0.05, se=0.01), *(_row("lstm", s, 0.03, -0.06, se=0.10) for s in (1, 2))])
    row = zoo.summarise(table).loc["lstm"]
    assert row["test_rank_ic"] == pytest.approx(-0.07 / 3)
    assert row["test_rank_ic_se_days"] == pytest.approx(0.07)
    assert row["test_rank_ic_t"] == pytest.approx((-0.07 / 3) / 0.07)
    assert row["test_rank_ic_se"] == pytest.approx(np.std([0.05, -0.06, -0.06], ddof=1) / math.sqrt(3))


def test_one_run_reports_the_t_and_se_of_its_own_mean(monkeypatch):
    """evaluate_scores: test rank IC, its t and its se are one ic_summary's (Newey-West over the test
    days), so t = mean / se."""
    from types import SimpleNamespace

    from feeds.synthetic import make_synthetic_universe
    from jobs.market import MarketData
    from models.dataset import auto_split

    prices, bench = make_synthetic_universe(n_tickers=8, n_days=200, seed=4, ohlcv=False, late_start_share=0)
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(rng.uniform(-1, 1, prices.close.shape), index=prices.dates, columns=prices.tickers)
    model = SimpleNamespace(
        config=SimpleNamespace(horizon=5, split=auto_split(prices.dates, 5), label="regression"),
        predict=lambda *a, **k: scores,
    )
    monkeypatch.setattr(zoo, "strategy_sharpe", lambda *a: 0.0)
    row = zoo.evaluate_scores(model, MarketData(prices, bench), {}, scores)
    assert row["test_rank_ic_t"] == pytest.approx(row["test_rank_ic"] / row["test_rank_ic_se"], rel=1e-12)
    assert np.sign(row["test_rank_ic_t"]) == np.sign(row["test_rank_ic"])


def test_verdict_sentences():
    no_skill = _table(
        [_row("lstm", s, 0.03, 0.006 + 0.001 * s, se=0.006) for s in range(3)]
        + [_row("logistic", 0, 0.04, 0.006, se=0.006)]
    )
    text = zoo.verdict(zoo.summarise(no_skill), zoo.lstm_versus_best_baseline(no_skill))
    assert text.startswith("The LSTM does not beat its baselines out of sample") and "logistic" in text
    skill = _table(
        [_row("lstm", s, 0.03, 0.10 + 0.001 * s, se=0.01) for s in range(3)]
        + [_row("logistic", 0, 0.04, 0.02, se=0.01)]
    )
    assert zoo.verdict(zoo.summarise(skill), zoo.lstm_versus_best_baseline(skill)).startswith("The LSTM beats")
    assert zoo.verdict(zoo.summarise(skill), None).startswith("No verdict")


def test_markdown_has_every_model_and_the_verdict(tmp_path):
    table = _table(
        [_row("lstm", s, 0.03, 0.01 * s) for s in range(2)] + [_row("random", s, 0.0, 0.0) for s in range(2)]
    )
    info = {
        "data": "test",
        "split": {
            k: "2000-01-01" for k in ("train_start", "train_end", "valid_start", "valid_end", "test_start", "test_end")
        },
        "horizon": 10,
        "seeds": 2,
        "n_models": 2,
        "sharpe_engine": "Cerebro",
        "caveats": ["synthetic"],
    }
    zoo.write_zoo(table, info, tmp_path / "z")
    md = (tmp_path / "z" / "zoo.md").read_text()
    assert "| lstm | 2 |" in md and "| random | 2 |" in md and "**Verdict:**" in md
    assert "best baseline by validation rank IC = **random**" in md
    csv = pd.read_csv(tmp_path / "z" / "zoo.csv")
    assert list(csv.columns) == zoo.ZOO_COLUMNS
    assert (tmp_path / "z" / "zoo.png").stat().st_size > 1000


# ---------------------------------------------------------------------- end to end (slow)
@pytest.fixture(scope="module")
def tiny_world():
    from configs import load_config
    from feeds.synthetic import make_synthetic_universe
    from jobs.market import MarketData

    prices, bench = make_synthetic_universe(n_tickers=10, n_days=900, start="2015-01-01", ohlcv=False, seed=4)
    data = MarketData(prices, bench, None, ["synthetic data (a test)"])
    split = dict(
        train_start="2015-01-01",
        train_end="2016-06-30",
        valid_start="2016-07-01",
        valid_end="2017-03-31",
        test_start="2017-04-01",
        test_end="2018-06-13",
    )
    config = load_config(
        "default",
        overrides={
            "model": {
                "hidden": 8,
                "epochs": 2,
                "patience": 1,
                "stride": 3,
                "seq_len": 10,
                "split": split,
                "features": ["log_ret_1", "log_ret_5", "rsi14", "sma60_gap"],
            },
            "strategy": {"top_k": 3},
        },
    )
    return config, data


@pytest.mark.slow
def test_zoo_end_to_end_and_the_lstm_seed0_row_is_the_main_jobs_model(tiny_world, tmp_path):
    from jobs.backtest import run
    from jobs.store import artifact_dir, get_model, model_config, model_diagnostics

    config, data = tiny_world
    store = tmp_path / "store"
    table, info = zoo.run_zoo(
        config,
        data,
        tmp_path / "zoo",
        ["lstm", "logistic"],
        seeds=2,
        workers=1,
        store=store,
        progress=False,
        data_name="synthetic",
    )
    csv = pd.read_csv(tmp_path / "zoo" / "zoo.csv")
    assert list(csv.columns) == zoo.ZOO_COLUMNS
    assert [(m, s) for m, s in zip(csv.model, csv.seed)] == [("lstm", 0), ("lstm", 1), ("logistic", 0)]
    assert csv[zoo.ZOO_COLUMNS[2:]].notna().all().all()
    md = (tmp_path / "zoo" / "zoo.md").read_text()
    assert "**Verdict:**" in md and "logistic is deterministic" in md
    # the main job on the same config reuses the zoo's LSTM seed-0 artifact and gets its numbers
    model, path, reused = get_model(config, data, progress=False, store=store)
    assert reused and path == artifact_dir(config, model_config(config), data, store)
    diag = model_diagnostics(model, data, config)
    lstm0 = csv[(csv.model == "lstm") & (csv.seed == 0)].iloc[0]
    assert lstm0.valid_rank_ic == pytest.approx(diag["valid_rank_ic"]["mean"], rel=1e-5)
    assert lstm0.test_rank_ic == pytest.approx(diag["test_rank_ic"]["mean"], rel=1e-5)
    # its Sharpe is the full main-job backtest's (LSTMAlpha in Cerebro, with every report)
    result = run(config, tmp_path / "main", progress=False, data=data, model=model, model_path=path)
    assert lstm0.test_sharpe == pytest.approx(result.metrics["sharpe"], rel=1e-5)


@pytest.mark.slow
def test_processes_give_the_rows_of_one_process(tiny_world, tmp_path):
    config, data = tiny_world
    tasks, _ = zoo.plan_tasks(["momentum", "random"], 1)
    one = zoo.run_tasks(tasks, config, data, tmp_path / "a", workers=1, progress=False)
    two = zoo.run_tasks(tasks, config, data, tmp_path / "b", workers=2, progress=False)
    a = pd.DataFrame([r["row"] for r in one]).drop(columns="fit_seconds")
    b = pd.DataFrame([r["row"] for r in two]).drop(columns="fit_seconds")
    pd.testing.assert_frame_equal(a, b)
