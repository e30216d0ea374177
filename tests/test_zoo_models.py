"""The one model interface and the zoo on a tiny synthetic panel: eval mode, fit / predict /
save / load for every model (no pickle, same scores after loading), each learner checked against
an independent computation, walk-forward and the indicator with a non-LSTM model."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from feeds import ArtifactError, ConfigError
from feeds.synthetic import make_synthetic_universe
from models import (
    MODEL_NAMES,
    AlphaIndicator,
    AlphaModel,
    AlphaModelLike,
    LogisticModel,
    ModelConfig,
    Split,
    load_any,
    make_model,
)
from models.baselines import AlphaMLP, cell_noise
from models.train import net_output
from models.walkforward import WalkForwardModel

SPLIT = Split("2015-01-01", "2016-06-30", "2016-07-01", "2017-03-31", "2017-04-01", "2018-12-31")
CONFIG = ModelConfig(
    hidden=8,
    epochs=2,
    patience=1,
    stride=3,
    seq_len=10,
    split=SPLIT,
    threads=1,
    seed=2,
    features=("log_ret_1", "log_ret_5", "rsi14", "sma60_gap", "bench_vol"),
)


@pytest.fixture(scope="module")
def panel():
    return make_synthetic_universe(n_tickers=12, n_days=900, start="2015-01-01", ohlcv=False, seed=1)


@pytest.fixture(scope="module")
def fitted(panel):
    prices, bench = panel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: make_model(name, CONFIG).fit(prices, bench, progress=False) for name in MODEL_NAMES}


# ---------------------------------------------------------------------- eval mode (dropout off)
def test_scoring_runs_in_eval_mode_whatever_mode_the_network_is_in():
    torch.manual_seed(0)
    net = AlphaMLP(40, hidden=64, dropout=0.5)
    net.train()
    x = np.random.default_rng(0).normal(size=(256, 4, 10)).astype(np.float32)
    a, b = net_output(net, x), net_output(net, x)
    np.testing.assert_array_equal(a, b)  # dropout on would make these differ
    net.eval()
    with torch.inference_mode():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(a, want)
    # and the mode is given back, so a training loop keeps training with dropout
    net.train()
    net_output(net, x)
    assert net.training


def test_recorded_validation_loss_is_the_eval_mode_loss_of_the_kept_weights(panel):
    """With dropout 0.5 a training-mode validation loss differs from the eval-mode one by ~1e-3:
    the loss recorded for the best epoch must be the eval-mode loss of the weights kept."""
    prices, bench = panel
    model = AlphaModel(CONFIG.replace(dropout=0.5, hidden=16, epochs=3, patience=3)).fit(prices, bench, progress=False)
    prep = model._prepare(prices, bench)
    raw = torch.from_numpy(model.raw_output(prep.index, prep.ends("valid")).astype(np.float32))
    y = torch.from_numpy(prep.labels("valid").astype(np.float32))
    eval_loss = float(torch.nn.BCEWithLogitsLoss()(raw, y))
    recorded = model.report_.history[model.report_.best_epoch - 1]["valid_loss"]
    assert recorded == pytest.approx(eval_loss, abs=1e-7)
    # the same weights in training mode give another loss: the test can tell the two apart
    model.net_.train()
    x = torch.from_numpy(model._inputs(prep.index, prep.ends("valid")))
    with torch.no_grad():
        train_mode = float(torch.nn.BCEWithLogitsLoss()(model.net_(x), y))
    assert abs(train_mode - eval_loss) > 1e-5


# ---------------------------------------------------------------------- the interface, every model
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_fits_predicts_and_round_trips_without_pickle(name, fitted, panel, tmp_path):
    prices, bench = panel
    model = fitted[name]
    assert isinstance(model, AlphaModelLike) and model.NAME == name
    scores = model.predict(prices, bench)
    values = scores.to_numpy()[np.isfinite(scores.to_numpy())]
    assert len(values) > 5000 and values.min() >= -1 and values.max() <= 1
    assert values.std() > 0
    # the first score of a stock comes after the warm-up
    first = scores["SYN0001"].first_valid_index()
    assert prices.close["SYN0001"].loc[:first].notna().sum() == model.warmup + 1
    path = model.save(tmp_path / name)
    meta = json.loads((path / "model.json").read_text())
    assert meta["model"] == name and set(meta["files"]) == {p.name for p in path.iterdir()} - {"model.json"}
    for file in path.iterdir():  # no pickle stream outside torch's weights_only zip
        data = file.read_bytes()
        assert not data.startswith(b"\x80"), file
        if file.suffix == ".pt":
            torch.load(file, weights_only=True)
    loaded = load_any(path)
    assert type(loaded) is type(model)
    pd.testing.assert_frame_equal(loaded.predict(prices, bench), scores)
    assert loaded.fingerprint() == model.fingerprint()
    one = loaded.predict(prices, bench, last_only=True)
    np.testing.assert_allclose(one.iloc[-1].to_numpy(), scores.iloc[-1].to_numpy(), atol=1e-7)


def test_a_damaged_state_file_is_refused_and_the_wrong_class_named(fitted, tmp_path):
    path = fitted["lightgbm"].save(tmp_path / "gbm")
    text = (path / "booster.txt").read_text()
    (path / "booster.txt").write_text(text.replace("Tree=0", "Tree=0 ", 1))
    with pytest.raises(ArtifactError, match="checksum"):
        load_any(path)
    path = fitted["logistic"].save(tmp_path / "logit")
    with pytest.raises(ArtifactError, match="LogisticModel"):
        AlphaModel.load(path)


def test_unknown_model_and_unsupported_label_are_clear_errors():
    with pytest.raises(ConfigError, match="choose one of"):
        make_model("xgboost", CONFIG)
    with pytest.raises(ConfigError, match="label"):
        LogisticModel(CONFIG.replace(label="regression"))


# ---------------------------------------------------------------------- each learner, independently
def _train_xy(model, panel, name="train"):
    prep = model._prepare(*panel)
    return prep, model._inputs(prep.index, prep.ends(name)), prep.labels(name)


def test_logistic_scores_are_sklearns_probabilities(fitted, panel):
    from sklearn.linear_model import LogisticRegression

    model = fitted["logistic"]
    prep, x, y = _train_xy(model, panel)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(x.astype(np.float64), y.astype(int))
    xt = model._inputs(prep.index, prep.index.ends[:500])
    want = 2 * clf.predict_proba(xt.astype(np.float64))[:, 1] - 1
    np.testing.assert_allclose(model.scores_for(prep.index, prep.index.ends[:500]), want, atol=1e-9)


def test_lightgbm_scores_are_the_saved_boosters_probabilities(fitted, panel, tmp_path):
    import lightgbm as lgb

    model = fitted["lightgbm"]
    booster = lgb.Booster(model_file=str(model.save(tmp_path / "g") / "booster.txt"))
    prep = model._prepare(*panel)
    ends = prep.index.ends[:500]
    want = 2 * booster.predict(model._inputs(prep.index, ends)) - 1
    np.testing.assert_allclose(model.scores_for(prep.index, ends), want, atol=1e-9)
    assert 1 <= model.report_.best_epoch <= model.params["n_estimators"]


def test_momentum_picks_the_best_validation_feature_by_brute_force(fitted, panel):
    from scipy.stats import spearmanr

    from models import labels as L
    from models.dataset import lookup

    model = fitted["momentum"]
    prices, bench = panel
    prep = model._prepare(prices, bench)
    ends = prep.ends("valid")
    fwd = lookup(L.forward_excess_returns(prices, bench, CONFIG.horizon), prep.index, ends)
    dates = prep.index.row_dates[ends]
    ic = {}
    warnings.simplefilter("ignore")  # bench_vol is the same for every stock: no cross-sectional IC
    for f, name in enumerate(prep.features):
        per_day = [
            spearmanr(prep.index.rows[ends][dates == d, f], fwd[dates == d])[0]
            for d in np.unique(dates)
            if (dates == d).sum() >= 3
        ]
        ic[name] = np.nanmean(per_day)
    best = max(ic, key=lambda n: abs(ic[n]))
    assert model.feature_ == best and model.sign_ == np.sign(ic[best])
    assert model.report_.extra["valid_rank_ic"][best] == pytest.approx(ic[best], abs=1e-9)
    # the score is monotone in sign * feature
    prep_ends = prep.index.ends[:300]
    z = model._inputs(prep.index, prep_ends)[:, prep.features.index(best)]
    np.testing.assert_allclose(model.scores_for(prep.index, prep_ends), np.tanh(model.sign_ * z), atol=1e-12)


def test_momentum_choice_ignores_the_test_period(panel):
    prices, bench = panel
    close = prices.close.copy()
    close.loc[close.index >= pd.Timestamp(SPLIT.test_start)] *= 1.7
    from feeds import PricePanel

    other = make_model("momentum", CONFIG).fit(PricePanel({"close": close}, {"close"}), bench, progress=False)
    a = make_model("momentum", CONFIG).fit(prices, bench, progress=False)
    assert (a.feature_, a.sign_) == (other.feature_, other.sign_)


def test_random_is_seeded_noise_that_does_not_depend_on_the_panel(fitted, panel):
    prices, bench = panel
    scores = fitted["random"].predict(prices, bench)
    sub = fitted["random"].predict(prices.select(["SYN0003", "SYN0007"]), bench)
    pd.testing.assert_frame_equal(sub, scores[["SYN0003", "SYN0007"]])
    values = scores.to_numpy()[np.isfinite(scores.to_numpy())]
    assert abs(values.mean()) < 0.02 and abs(np.mean(values > 0) - 0.5) < 0.01
    other = make_model("random", CONFIG.replace(seed=3)).fit(prices, bench, progress=False).predict(prices, bench)
    assert np.corrcoef(values, other.to_numpy()[np.isfinite(other.to_numpy())])[0, 1] < 0.05
    noise = cell_noise(0, ["A"] * 10_000, pd.date_range("2000-01-01", periods=10_000))
    assert noise.min() >= -1 and noise.max() < 1 and abs(noise.mean()) < 0.03


def test_deterministic_models_do_not_depend_on_the_seed(panel, fitted):
    prices, bench = panel
    for name in ("logistic", "momentum"):
        again = make_model(name, CONFIG.replace(seed=9)).fit(prices, bench, progress=False)
        pd.testing.assert_frame_equal(again.predict(prices, bench), fitted[name].predict(prices, bench))
        assert not type(again).SEED_DEPENDENT


# ---------------------------------------------------------------------- walk-forward and the indicator
def test_walk_forward_with_a_non_lstm_model(panel, tmp_path):
    prices, bench = panel
    wf = WalkForwardModel(
        CONFIG, first_test="2017-07-01", last_test="2018-06-30", refit_every_months=6, valid_years=1, model="logistic"
    ).fit(prices, bench, progress=False)
    assert all(isinstance(f.model, LogisticModel) for f in wf.folds) and len(wf.folds) == 2
    scores = wf.predict(prices, bench)
    for fold, nxt in zip(wf.folds, wf.folds[1:] + [None]):
        own = fold.model.predict(prices, bench)  # the fold alone, the independent reference
        last = None if nxt is None else pd.Timestamp(nxt.split.test_start) - pd.Timedelta(days=1)
        span = slice(fold.split.test_start, last)
        np.testing.assert_allclose(scores.loc[span].to_numpy(), own.loc[span].to_numpy(), atol=1e-12)
        assert pd.Timestamp(fold.windows["last_label_date"]) < pd.Timestamp(fold.split.test_start)
    assert scores.loc[:"2017-06-30"].isna().all().all()
    loaded = load_any(wf.save(tmp_path / "wf"))
    assert loaded.model_name == "logistic"
    pd.testing.assert_frame_equal(loaded.predict(prices, bench), scores)


def test_alpha_indicator_in_cerebro_equals_predict_for_a_non_lstm_model(fitted, panel):
    import backtrader as bt

    from feeds import ArrayData
    from models.indicator import bt_dates

    prices, bench = panel
    model = fitted["lightgbm"]
    start = "2017-04-03"
    cerebro = bt.Cerebro(stdstats=False)
    spx = cerebro.adddata(ArrayData(dataname=bench.loc[start:]), name="BENCH")
    for t in ["SYN0001", "SYN0005", "SYN0009"]:
        cerebro.adddata(ArrayData(dataname=prices.frame(t).loc[start:]), name=t)
    before = pd.Timestamp(start) - pd.Timedelta(days=1)
    make = AlphaIndicator.factory(
        model, benchmark=spx, history=prices.between(None, before), history_benchmark=bench.loc[:before]
    )

    class Record(bt.Strategy):
        def __init__(self):
            self.alphas = {d._name: make(d) for d in self.datas[1:]}
            self.rows = []

        def next(self):
            for t, a in self.alphas.items():
                self.rows.append((bt_dates([a.data.datetime[0]])[0], t, a.score[0]))

    cerebro.addstrategy(Record)
    rows = cerebro.run()[0].rows
    got = pd.DataFrame(rows, columns=["date", "t", "s"]).pivot(index="date", columns="t", values="s")
    want = model.predict(prices, bench).loc[got.index, got.columns]
    assert len(got) > 300
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=1e-9)
    assert AlphaIndicator.plotinfo.plotname == "alpha"


def test_artifact_key_carries_the_model_kind(panel, tmp_path):
    from configs import load_config
    from jobs.market import MarketData
    from jobs.store import artifact_dir, model_config

    prices, bench = panel
    data = MarketData(prices, bench)
    config = load_config("default")
    other = load_config("default", overrides={"model": {"kind": "lightgbm"}})
    a = artifact_dir(config, model_config(config), data, tmp_path)
    b = artifact_dir(other, model_config(other), data, tmp_path)
    assert a != b and "-lstm-" in a.name and "-lightgbm-" in b.name


def test_the_command_line_lists_the_zoo():
    import run_backtest

    assert run_backtest.MODEL_NAMES == MODEL_NAMES


def test_the_lstm_keeps_its_indicator_and_every_other_model_gets_the_general_one(fitted):
    from jobs.engines import indicator_class
    from models import LSTMAlpha

    assert indicator_class(fitted["lstm"]) is LSTMAlpha
    assert LSTMAlpha.plotinfo.plotname == "LSTM alpha" and issubclass(LSTMAlpha, AlphaIndicator)
    for name in ("logistic", "lightgbm", "mlp", "momentum", "random"):
        assert indicator_class(fitted[name]) is AlphaIndicator
    assert (
        indicator_class(
            WalkForwardModel(CONFIG, first_test="2017-07-01", last_test="2018-06-30", valid_years=1, model="logistic")
        )
        is AlphaIndicator
    )


def test_an_lstm_artifact_written_before_the_zoo_still_loads(fitted, panel, tmp_path):
    """Format v1 (LSTM only): weights_sha256 instead of the files table, no model name."""
    prices, bench = panel
    path = fitted["lstm"].save(tmp_path / "old")
    meta = json.loads((path / "model.json").read_text())
    meta.update(format_version=1, weights_sha256=meta.pop("files")["weights.pt"])
    del meta["model"]
    (path / "model.json").write_text(json.dumps(meta))
    pd.testing.assert_frame_equal(AlphaModel.load(path).predict(prices, bench), fitted["lstm"].predict(prices, bench))
    meta["weights_sha256"] = "0" * 64
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="checksum"):
        AlphaModel.load(path)
