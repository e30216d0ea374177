"""The research core: leak-free splits, the scaler's window, determinism, look-ahead, artifact."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from feeds import ArtifactError, ConfigError, PricePanel
from models import AlphaModel, ModelConfig, Split
from models import labels as L
from models.dataset import Scaler, build_windows, lookup, split_samples
from tests.conftest import TINY


def _windows_and_samples(prices, bench, cfg):
    model = AlphaModel(cfg)
    index = model._windows(prices, bench, list(model.config.features))
    labels = L.make_labels(prices, bench, cfg.horizon, cfg.label)
    ends = L.label_end_dates(prices, cfg.horizon)
    samples, _ = split_samples(index, labels, ends, cfg.split, cfg.stride)
    return index, samples, ends


def test_no_train_or_valid_label_reaches_a_later_period(embedded):
    prices, bench = embedded
    cfg = ModelConfig(stride=1)
    index, samples, label_ends = _windows_and_samples(prices, bench, cfg)
    end_of = {"train": pd.Timestamp(cfg.split.train_end), "valid": pd.Timestamp(cfg.split.valid_end)}
    for name, boundary in end_of.items():
        horizon_end = pd.to_datetime(lookup(label_ends, index, index.ends[samples[name]]))
        assert len(horizon_end) > 1000
        assert horizon_end.max() <= boundary, name
        # purge really removed samples: the last days before the boundary are missing
        sample_dates = pd.to_datetime(index.sample_dates()[samples[name]])
        assert (boundary - sample_dates.max()).days >= 10
    test_dates = pd.to_datetime(index.sample_dates()[samples["test"]])
    assert test_dates.min() >= pd.Timestamp(cfg.split.test_start)


def test_scaler_sees_only_training_rows():
    rows = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    dates = pd.date_range("2000-01-01", periods=10).values
    scaler = Scaler.fit(rows, dates, "2000-01-01", "2000-01-05")
    assert scaler.center.tolist() == [2.0, 2.0]  # median of 0..4, not of 0..9
    assert scaler.fitted_on == ("2000-01-01", "2000-01-05")


def test_nothing_fitted_sees_the_test_period(embedded, tiny_model):
    """Fit twice, the second time with every test-period price scrambled: same weights. The first
    fit is the session's tiny_model (this very config on this very data)."""
    prices, bench = embedded
    cfg = ModelConfig(**TINY)
    rng = np.random.default_rng(0)
    test_rows = prices.dates >= pd.Timestamp(cfg.split.test_start)
    scrambled = prices.close.copy()
    scrambled.loc[test_rows] *= rng.uniform(0.5, 1.5, size=scrambled.loc[test_rows].shape)
    bench2 = bench.copy()
    bench2.loc[bench2.index >= pd.Timestamp(cfg.split.test_start)] *= 1.3
    other = PricePanel({"close": scrambled}, available={"close"})
    a = tiny_model
    assert a.config.replace(features=cfg.features) == cfg  # the same fit (its config names the default features)
    b = AlphaModel(cfg).fit(other, bench2, progress=False)
    for (k, va), vb in zip(a.net_.state_dict().items(), b.net_.state_dict().values()):
        assert torch.equal(va, vb), k
    assert np.array_equal(a.scaler_.center, b.scaler_.center)
    assert a.report_.windows["last_label_date"] <= cfg.split.valid_end


def test_same_seed_bit_identical_predictions(embedded, tiny_scores):
    prices, bench = embedded
    again = AlphaModel(ModelConfig(**TINY)).fit(prices, bench, progress=False)
    p1 = tiny_scores  # tiny_model.predict(prices, bench)
    p2 = again.predict(prices, bench)
    assert p1.notna().sum().sum() > 100_000
    assert p1.equals(p2)


def test_a_score_does_not_change_when_future_prices_change(embedded, tiny_model, tiny_scores):
    prices, bench = embedded
    T = pd.Timestamp("2019-06-28")
    future = prices.dates > T
    close = prices.close.copy()
    close.loc[future] *= np.random.default_rng(1).uniform(0.7, 1.3, size=close.loc[future].shape)
    bench2 = bench.copy()
    bench2.loc[bench2.index > T] *= 0.8
    changed = tiny_model.predict(PricePanel({"close": close}, available={"close"}), bench2)
    before = tiny_scores.loc[:T]  # tiny_model.predict(prices, bench)
    after = changed.loc[:T]
    assert before.notna().sum().sum() > 50_000
    pd.testing.assert_frame_equal(before, after)
    # and the future scores did change, so the test can fail
    assert not tiny_scores.loc[T:].iloc[1:].equals(changed.loc[T:].iloc[1:])


def test_scores_are_2p_minus_1_and_p_sits_near_half(tiny_scores):
    s = tiny_scores.to_numpy()  # tiny_model.predict(prices, bench)
    s = s[np.isfinite(s)]
    assert s.min() > -1 and s.max() < 1
    assert 0.3 < np.median((s + 1) / 2) < 0.7


