"""Score cache: computed once, equal to model.predict, never stale, and trading on cached scores
(ScoreAlpha) is exactly trading on the LSTM indicator."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY

from feeds.panel import FIELDS, PricePanel
from models.score_cache import ScoreCache, cached_scores, model_fingerprint, score_key

PERIOD = {"backtest": {"start": "2021-01-01", "end": "2022-12-31"}}


def _assert_same_scores(a: pd.DataFrame, b: pd.DataFrame):
    assert list(a.columns) == list(b.columns)
    assert (a.index == b.index).all()
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())  # NaN == NaN here, values bit for bit


def _changed_price(prices: PricePanel, ticker: str, date, factor: float) -> PricePanel:
    frames = {f: prices[f].copy() for f in FIELDS}
    for f in ("open", "high", "low", "close"):
        frames[f].loc[pd.Timestamp(date), ticker] *= factor
    return PricePanel(frames, available=prices.available, name=prices.name)


@pytest.fixture(scope="module")
def cache_and_scores(tiny_model, embedded, tmp_path_factory):
    prices, bench = embedded
    root = tmp_path_factory.mktemp("scores")
    first, hit_first = cached_scores(tiny_model, prices, bench, cache_dir=root)
    return root, first, hit_first


def test_first_call_computes_second_reads_and_both_equal_predict(
    tiny_model, tiny_scores, embedded, cache_and_scores, monkeypatch
):
    prices, bench = embedded
    root, first, hit_first = cache_and_scores
    assert hit_first is False
    files = sorted(p.name for p in root.iterdir())
    assert files == [f"{score_key(tiny_model, prices, bench)}.parquet"]  # one entry, no temp leftovers
    # a hit must not run the model: make predict explode and read again
    monkeypatch.setattr(type(tiny_model), "predict", lambda *a, **k: pytest.fail("cache hit ran the model"))
    second, hit_second = cached_scores(tiny_model, prices, bench, cache_dir=root)
    assert hit_second is True
    monkeypatch.undo()
    expected = tiny_scores  # tiny_model.predict(prices, bench), computed outside the cache
    _assert_same_scores(first, expected)
    _assert_same_scores(second, expected)
    assert np.isfinite(expected.loc["2021"].to_numpy()).mean() > 0.9  # real scores, not an empty frame


def test_a_model_with_another_seed_never_reads_the_old_entry(tiny_model, embedded, cache_and_scores):
    from models import AlphaModel, ModelConfig

    prices, bench = embedded
    root, first, _ = cache_and_scores
    other = AlphaModel(ModelConfig(**{**TINY, "seed": TINY["seed"] + 1})).fit(prices, bench, progress=False)
    assert model_fingerprint(other) != model_fingerprint(tiny_model)
    scores, hit = cached_scores(other, prices, bench, cache_dir=root)
    assert hit is False
    _assert_same_scores(scores, other.predict(prices, bench))
    assert not np.allclose(np.nan_to_num(scores.to_numpy()), np.nan_to_num(first.to_numpy()))


def test_one_changed_weight_is_a_different_model(tiny_model):
    nudged = copy.deepcopy(tiny_model)
    with torch.no_grad():
        next(nudged.net_.parameters()).view(-1)[0] += 1e-6
    assert model_fingerprint(nudged) != model_fingerprint(tiny_model)


def test_one_changed_price_or_benchmark_day_never_reads_the_old_entry(tiny_model, embedded, cache_and_scores):
    prices, bench = embedded
    root, first, _ = cache_and_scores
    ticker = prices.tickers[0]
    changed = _changed_price(prices, ticker, "2022-06-01", 1.01)
    assert score_key(tiny_model, changed, bench) != score_key(tiny_model, prices, bench)
    scores, hit = cached_scores(tiny_model, changed, bench, cache_dir=root)
    assert hit is False
    _assert_same_scores(scores, tiny_model.predict(changed, bench))
    # the change shows in that stock's scores from that day on (not before: no look-ahead)
    col = list(first.columns).index(ticker)
    before = scores.loc[:"2022-05-31"].iloc[:, col]
    np.testing.assert_array_equal(before.to_numpy(), first.loc[:"2022-05-31"].iloc[:, col].to_numpy())
    assert scores.loc["2022-06-01", ticker] != first.loc["2022-06-01", ticker]

    bench2 = bench.copy()
    bench2.loc[pd.Timestamp("2022-06-01")] *= 1.01
    assert score_key(tiny_model, prices, bench2) != score_key(tiny_model, prices, bench)


def test_a_damaged_entry_is_an_error_that_names_the_file(tiny_model, embedded, tmp_path):
    from core.errors import ArtifactError

    prices, bench = embedded
    cache = ScoreCache(tmp_path)
    key = score_key(tiny_model, prices, bench)
    cache.path(key).write_bytes(b"not parquet")
    with pytest.raises(ArtifactError, match=key):
        cache.get_or_compute(tiny_model, prices, bench)


@pytest.mark.slow
def test_cached_scores_in_cerebro_trade_exactly_like_the_lstm_indicator(tiny_model, embedded, tmp_path):
    """ScoreAlpha fed from the cache gives LSTMAlpha's score line on every bar of every stock, and
    jobs.backtest.run on cached scores gives the LSTM run's trades and metrics, to the last digit."""
    from configs import load_config
    from jobs.backtest import run
    from jobs.engines import build_cerebro, lstm_alpha, period_scores, score_alpha, strategy_params
    from jobs.market import MarketData
    from jobs.periods import backtest_period

    prices, bench = embedded
    config = load_config("default", None, PERIOD)
    data = MarketData(prices, bench)
    start, end = backtest_period(config, data)
    scores, hit = period_scores(tiny_model, data, start, end, cache_dir=tmp_path / "cache")
    assert hit is False
    assert period_scores(tiny_model, data, start, end, cache_dir=tmp_path / "cache")[1] is True
    params = strategy_params(config)

    lines = {}
    for label, alpha_for in (
        ("lstm", lstm_alpha(tiny_model, data, start)),
        ("cached", score_alpha(scores)),
    ):
        cerebro = build_cerebro(data, start, end, alpha_for, params, 100_000.0, 0.0005)
        strategy = cerebro.run()[0]
        lines[label] = {t: np.asarray(ind.lines.score.array) for t, ind in strategy.alphas.items()}
    assert lines["lstm"].keys() == lines["cached"].keys() and len(lines["lstm"]) == len(prices.tickers)
    for ticker in lines["lstm"]:
        np.testing.assert_array_equal(lines["cached"][ticker], lines["lstm"][ticker], err_msg=ticker)
        assert np.isfinite(lines["lstm"][ticker]).all()  # warmed up by history: a score on every bar

    lstm = run(config, tmp_path / "lstm", progress=False, data=data, model=tiny_model)
    cached = run(config, tmp_path / "cached", scores=scores, progress=False, data=data)
    assert len(lstm.trades) > 20
    pd.testing.assert_frame_equal(cached.trades, lstm.trades)
    assert cached.metrics == lstm.metrics
    assert (tmp_path / "cached" / "equity.csv").read_text() == (tmp_path / "lstm" / "equity.csv").read_text()


def test_a_walk_forward_bundle_is_keyed_by_its_plan_and_every_fold(tiny_model):
    from types import SimpleNamespace

    def bundle(splits, params):
        return SimpleNamespace(
            _check_fitted=lambda: None,
            params=params,
            folds=[SimpleNamespace(split=s, model=tiny_model) for s in splits],
        )

    base = model_fingerprint(bundle(["2017", "2018"], {"window": "expanding"}))
    assert base == model_fingerprint(bundle(["2017", "2018"], {"window": "expanding"}))
    assert base != model_fingerprint(bundle(["2017", "2019"], {"window": "expanding"}))
    assert base != model_fingerprint(bundle(["2017", "2018"], {"window": "rolling"}))
    assert base != model_fingerprint(tiny_model)
