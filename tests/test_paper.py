"""Paper trading (jobs/paper.py): the account's state after every daily step equals one backtest
over the same period with the same model; steps are idempotent, atomic under SIGKILL, and never
rewrite history silently."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from feeds import ConfigError
from jobs import paper as papertrade
from jobs.engines import build_cerebro, lstm_alpha, model_alpha, strategy_params
from jobs.market import MarketData, load_data
from jobs.store import get_model
from models import AlphaModel

ROOT = Path(__file__).resolve().parents[1]
START = "2020-10-01"  # the account's first day: a short replay before the 30 days of 2021
FIRST_CSV_DAY = "2016-01-01"  # the CSV folder's history (warm-up for the model's features)
TICKERS = ["AAPL", "AMD", "BAC", "CVX", "GE", "KO", "MSFT", "XOM"]  # 8 of the 20: a lean test


@pytest.fixture(scope="module")
def model_dir(tiny_model, tmp_path_factory):
    """ONE small model for the whole module (conftest's session fixture), saved as an artifact."""
    return tiny_model.save(tmp_path_factory.mktemp("paper_model") / "tiny")


@pytest.fixture(scope="module")
def days_2021(embedded):
    _, bench = embedded
    return list(bench.loc["2021-01-04":].index[:30])


def write_csv_folder(folder: Path, embedded, end, tickers=TICKERS, open_at_last_close=False) -> Path:
    """The embedded closes from FIRST_CSV_DAY to `end` as a CSV folder (Date,Close), benchmark SP500.csv.
    open_at_last_close: Date,Open,High,Low,Close,Volume files whose open is the previous close."""
    prices, bench = embedded
    folder.mkdir(parents=True, exist_ok=True)
    for t in tickers:
        close = prices.close[t].loc[FIRST_CSV_DAY:end]
        frame = close.rename("Close").rename_axis("Date").to_frame()
        if open_at_last_close:
            opens = close.shift(1).fillna(close)
            frame = pd.DataFrame(
                {
                    "Open": opens,
                    "High": np.maximum(opens, close),
                    "Low": np.minimum(opens, close),
                    "Close": close,
                    "Volume": 1e6,
                }
            ).rename_axis("Date")
        frame.to_csv(folder / f"{t}.csv")
    bench.loc[FIRST_CSV_DAY:end].rename("Close").rename_axis("Date").to_csv(folder / "SP500.csv")
    return folder


def new_account(tmp_path, model_dir, embedded, end, name="acct", **kwargs):
    csv = write_csv_folder(tmp_path / "csv", embedded, end)
    root = tmp_path / "paper"
    papertrade.init(root, name, START, model_dir=model_dir, data_dir=csv, benchmark="SP500", **kwargs)
    return root, root / name, csv


def reference_backtest(account_path: Path, model_dir: Path, end):
    """One plain backtest over the account's data and period: jobs.engines.build_cerebro, ArrayData
    feeds, runonce (batched once() scores), close_at_end off. Returns the strategy."""
    config = json.loads((account_path / "current" / "config.json").read_text())
    data = load_data(config)
    model = AlphaModel.load(model_dir)
    start, end = pd.Timestamp(START), pd.Timestamp(end)
    params = {**strategy_params(config), "close_at_end": False}
    cerebro = build_cerebro(
        data,
        start,
        end,
        lstm_alpha(model, data, start),
        params,
        float(config["backtest"]["cash"]),
        float(config["backtest"]["commission"]),
    )
    cerebro.addanalyzer(Submitted, _name="submitted")
    return cerebro.run()[0]


def account_files(path: Path) -> dict:
    current = path / "current"
    return {p.name: p.read_bytes() for p in sorted(current.iterdir())}


def assert_book_equals_backtest(path: Path, ref):
    book = json.loads((path / "book.json").read_text())
    want = ref.book_state()
    assert book["date"] == want["date"]
    assert abs(book["cash"] - ref.broker.getcash()) <= 1e-9
    assert abs(book["value"] - ref.broker.getvalue()) <= 1e-9
    got_positions = {
        t: {k: p[k] for k in ("shares", "entry", "last_review", "next_review")} for t, p in book["positions"].items()
    }
    want_positions = {
        t: {k: h[k] for k in ("shares", "entry", "last_review", "next_review")} for t, h in want["holdings"].items()
    }
    assert got_positions == want_positions
    # every share in the broker is in the book
    held = {d._name: ref.getposition(d).size for d in ref.stocks if ref.getposition(d).size}
    assert {t: p["shares"] for t, p in book["positions"].items()} == held


def order_decisions(rows):
    return [
        (
            r["ticker"],
            r["action"],
            r["reason"],
            round(float(r["score"]), 6) if r["score"] != "" else None,
            int(r["rank"]) if r["rank"] not in ("", None) else None,
        )
        for r in rows
    ]


def reference_decisions(ref):
    state = ref.book_state()
    return [(o["ticker"], "SELL", o["reason"], round(o["score"], 6), None) for o in state["sell"]] + [
        (o["ticker"], "BUY", "entry", round(o["score"], 6), o["rank"]) for o in state["buy"]
    ]


# ------------------------------------------------------------------------------------ the live bar
def test_live_feed_turns_cerebro_to_next_mode_and_next_scores_the_newest_bar(embedded, tiny_model):
    """A short replay on 4 stocks: Cerebro ran without runonce/preload, the feeds went DELAYED ->
    LIVE on the newest bar, LSTMAlpha.next() scored exactly that bar and equals model.predict;
    every earlier bar holds the batched score exactly."""
    prices, bench = embedded
    data = MarketData(prices.select(["AAPL", "KO", "XOM", "JPM"]), bench, None, [])
    start, end = pd.Timestamp("2021-02-01"), pd.Timestamp("2021-02-26")
    statuses = []

    class Watch(papertrade.PaperStrategy):
        def notify_data(self, data, status, *args, **kwargs):
            statuses.append((data._name, data._getstatusname(status), len(data)))

    original = papertrade.PaperStrategy
    papertrade.PaperStrategy = Watch
    try:
        run = papertrade.replay(tiny_model, data, start, end, {"top_k": 2}, 100_000.0, 0.0005)
    finally:
        papertrade.PaperStrategy = original
    strategy = run.strategy
    assert strategy.env._dorunonce is False and strategy.env._dopreload is False
    n_bars = len(bench.loc[start:end])
    assert ("XOM", "DELAYED", 1) in statuses and ("XOM", "LIVE", n_bars) in statuses
    want = tiny_model.predict(data.prices.between(None, end), bench.loc[:end]).loc[start:end]
    for ticker, alpha in strategy.alphas.items():
        got = np.asarray(alpha.score.array)
        assert alpha.live_bars == 1 and len(got) == n_bars
        np.testing.assert_array_equal(got[:-1], want[ticker].to_numpy()[:-1])
        assert abs(got[-1] - want[ticker].iloc[-1]) < 1e-6
    assert [d["date"] for d in run.days] == [str(d.date()) for d in bench.loc[start:end].index]


# ------------------------------------------------------------------------------------ equivalence
class Submitted(bt.Analyzer):
    """The orders a backtest submits, with the decision they carry (order.info)."""

    def start(self):
        self.orders = []

    def notify_order(self, order):
        if order.status == order.Submitted:
            self.orders.append(
                (
                    str(bt.num2date(order.created.dt).date()),
                    order.data._name,
                    "BUY" if order.isbuy() else "SELL",
                    order.info.reason,
                    round(order.info.score, 6),
                    order.info.rank,
                    abs(int(order.created.size)),
                )
            )


@pytest.mark.slow
def test_thirty_daily_steps_equal_one_backtest_each(tmp_path, model_dir, embedded, days_2021):
    root, path, csv = new_account(tmp_path, model_dir, embedded, days_2021[0])
    previous_journal, listed = [], None
    n_orders = n_checked_fills = 0
    for i, day in enumerate(days_2021):
        write_csv_folder(csv, embedded, day)
        result = papertrade.step(root, "acct", tearsheet=(i == len(days_2021) - 1))
        assert result.status == "stepped" and result.date == str(day.date())
        ref = reference_backtest(path, model_dir, day)
        assert_book_equals_backtest(path, ref)
        orders = papertrade.read_csv_rows(path / "orders_next_open.csv")
        assert order_decisions(orders) == reference_decisions(ref)
        n_orders += len(orders)
        # independent of book_state(): the orders listed yesterday are the orders today's
        # backtest submitted at today's open, decision for decision
        if listed is not None:
            placed = [o[1:6] for o in ref.analyzers.submitted.orders if o[0] == str(day.date())]
            assert placed == listed
            n_checked_fills += len(placed)
        listed = order_decisions(orders)

        # scores: every earlier bar equals the batched (runonce) score exactly; the live bar came
        # through LSTMAlpha.next() and equals the batched one to float precision
        live = result.replay.strategy
        for ticker, alpha in live.alphas.items():
            got, want = np.asarray(alpha.score.array), np.asarray(ref.alphas[ticker].score.array)
            assert len(got) == len(want)
            np.testing.assert_array_equal(got[:-1], want[:-1])
            assert abs(got[-1] - want[-1]) < 1e-6
            assert alpha.live_bars == 1
        # the journal only grows: one new line per new day, the old lines byte for byte
        journal = papertrade.read_csv_rows(path / "journal.csv")
        assert journal[: len(previous_journal)] == previous_journal
        assert [r["date"] for r in journal[len(previous_journal) :]] == (
            [str(day.date())] if previous_journal else [d["date"] for d in result.replay.days]
        )
        previous_journal = journal
    assert n_orders > 5 and n_checked_fills > 5  # the 30 days did make decisions to compare
    assert "paper account acct" in (path / "tearsheet.html").read_text()


@pytest.mark.slow
def test_order_shares_are_the_backtests_fills_when_the_open_is_the_last_close(tmp_path, model_dir, embedded, days_2021):
    """Sized at the last close, the listed shares are exactly what the backtest buys and sells at
    the next open when that open equals the last close (OHLC files with open = previous close)."""
    csv = write_csv_folder(tmp_path / "csv", embedded, days_2021[0], open_at_last_close=True)
    root = tmp_path / "paper"
    papertrade.init(root, "acct", START, model_dir=model_dir, data_dir=csv, benchmark="SP500")
    path = root / "acct"
    checked = 0
    for day, next_day in zip(days_2021[:8], days_2021[1:9]):
        write_csv_folder(csv, embedded, day, open_at_last_close=True)
        papertrade.step(root, "acct", tearsheet=False)
        listed = [
            (o["ticker"], o["action"], int(o["shares"]))
            for o in papertrade.read_csv_rows(path / "orders_next_open.csv")
        ]
        write_csv_folder(csv, embedded, next_day, open_at_last_close=True)
        ref = reference_backtest(path, model_dir, next_day)
        filled = [(o[1], o[2], o[6]) for o in ref.analyzers.submitted.orders if o[0] == str(next_day.date())]
        assert filled == listed
        checked += sum(1 for o in listed if o[1] == "BUY")
    assert checked >= 3


# ------------------------------------------------------------------------------------ idempotence, atomicity
@pytest.mark.slow
def test_second_step_on_the_same_data_changes_nothing(tmp_path, model_dir, embedded, days_2021):
    root, path, _ = new_account(tmp_path, model_dir, embedded, days_2021[3])
    assert papertrade.step(root, "acct", tearsheet=False).status == "stepped"
    before, target = account_files(path), os.readlink(path / "current")
    again = papertrade.step(root, "acct", tearsheet=False)
    assert again.status == "unchanged" and "nothing changed" in again.messages[0]
    assert account_files(path) == before and os.readlink(path / "current") == target


KILL_SCRIPT = """
import os, sys, time, pathlib
sys.path.insert(0, {root!r})
from jobs import paper as papertrade
point = {point!r}
marker = pathlib.Path({marker!r})

def pause():
    marker.write_text("here")
    time.sleep(60)

if point == "writing":          # half of the new state's files written
    original = pathlib.Path.write_text
    def write_text(self, *a, **k):
        out = original(self, *a, **k)
        if self.name == "journal.csv" and "states" in str(self):
            pause()
        return out
    pathlib.Path.write_text = write_text
elif point == "before-switch":  # the new state whole on disk, `current` not yet switched
    original = os.symlink
    def symlink(*a, **k):
        original(*a, **k)
        pause()
    papertrade.os.symlink = symlink
papertrade.step({paper!r}, "acct", tearsheet=False)
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["writing", "before-switch"])
def test_sigkill_during_a_step_leaves_the_previous_state_whole(tmp_path, model_dir, embedded, days_2021, point):
    root, path, csv = new_account(tmp_path, model_dir, embedded, days_2021[0])
    papertrade.step(root, "acct", tearsheet=False)
    before = account_files(path)
    write_csv_folder(csv, embedded, days_2021[1])
    marker = tmp_path / "marker"
    script = KILL_SCRIPT.format(root=str(ROOT), point=point, marker=str(marker), paper=str(root))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, f"the step ended (rc {proc.returncode}) before reaching {point}"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert account_files(path) == before
    assert json.loads((path / "book.json").read_text())["date"] == str(days_2021[0].date())
    # and the account steps on normally afterwards, to the backtest's state
    assert papertrade.step(root, "acct", tearsheet=False).status == "stepped"
    assert_book_equals_backtest(path, reference_backtest(path, model_dir, days_2021[1]))
    assert sorted(p.name for p in (path / "states").iterdir()) == [os.readlink(path / "current").split("/")[-1]]


# ------------------------------------------------------------------------------------ revised history
@pytest.mark.slow
def test_revised_past_close_reports_the_divergence_and_keeps_the_journal(
    tmp_path, model_dir, embedded, days_2021, capsys
):
    root, path, csv = new_account(tmp_path, model_dir, embedded, days_2021[5])
    papertrade.step(root, "acct", tearsheet=False)
    journal = papertrade.read_csv_rows(path / "journal.csv")
    # a past day on which the account bought: revise that stock's close of that day
    buy_day = next(r for r in reversed(journal) if "BUY" in r["decisions"])
    ticker = buy_day["decisions"].split("BUY ")[1].split(" ")[0]
    file = csv / f"{ticker}.csv"
    original = file.read_text()
    for factor in (0.6, 1.5, 0.3):  # a revision that changes no decision is accepted: try a larger one
        before = account_files(path)
        frame = pd.read_csv(file, index_col="Date")
        frame.loc[buy_day["date"], "Close"] *= factor
        frame.to_csv(file)
        rc = papertrade.main(["--root", str(root), "step", "acct", "--no-tearsheet"])
        if rc == 3:
            break
        file.write_text(original)
    assert rc == 3
    err = capsys.readouterr().err
    assert account_files(path) == before  # journal, book and orders as they were
    result = papertrade.step(root, "acct", tearsheet=False)
    assert result.status == "diverged" and account_files(path) == before
    for d in result.divergences:  # every divergence is printed: date, ticker, kept and new decision
        assert f"{d['date']:12}{d['ticker']:8}{d['old']:28}{d['new']}" in err
    # no day before the revised close changes (those decisions could not see it) ...
    assert min(d["date"] for d in result.divergences) == buy_day["date"]
    # ... and that day's report is what a plain backtest on the revised data decides on it
    ref = reference_backtest(path, model_dir, buy_day["date"])

    def by_ticker(text):
        return {
            item.split(" ")[1]: item.split(" ")[0] + " " + item.split(" ", 2)[2] for item in text.split("|") if item
        }

    old, new = by_ticker(buy_day["decisions"]), by_ticker(papertrade.decisions_text(ref.book_state()))
    want = {t: (old.get(t, "(none)"), new.get(t, "(none)")) for t in set(old) | set(new) if old.get(t) != new.get(t)}
    got = {d["ticker"]: (d["old"], d["new"]) for d in result.divergences if d["date"] == buy_day["date"]}
    assert got == want and got


@pytest.mark.slow
def test_revision_that_changes_no_decision_is_journalled_not_rewritten(tmp_path, model_dir, embedded, days_2021):
    root, path, csv = new_account(tmp_path, model_dir, embedded, days_2021[2])
    papertrade.step(root, "acct", tearsheet=False)
    journal = papertrade.read_csv_rows(path / "journal.csv")
    file = csv / "KO.csv"  # a close of the warm-up history, years before the account started
    frame = pd.read_csv(file, index_col="Date")
    frame.iloc[10, 0] *= 1.0001
    frame.to_csv(file)
    result = papertrade.step(root, "acct", tearsheet=False)
    assert result.status == "stepped" and "decisions unchanged" in result.messages[0]
    after = papertrade.read_csv_rows(path / "journal.csv")
    assert after[: len(journal)] == journal and len(after) == len(journal) + 1
    assert after[-1]["date"] == journal[-1]["date"] and after[-1]["decisions"] == journal[-1]["decisions"]
    assert after[-1]["data_fingerprint"] != journal[-1]["data_fingerprint"]
    assert papertrade.step(root, "acct", tearsheet=False).status == "unchanged"


class FakeYahoo:
    """Callable like yf.download, serving the embedded closes (open = high = low = close) up to
    `until`, in yfinance's column shape; records what it was asked for. No network."""

    def __init__(self, embedded, until):
        self.prices, self.bench = embedded
        self.until = pd.Timestamp(until)
        self.calls = []

    def __call__(self, tickers, start=None, end=None, auto_adjust=None, progress=None, **kwargs):
        symbols = [tickers] if isinstance(tickers, str) else list(tickers)
        self.calls.append((tuple(symbols), str(pd.Timestamp(start).date())))
        parts = {}
        for symbol in symbols:
            close = self.bench if symbol == "SP500" else self.prices.close[symbol]
            close = close[(close.index >= start) & (close.index < end) & (close.index <= self.until)]
            parts[symbol] = pd.DataFrame(
                {"Open": close, "High": close, "Low": close, "Close": close, "Adj Close": close, "Volume": 1e6}
            ).rename_axis("Date")
        return pd.concat(parts, axis=1, names=["Ticker", "Price"]).swaplevel(0, 1, axis=1).sort_index(axis=1)


@pytest.mark.slow
def test_yfinance_account_updates_its_cache_and_steps(tmp_path, model_dir, embedded, days_2021):
    from feeds import download_to_cache

    cache = tmp_path / "cache"
    fake = FakeYahoo(embedded, days_2021[0])
    today = days_2021[0] + pd.Timedelta(days=1)
    download_to_cache(TICKERS, FIRST_CSV_DAY, cache_dir=cache, benchmark="SP500", downloader=fake, today=today)
    root = tmp_path / "paper"
    papertrade.init(root, "yf", START, model_dir=model_dir, source="yfinance", data_dir=cache, benchmark="SP500")
    for day in days_2021[1:3]:
        fake.until, today = day, day + pd.Timedelta(days=1)
        fake.calls.clear()
        assert papertrade.step(root, "yf", tearsheet=False, downloader=fake, today=today).status == "stepped"
        assert json.loads((root / "yf" / "book.json").read_text())["date"] == str(day.date())
        # incremental: asked only from the last cached day on, never the whole history again
        assert fake.calls and all(start >= str(days_2021[0].date()) for _, start in fake.calls)
    assert papertrade.step(root, "yf", tearsheet=False, downloader=fake, today=today).status == "unchanged"


# ------------------------------------------------------------------------------------ drift guard, rebase, status
def test_changed_model_config_or_code_refuses_to_step(tmp_path, model_dir, embedded, days_2021, monkeypatch):
    config = tmp_path / "mine.toml"
    config.write_text("[strategy]\ntop_k = 4\n")
    root, path, _ = new_account(tmp_path, model_dir, embedded, days_2021[0], config_file=config)
    account = json.loads((path / "current" / "account.json").read_text())
    assert account["refit"] == "none" and account["model"]["sha256"] == papertrade.tree_sha256(model_dir)

    config.write_text("[strategy]\ntop_k = 3\n")
    with pytest.raises(ConfigError, match=r"strategy.top_k: 4 -> 3.*--rebase"):
        papertrade.step(root, "acct")
    config.write_text("[strategy]\ntop_k = 4\n")

    monkeypatch.setattr(papertrade, "code_version", lambda: "0" * 16)
    with pytest.raises(ConfigError, match="code version changed"):
        papertrade.step(root, "acct")
    monkeypatch.undo()

    weights = path / account["model"]["dir"] / "weights.pt"
    weights.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(ConfigError, match="model artifact .* changed"):
        papertrade.step(root, "acct")


def test_init_refuses_bad_refit_choices_and_an_existing_account(tmp_path, model_dir, embedded, days_2021):
    with pytest.raises(ConfigError, match="--model and --refit"):  # a refitting account trains its own folds
        new_account(tmp_path, model_dir, embedded, days_2021[0], refit="yearly")
    with pytest.raises(ConfigError, match="keeps its folds in"):
        papertrade.init(tmp_path / "p", "a", START, refit_every_months=6, model_store=tmp_path)
    assert papertrade.refit_months(None, None) == papertrade.refit_months("none", None) == 0
    assert papertrade.refit_months("yearly", None) == 12 and papertrade.refit_months(None, 3) == 3
    with pytest.raises(ConfigError, match="give one of them"):
        papertrade.refit_months("yearly", 6)
    with pytest.raises(ConfigError, match="whole number of months"):
        papertrade.refit_months(None, 0)
    with pytest.raises(ConfigError, match="use one of"):
        papertrade.refit_months("monthly", None)
    root, _, csv = new_account(tmp_path, model_dir, embedded, days_2021[0])
    with pytest.raises(ConfigError, match="exists"):
        papertrade.init(root, "acct", START, model_dir=model_dir, data_dir=csv, benchmark="SP500")
    with pytest.raises(ConfigError, match="account name"):
        papertrade.init(root, "../x", START, model_dir=model_dir, data_dir=csv, benchmark="SP500")


@pytest.mark.slow
def test_rebase_starts_a_new_generation_from_todays_book(tmp_path, model_dir, embedded, days_2021, capsys):
    config = tmp_path / "mine.toml"
    config.write_text("[strategy]\ntop_k = 5\n")
    root, path, csv = new_account(tmp_path, model_dir, embedded, days_2021[2], config_file=config)
    papertrade.step(root, "acct", tearsheet=False)
    old_book = json.loads((path / "book.json").read_text())
    old_journal = papertrade.read_csv_rows(path / "journal.csv")
    assert old_book["positions"]  # the refusal below needs open positions
    config.write_text("[strategy]\ntop_k = 2\n")
    with pytest.raises(ConfigError):
        papertrade.step(root, "acct")
    # with open positions --rebase refuses, says what it would do and how to do it; nothing is written
    before = account_files(path)
    assert papertrade.main(["--root", str(root), "step", "acct", "--rebase", "--no-tearsheet"]) == 2
    err = capsys.readouterr().err
    assert "refusing to rebase" in err and "--rebase --sell-all" in err and "starts generation 2 flat" in err
    for ticker, p in old_book["positions"].items():
        assert f"{ticker} {p['shares']}" in err
    assert account_files(path) == before
    with pytest.raises(ConfigError, match="goes with --rebase"):
        papertrade.step(root, "acct", sell_all=True)
    result = papertrade.step(root, "acct", rebase=True, sell_all=True, tearsheet=False)
    assert result.status == "stepped" and "generation 2" in result.messages[0]
    account = json.loads((path / "current" / "account.json").read_text())
    assert account["generation"] == 2 and account["generations"][-1]["cash"] == old_book["value"]
    assert json.loads((path / "current" / "config.json").read_text())["strategy"]["top_k"] == 2
    journal = papertrade.read_csv_rows(path / "journal.csv")
    assert journal[: len(old_journal)] == old_journal and journal[-1]["generation"] == "2"
    orders = papertrade.read_csv_rows(path / "orders_next_open.csv")
    assert {o["ticker"] for o in orders if o["reason"] == "rebase"} == {t for t, p in old_book["positions"].items()}
    assert len([o for o in orders if o["action"] == "BUY"]) <= 2
    # the new generation steps on: same data -> unchanged, a new day -> stepped
    assert papertrade.step(root, "acct", tearsheet=False).status == "unchanged"
    write_csv_folder(csv, embedded, days_2021[3])
    assert papertrade.step(root, "acct", tearsheet=False).status == "stepped"
    assert papertrade.main(["--root", str(root), "status", "acct"]) == 0
    out = capsys.readouterr().out
    assert "generation 2" in out and "benchmark" in out and str(days_2021[3].date()) in out


@pytest.mark.slow
def test_rebase_of_a_flat_book_needs_no_sell_all(tmp_path, model_dir, embedded, days_2021):
    config = tmp_path / "flat.toml"
    config.write_text("[strategy]\nentry_threshold = 1.0\n")  # a rank score is never above 1: never buys
    root, path, _ = new_account(tmp_path, model_dir, embedded, days_2021[1], config_file=config)
    papertrade.step(root, "acct", tearsheet=False)
    assert json.loads((path / "book.json").read_text())["positions"] == {}
    config.write_text("[strategy]\nentry_threshold = 1.0\nreview_days = 8\n")
    result = papertrade.step(root, "acct", rebase=True, tearsheet=False)
    assert result.status == "stepped" and "0 old position(s) to sell" in result.messages[0]
    assert json.loads((path / "current" / "account.json").read_text())["generation"] == 2


# ------------------------------------------------------------------------------------ scheduled refits
REFIT_TOML = """
[model]
hidden = 8
epochs = 2
patience = 1
stride = 5
batch_size = 1024
seed = 3
threads = 1

[model.split]
train_start = "2014-06-01"
train_end = "2017-12-31"
valid_start = "2018-01-01"
valid_end = "2019-12-31"
test_start = "2020-01-01"   # the walk-forward plan's first refit; yearly: 2021-01-01 is the next
test_end = "2021-12-31"

[walk_forward]
valid_years = 2

[strategy]
top_k = 3
"""
REFIT_START = "2020-12-14"
REFIT_STEPS = ["2020-12-18", "2020-12-22", "2020-12-30", "2020-12-31", "2021-01-04", "2021-01-05", "2021-01-08"]
REFIT_TICKERS = ["AAPL", "AMD", "BAC", "CVX", "GE", "KO"]


def walk_forward_backtest(config: dict, data, model, end):
    """One plain --walk-forward backtest (runonce, batched once() scores, close_at_end off) of the
    account's days up to `end` with `model` (jobs.store.get_model's WalkForwardModel)."""
    start, end = pd.Timestamp(REFIT_START), pd.Timestamp(end)
    params = {**strategy_params(config), "close_at_end": False}
    data = MarketData(data.prices.between(None, end), data.benchmark.loc[:end], None, [])
    cerebro = build_cerebro(
        data,
        start,
        end,
        model_alpha(model, data, start),
        params,
        float(config["backtest"]["cash"]),
        float(config["backtest"]["commission"]),
    )
    cerebro.addanalyzer(Submitted, _name="submitted")
    return cerebro.run()[0]


@pytest.mark.slow
def test_yearly_refits_equal_one_walk_forward_backtest(tmp_path, embedded, monkeypatch):
    """An account refitting yearly, stepped across its refit date 2021-01-01, is after every step
    the state of one --walk-forward backtest over the same days with the same plan: book to 1e-9,
    the orders decision for decision, the fills of each next day exactly the orders listed the day
    before; the fold it trained on 2021-01-04 has the backtest fold's weights bit for bit."""
    import models.walkforward as wf

    config_file = tmp_path / "refit.toml"
    config_file.write_text(REFIT_TOML)
    monkeypatch.setattr(sys.modules[__name__], "FIRST_CSV_DAY", "2014-01-01")
    csv = write_csv_folder(tmp_path / "csv", embedded, REFIT_STEPS[0], tickers=REFIT_TICKERS)
    root = tmp_path / "paper"
    papertrade.init(root, "wf", REFIT_START, config_file=config_file, data_dir=csv, benchmark="SP500", refit="yearly")
    path = root / "wf"
    account = json.loads((path / "current" / "account.json").read_text())
    assert account["refit"] == "yearly" and [f["number"] for f in account["folds"]] == [0]
    assert account["walk_forward"]["first_test"] == "2020-01-01" and account["folds"][0]["refit_date"] == "2020-01-01"
    books = {}
    for day in REFIT_STEPS:
        write_csv_folder(csv, embedded, day, tickers=REFIT_TICKERS)
        if day == "2021-01-04":  # the first step after the refit date: a leaky fold is refused, nothing written
            before, honest = account_files(path), wf.fit_fold

            def leaky(*args, _honest=honest, **kwargs):
                model = _honest(*args, **kwargs)
                model.report_.windows["last_label_date"] = "2021-01-04"  # as if it had learned that day's label
                return model

            monkeypatch.setattr(wf, "fit_fold", leaky)
            with pytest.raises(ConfigError, match="scored by fold 1 .* reach 2021-01-04"):
                papertrade.step(root, "wf", tearsheet=False)
            monkeypatch.setattr(wf, "fit_fold", honest)
            assert account_files(path) == before
        result = papertrade.step(root, "wf", tearsheet=False)
        assert result.status == "stepped" and result.date == day
        assert any(m.startswith("refit: fold 1 (refit 2021-01-01)") for m in result.messages) == (day == "2021-01-04")
        books[day] = (
            json.loads((path / "book.json").read_text()),
            papertrade.read_csv_rows(path / "orders_next_open.csv"),
        )
    account = json.loads((path / "current" / "account.json").read_text())
    folds = {f["number"]: f for f in account["folds"]}
    assert sorted(folds) == [0, 1] and folds[1]["trained_at"] == "2021-01-04"
    assert folds[1]["last_label_date"] < "2021-01-01" and folds[1]["split"]["valid_end"] == "2020-12-31"
    for f in folds.values():  # saved as model artifacts, their sha256 recorded
        assert (path / f["dir"] / "model.json").is_file() and papertrade.tree_sha256(path / f["dir"]) == f["sha256"]
    journal = papertrade.read_csv_rows(path / "journal.csv")
    assert {r["date"]: r["model_sha256"] for r in journal} == {
        r["date"]: folds[0 if r["date"] < "2021-01-01" else 1]["sha256"] for r in journal
    }
    assert json.loads((path / "book.json").read_text())["model_sha256"] == folds[1]["sha256"]

    # the reference: jobs.store.get_model's --walk-forward model of the same configuration and data
    config = json.loads((path / "current" / "config.json").read_text())
    config_wf = {**config, "walk_forward": {**config["walk_forward"], "enabled": True}}
    data = load_data(config)
    model, _, reused = get_model(config_wf, data, store=tmp_path / "store", progress=False)
    assert not reused and [f.score_start for f in model.folds] == [
        pd.Timestamp("2020-01-01"),
        pd.Timestamp("2021-01-01"),
    ]
    for fold in model.folds:
        mine = papertrade.load_model(path / folds[fold.number]["dir"])
        assert mine.config.split == fold.split and folds[fold.number]["fingerprint"] == fold.model.fingerprint()
        for k, v in fold.model.net_.state_dict().items():
            assert np.array_equal(v.numpy(), mine.net_.state_dict()[k].numpy()), (fold.number, k)
    listed, n_fills = None, 0
    for i, day in enumerate(REFIT_STEPS):
        book, orders = books[day]
        ref = walk_forward_backtest(config, data, model, day)
        assert book["date"] == day and ref.book_state()["date"] == day
        assert abs(book["cash"] - ref.broker.getcash()) <= 1e-9 and abs(book["value"] - ref.broker.getvalue()) <= 1e-9
        held = {d._name: ref.getposition(d).size for d in ref.stocks if ref.getposition(d).size}
        assert {t: p["shares"] for t, p in book["positions"].items()} == held
        assert order_decisions(orders) == reference_decisions(ref)
        consecutive = i > 0 and len(data.benchmark.loc[REFIT_STEPS[i - 1] : day]) == 2
        if consecutive:  # yesterday's listed orders are what the backtest placed at today's open
            placed = [o[1:6] for o in ref.analyzers.submitted.orders if o[0] == day]
            assert placed == listed
            n_fills += len(placed)
        listed = order_decisions(orders)
    assert n_fills >= 2 and any(book["positions"] for book, _ in books.values())
    # the last replay's scores are the walk-forward model's, and from 2021 on they are fold 1's, not fold 0's
    end = pd.Timestamp(REFIT_STEPS[-1])
    want = model.predict(data.prices.between(None, end), data.benchmark.loc[:end], start=REFIT_START)
    got = result.replay.batched.loc[REFIT_START:]
    np.testing.assert_array_equal(got.to_numpy(), want.loc[REFIT_START:end].to_numpy())
    old = model.folds[0].model.predict(data.prices.between(None, end), data.benchmark.loc[:end]).loc["2021-01-01":end]
    assert np.abs(got.loc["2021-01-01":].to_numpy() - old.to_numpy()).min() > 1e-6
    out = papertrade.status_text(root, "wf")
    assert f"folds 0 (refit 2020-01-01, sha256 {folds[0]['sha256'][:16]}), 1 (refit 2021-01-01" in out
    assert "the next is trained on the first step on or after 2022-01-01" in out
    # a rebase plans the folds again and trains the one that scores the new start (fold 1, again)
    result = papertrade.step(root, "wf", rebase=True, sell_all=True, tearsheet=False)
    account = json.loads((path / "current" / "account.json").read_text())
    assert account["generation"] == 2 and [(f["number"], f["generation"]) for f in account["folds"]] == [(1, 2)]
    assert any(m.startswith("refit: fold 1 (refit 2021-01-01)") for m in result.messages)
    last = papertrade.read_csv_rows(path / "journal.csv")[-1]
    assert last["generation"] == "2" and last["model_sha256"] == account["folds"][0]["sha256"]
    print(
        f"refit equivalence: {len(journal)} days {REFIT_START}..{REFIT_STEPS[-1]} in {len(REFIT_STEPS)} steps; "
        f"refit date 2021-01-01 (trained on the step of 2021-01-04); fold 1 sha256 {folds[1]['sha256']}, "
        f"fingerprint {folds[1]['fingerprint']} (= the backtest fold's)"
    )
