"""LSTMAlpha in Cerebro: runonce (batched) == next (one window a bar) == model.predict(panel)."""

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from feeds import ConfigError, PricePanel
from models import LSTMAlpha
from models.indicator import bt_dates


def _bench_frame(bench):
    return pd.DataFrame({"open": bench, "high": bench, "low": bench, "close": bench, "volume": 0.0})


def run_scores(model, panel, bench, start, end, runonce, history=True):
    """Score every ticker of `panel` in a Cerebro fed from `start`; returns date x ticker."""
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    spx = cerebro.adddata(bt.feeds.PandasData(dataname=_bench_frame(bench.loc[start:end])), name="SP500")
    for ticker, frame in panel.items():
        frame = frame.loc[start:end]
        if len(frame):
            cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=ticker)
    before = pd.Timestamp(start) - pd.Timedelta(days=1)
    make = LSTMAlpha.factory(
        model,
        benchmark=spx,
        history=panel.between(None, before) if history else None,
        history_benchmark=bench.loc[:before] if history else None,
    )

    class Record(bt.Strategy):
        def __init__(self):
            self.alphas = {d._name: make(d) for d in self.datas[1:]}
            self.rows = []

        def prenext(self):
            self.next()

        def next(self):
            for ticker, alpha in self.alphas.items():
                if (
                    len(alpha.data)
                    and bt_dates([alpha.data.datetime[0]])[0] == bt_dates([self.datas[0].datetime[0]])[0]
                ):
                    self.rows.append((bt_dates([alpha.data.datetime[0]])[0], ticker, alpha.score[0]))

    cerebro.addstrategy(Record)
    strat = cerebro.run()[0]
    out = pd.DataFrame(strat.rows, columns=["date", "ticker", "score"]).pivot(
        index="date", columns="ticker", values="score"
    )
    return out, make.scorer


def test_runonce_equals_predict_on_embedded(embedded, tiny_model, tiny_scores):
    prices, bench = embedded
    panel = prices.select(["AAPL", "XOM", "JPM", "KO"])
    got, scorer = run_scores(tiny_model, panel, bench, "2020-01-02", "2022-12-28", runonce=True)
    want = tiny_scores.loc[got.index, got.columns]  # tiny_model.predict(prices, bench)
    assert got.notna().all().all() and len(got) > 700
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=1e-6, rtol=0)


def test_next_mode_equals_runonce_on_embedded(embedded, tiny_model):
    """Six weeks: next() scores each bar from the last warmup + EWM_MARGIN_BARS bars delivered, the
    same code on every bar (history included) until that many bars have come, months away."""
    prices, bench = embedded
    panel = prices.select(["AAPL", "XOM"])
    fast, _ = run_scores(tiny_model, panel, bench, "2022-11-14", "2022-12-28", runonce=True)
    slow, _ = run_scores(tiny_model, panel, bench, "2022-11-14", "2022-12-28", runonce=False)
    assert fast.shape == slow.shape and fast.notna().all().all() and len(fast) >= 30
    np.testing.assert_allclose(fast.to_numpy(), slow.to_numpy(), atol=1e-6, rtol=0)


def _ragged_universe(prices):
    """One stock starts two years late, another misses 5 % of its days at random."""
    close = prices.close.loc["2015":, ["AAPL", "XOM", "JPM", "KO"]].copy()
    close.loc[:"2020-06-30", "JPM"] = np.nan
    rng = np.random.default_rng(7)
    holes = rng.random(len(close)) < 0.05
    close.loc[holes, "XOM"] = np.nan
    return PricePanel({"close": close}, available={"close"}, name="ragged")


@pytest.mark.slow
@pytest.mark.parametrize("runonce", [True, False])
def test_late_start_and_missing_days_align_by_date(embedded, tiny_model, runonce):
    prices, bench = embedded
    ragged = _ragged_universe(prices)
    # next mode scores one window a bar in Python: four months (> 50 bars of each stock) are enough
    start = "2022-09-01" if not runonce else "2020-01-02"
    got, _ = run_scores(tiny_model, ragged, bench, start, "2022-12-28", runonce=runonce)
    want = tiny_model.predict(ragged, bench).loc[got.index, got.columns]
    # the late starter has no score until its warm-up is over, then the same as offline
    both = got.notna() & want.notna()
    assert (got.notna() == want.notna()).all().all()
    assert both["JPM"].sum() > 50 and both["XOM"].sum() > 50
    np.testing.assert_allclose(got[both].to_numpy()[both.to_numpy()], want[both].to_numpy()[both.to_numpy()], atol=1e-6)
    # XOM's missing days are not scored (it has no bar), and do not stall the others
    missing = ragged.close["XOM"].isna().reindex(got.index).fillna(False).to_numpy().astype(bool)
    assert got["XOM"].to_numpy()[missing].size == 0 or np.isnan(got["XOM"].to_numpy()[missing]).all()
    assert got["AAPL"].notna().all()


def test_batched_scorer_runs_the_model_once(embedded, tiny_model, monkeypatch):
    prices, bench = embedded
    calls = []
    real = type(tiny_model).predict
    monkeypatch.setattr(type(tiny_model), "predict", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    run_scores(tiny_model, prices.select(["AAPL", "XOM", "KO"]), bench, "2022-01-03", "2022-12-28", runonce=True)
    assert len(calls) == 1


def test_model_needing_benchmark_without_one_is_a_clear_error(embedded, tiny_model):
    prices, bench = embedded
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=prices.frame("AAPL").loc["2022"]), name="AAPL")

    class S(bt.Strategy):
        def __init__(self):
            LSTMAlpha(self.data, model=tiny_model)

    cerebro.addstrategy(S)
    with pytest.raises(ConfigError, match="benchmark"):
        cerebro.run()