def test_windows_skip_warmup_and_compact_holes():
    T, N, Fn = 12, 2, 1
    x = np.arange(T * N, dtype=np.float32).reshape(T, N, Fn)
    x[:3, 0] = np.nan  # warm-up of ticker 0
    traded = np.ones((T, N), bool)
    traded[5, 1] = False  # ticker 1 misses day 5
    idx = build_windows(x, traded, pd.date_range("2020-01-01", periods=T), ["A", "B"], seq_len=4)
    a_ends = idx.ends[idx.row_ticker[idx.ends] == 0]
    assert pd.Timestamp(idx.row_dates[a_ends[0]]) == pd.Timestamp(
        "2020-01-07"
    )  # rows 3..6: day 6 ends the first full window
    b_windows = idx.gather(idx.ends[idx.row_ticker[idx.ends] == 1])
    # the window of ticker 1 ending on day 7 spans its own days 3, 4, 6, 7 (day 5 is skipped)
    day7 = [w for w in b_windows if w[-1, 0] == x[7, 1, 0]][0]
    assert day7[:, 0].tolist() == [x[d, 1, 0] for d in (3, 4, 6, 7)]


def test_split_dates_out_of_order_is_an_error():
    with pytest.raises(ConfigError, match="valid_start"):
        Split(train_end="2014-01-01", valid_start="2013-01-01")


def test_bad_hyperparameter_names_the_parameter():
    with pytest.raises(ConfigError, match="hidden"):
        ModelConfig(hidden=0)
    with pytest.raises(ConfigError, match="no_such_feature"):
        AlphaModel(features=("no_such_feature",))


# ----------------------------------------------------------------------------- artifact
def test_artifact_round_trip(tmp_path, embedded, tiny_model, tiny_scores):
    prices, bench = embedded
    path = tiny_model.save(tmp_path / "m")
    meta = json.loads((path / "model.json").read_text())
    for key in (
        "features",
        "seq_len",
        "horizon",
        "label",
        "scaler",
        "fit_windows",
        "data_fingerprint",
        "versions",
        "threads",
    ):
        assert key in meta
    assert meta["fit_windows"]["scaler"][1] <= "2012-12-31"
    loaded = AlphaModel.load(path)
    assert loaded.predict(prices, bench).equals(tiny_scores)  # tiny_model.predict(prices, bench)


def test_damaged_artifacts_are_refused(tmp_path, tiny_model):
    path = tiny_model.save(tmp_path / "m")
    weights = path / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[-20] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        AlphaModel.load(path)
    path2 = tiny_model.save(tmp_path / "m2")
    (path2 / "model.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="damaged JSON"):
        AlphaModel.load(path2)
    with pytest.raises(ArtifactError, match="model.json: missing"):
        AlphaModel.load(tmp_path / "nowhere")


def test_interrupted_save_leaves_no_half_artifact(tmp_path, tiny_model, monkeypatch):
    target = tmp_path / "m"
    tiny_model.save(target)
    before = (target / "model.json").read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        tiny_model.save(target)
    assert (target / "model.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_model_whose_features_the_data_lacks(tmp_path, embedded):
    prices, bench = embedded
    close = prices.close[["AAPL", "XOM", "JPM"]]  # which columns a model needs: three stocks show it
    ohlc = PricePanel({"close": close, "open": close * 0.99, "high": close * 1.01, "low": close * 0.98})
    model = AlphaModel(ModelConfig(features=("k_upper", "rsi14"), **TINY)).fit(ohlc, bench, progress=False)
    assert model.features_ == ["k_upper", "rsi14"]
    with pytest.raises(ArtifactError, match="k_upper"):
        AlphaModel.load(model.save(tmp_path / "m")).predict(prices, bench)


def test_close_only_data_drops_ohlc_features_with_a_warning(embedded):
    prices, bench = embedded
    three = prices.select(["AAPL", "XOM", "JPM"])  # close only, as the whole panel: three stocks show it
    with pytest.warns(UserWarning, match="k_upper"):
        model = AlphaModel(ModelConfig(features=("k_upper", "rsi14", "sma60_gap"), **TINY)).fit(
            three, bench, progress=False
        )
    assert model.features_ == ["rsi14", "sma60_gap"]


# ----------------------------------------------------------------------------- importance
@pytest.mark.slow
def test_permutation_importance_uses_validation_only(embedded, tiny_model):
    from models.importance import permutation_importance, validation_windows

    prices, bench = embedded
    _, _, dates = validation_windows(tiny_model, prices, bench)
    split = tiny_model.config.split
    assert pd.Timestamp(dates.min()) >= pd.Timestamp(split.valid_start)
    assert pd.Timestamp(dates.max()) <= pd.Timestamp(split.valid_end)
    imp = permutation_importance(tiny_model, prices, bench, repeats=2)
    assert sorted(imp.feature) == sorted(tiny_model.features_)
    # scrambling the test period changes nothing
    close = prices.close.copy()
    test = close.index >= pd.Timestamp(split.test_start)
    close.loc[test] *= 1.5
    again = permutation_importance(tiny_model, PricePanel({"close": close}, {"close"}), bench, repeats=2)
    pd.testing.assert_frame_equal(imp, again)


def test_permutation_importance_finds_the_feature_the_model_uses(embedded, tiny_model):
    """Shuffling a feature whose weights are zeroed cannot change the loss; a used one does.
    Four stocks' validation windows (~4,000) are plenty: a zero weight gives exactly zero at any size."""
    from models.importance import permutation_importance

    prices, bench = embedded
    import copy

    model = copy.deepcopy(tiny_model)
    with torch.no_grad():
        model.net_.lstm.weight_ih_l0[:, 0] = 0.0  # the first feature no longer reaches the network
    four = prices.select(["AAPL", "XOM", "JPM", "KO"])
    imp = permutation_importance(model, four, bench, repeats=2).set_index("feature")
    assert imp["n_samples"].min() > 3000
    assert imp.loc[model.features_[0], "loss_increase"] == 0.0
    assert imp["loss_increase"].abs().max() > 0
