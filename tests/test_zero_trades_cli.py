"""The three zero-trade triggers of issue 20.1 through the command line, on half a year of the
embedded data with a --scores file (no training): exit 0, the folder written whole, "0 trades" and
why in the summary, metrics.json and run.json, the tearsheet skipped with a note."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import run_backtest
from feeds import load_embedded

START, END = "2021-01-04", "2021-06-30"


@pytest.fixture(scope="module")
def scores_files(tmp_path_factory):
    prices, bench = load_embedded(START, END)
    dates = bench.loc[START:END].index
    rng = np.random.default_rng(1)
    folder = tmp_path_factory.mktemp("scores")
    random = pd.DataFrame(rng.uniform(-1, 1, (len(dates), len(prices.tickers))), index=dates, columns=prices.tickers)
    random.index.name = "Date"
    random.to_csv(folder / "random.csv")
    (random * 0.0).to_csv(folder / "zeros.csv")
    (folder / "one.csv").write_text(f"ticker,start,end\n{prices.tickers[0]},2000-01-01,\n")
    (folder / "threshold.toml").write_text("[strategy]\nentry_threshold = 1.0\n")
    return folder


def run(argv, tmp_path, capsys):
    code = run_backtest.main([*argv, "--start", START, "--end", END, "--out", str(tmp_path), "--no-progress"])
    return code, capsys.readouterr()


RANKED = ["--cross-section", "rank"]
CASES = {
    "threshold": (["--scores", "random.csv", *RANKED, "--config", "threshold.toml"], "no score passed"),
    "zeros": (["--scores", "zeros.csv", *RANKED, "--pyfolio"], "all tied"),
    "one-stock": (["--scores", "random.csv", *RANKED, "--universe", "one.csv"], "fewer eligible"),
    "zeros-vector": (["--scores", "zeros.csv", *RANKED, "--engine", "vector"], "all tied"),
}


# one case in the fast set; the others (with pyfolio's sheets, the vector engine) in the slow one
@pytest.mark.parametrize("case", [c if c == "threshold" else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_a_run_without_trades_writes_its_folder_and_says_why(case, scores_files, tmp_path, capsys):
    args, why = CASES[case]
    argv = [str(scores_files / a) if a.endswith((".csv", ".toml")) else a for a in args]
    code, out = run([*argv, "--name", case], tmp_path, capsys)
    assert code == 0, out.err
    folder = tmp_path / case
    assert sorted(p.name for p in tmp_path.iterdir()) == [case]  # whole, no temporary left
    files = {p.name for p in folder.iterdir()}
    assert {"metrics.json", "run.json", "trades.csv", "equity.csv", "equity.png"} <= files
    assert "tearsheet.html" not in files and "trade_returns.png" not in files
    if "--pyfolio" in args:  # pyfolio's sheets that need a transaction are skipped, the others written
        assert {"pyfolio_returns.png", "pyfolio_positions.png"} <= files and "pyfolio_transactions.png" not in files
    metrics = json.loads((folder / "metrics.json").read_text())
    run_json = json.loads((folder / "run.json").read_text())
    assert metrics["n_trades"] == 0 and metrics["sharpe"] is None
    assert metrics["notes"] == run_json["notes"]
    assert metrics["notes"][0].startswith("0 trades: ") and why in metrics["notes"][0]
    assert any(n.startswith("tearsheet.html not written") for n in metrics["notes"])
    assert "0 trades: " in out.out and why in out.out and "tearsheet.html not written" in out.out


def test_a_trading_run_has_no_notes(scores_files, tmp_path, capsys):
    code, out = run(["--scores", str(scores_files / "random.csv"), "--cross-section", "rank"], tmp_path, capsys)
    assert code == 0, out.err
    [folder] = list(tmp_path.iterdir())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["n_trades"] > 0 and "notes" not in metrics and (folder / "tearsheet.html").exists()
    assert "0 trades" not in out.out


def test_out_naming_a_file_is_a_clear_error(scores_files, tmp_path, capsys):
    blocker = tmp_path / "results.txt"
    blocker.write_text("")
    code = run_backtest.main(["--scores", str(scores_files / "random.csv"), "--out", str(blocker), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and f"--out {blocker} is a file, not a folder" in err


def test_a_universe_of_unknown_tickers_is_a_clear_error(scores_files, tmp_path, capsys):
    members = tmp_path / "members.csv"
    members.write_text("ticker,start,end\nNOPE,2000-01-01,\nALSO_NOPE,2000-01-01,\n")
    code, out = run(["--scores", str(scores_files / "random.csv"), "--universe", str(members)], tmp_path, capsys)
    assert code == 2 and "none of its 2 ticker(s) (['ALSO_NOPE', 'NOPE']) is in the data" in out.err


def test_the_notes_of_a_zero_trade_replay_are_no_engine_mismatch():
    from jobs.sweep.runners import metrics_mismatch

    vector = {"n_trades": 0, "sharpe": None, "total_return": 0.0}
    cerebro = {**vector, "notes": ["0 trades: no score passed the entry threshold ..."]}
    assert metrics_mismatch(vector, cerebro) is None
    assert metrics_mismatch(vector, {**cerebro, "total_return": 0.1}).startswith("total_return")
