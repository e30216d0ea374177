"""Walk-forward retraining: fold plan, no fold scores a date it was fitted on, stitching, engines,
the saved bundle."""

import json

import numpy as np
import pandas as pd
import pytest

from feeds import ArtifactError, ConfigError
from models import AlphaModel, LSTMAlpha, ModelConfig, Split
from models.walkforward import WalkForwardModel, fold_due, fold_number, fold_split, load_any, plan_folds
from tests.conftest import TINY

# two yearly folds near the end of the data: each fit takes a few seconds
PLAN = dict(first_test="2020-01-01", last_test="2021-12-31", refit_every_months=12, valid_years=2)
CONFIG = ModelConfig(**TINY)


def _fit_on(prices):
    """10 of the 20 stocks, for a fit whose checks are only about dates (half the time)."""
    return prices.select(prices.tickers[:10])


@pytest.fixture(scope="module")
def walkforward(embedded):
    prices, bench = embedded
    return WalkForwardModel(CONFIG, **PLAN).fit(prices, bench, progress=False, workers=1)  # the serial reference


@pytest.fixture(scope="module")
def scores(walkforward, embedded):
    return walkforward.predict(*embedded)


@pytest.fixture(scope="module")
def direct(walkforward, embedded):
    """Each fold's own AlphaModel.predict over the whole data: the independent reference."""
    return [f.model.predict(*embedded) for f in walkforward.folds]


def _close(a, b, atol=1e-7):
    """Equal up to float32 rounding: a window scored in a different batch may differ in the last bit."""
    return np.allclose(a, b, rtol=0, atol=atol, equal_nan=True)


# ------------------------------------------------------------------ the plan
def test_expanding_and_rolling_train_starts_by_hand():
    cfg = CONFIG.replace(split=Split(train_start="1998-01-01"))
    expanding = WalkForwardModel(
        cfg, first_test="2017-01-01", last_test="2019-06-30", window="expanding", valid_years=3
    )
    rolling = WalkForwardModel(
        cfg, first_test="2017-01-01", last_test="2019-06-30", window="rolling", rolling_years=10, valid_years=3
    )
    refits = ["2017-01-01", "2018-01-01", "2019-01-01"]
    for model in (expanding, rolling):
        assert [f.split.test_start for f in model.folds] == refits
        assert [f.split.test_end for f in model.folds] == ["2017-12-31", "2018-12-31", "2019-06-30"]
        assert [f.split.valid_start for f in model.folds] == ["2014-01-01", "2015-01-01", "2016-01-01"]
        assert [f.split.valid_end for f in model.folds] == ["2016-12-31", "2017-12-31", "2018-12-31"]
        assert [f.split.train_end for f in model.folds] == ["2013-12-31", "2014-12-31", "2015-12-31"]
    assert [f.split.train_start for f in expanding.folds] == ["1998-01-01"] * 3
    # rolling: refit date - 3 valid years - 10 training years
    assert [f.split.train_start for f in rolling.folds] == ["2004-01-01", "2005-01-01", "2006-01-01"]
    # each fold is fitted with exactly its own split
    assert [rolling.fold_config(f).split for f in rolling.folds] == [f.split for f in rolling.folds]
    assert expanding.config.split.test_start == "2017-01-01" and expanding.config.split.test_end == "2019-06-30"


def test_quarterly_refits_and_bad_plans():
    splits = plan_folds("1996-01-01", "2020-01-31", "2020-12-31", refit_every_months=3, valid_years=1)
    assert [s.test_start for s in splits] == ["2020-01-31", "2020-04-30", "2020-07-31", "2020-10-31"]
    assert [s.test_end for s in splits] == ["2020-04-29", "2020-07-30", "2020-10-30", "2020-12-31"]
    with pytest.raises(ConfigError, match="window"):
        plan_folds("1996-01-01", "2017-01-01", "2018-01-01", window="sliding")
    with pytest.raises(ConfigError, match="refit_every_months"):
        plan_folds("1996-01-01", "2017-01-01", "2018-01-01", refit_every_months=0)
    with pytest.raises(ConfigError, match="train_start"):  # expanding start inside validation
        plan_folds("2015-06-01", "2017-01-01", "2018-01-01", valid_years=3)


def test_open_ended_plan_fold_numbers_splits_and_due_folds():
    """The paper account's view of a plan: which fold scores a day, each fold's Split (plan_folds'
    own, ending the day before the next refit) and which folds a step must train."""
    plan = dict(train_start="1998-01-01", first_test="2017-01-01", refit_every_months=12, valid_years=3)
    assert [fold_number("2017-01-01", 12, d) for d in ("2016-12-30", "2017-01-01", "2017-12-31", "2019-06-30")] == [
        -1,
        0,
        0,
        2,
    ]
    assert fold_number("2020-01-31", 3, "2020-04-29") == 0 and fold_number("2020-01-31", 3, "2020-04-30") == 1
    full = plan_folds("1998-01-01", "2017-01-01", "2021-12-31", 12, valid_years=3)
    assert [fold_split(plan, n) for n in range(5)] == full  # the last one too: it ends 2021-12-31 either way
    rolling = {**plan, "window": "rolling", "rolling_years": 5}
    assert fold_split(rolling, 2) == plan_folds("1998-01-01", "2017-01-01", "2019-12-31", 12, "rolling", 5, 3)[2]
    # start 2019-03-01: fold 2 scores it; by 2021-01-04 folds 3 and 4 are due too
    assert fold_due(plan, "2019-03-01", "2019-03-01", []) == [2]
    assert fold_due(plan, "2019-03-01", "2020-12-31", [2]) == [3]
    assert fold_due(plan, "2019-03-01", "2021-01-04", [2]) == [3, 4]
    assert fold_due(plan, "2019-03-01", "2021-01-04", [2, 3, 4]) == []
    with pytest.raises(ConfigError, match="first refit is 2017-01-01"):
        fold_due(plan, "2016-06-01", "2017-06-01", [])


def test_from_folds_holds_a_later_run_of_folds(walkforward, scores, embedded, tmp_path):
    """The second fold alone, as a paper account assembles it: it scores its own dates exactly as
    in the full model, nothing before, and check_unseen / save / load see fold number 1."""
    from models.selection import check_unseen, seen_until

    later = WalkForwardModel.from_folds(CONFIG, PLAN, {1: walkforward.folds[1].model})
    assert [f.number for f in later.folds] == [1] and later.folds[0].split == walkforward.folds[1].split
    d1 = walkforward.folds[1].score_start
    got = later.predict(*embedded)
    assert got.loc[: d1 - pd.Timedelta(days=1)].isna().all().all()
    assert np.array_equal(got.loc[d1:].to_numpy(), scores.loc[d1:].to_numpy(), equal_nan=True)
    days = embedded[1].loc["2021-01-04":"2021-03-31"].index
    check_unseen(later, days)
    assert (seen_until(later, days) == pd.Timestamp(walkforward.folds[1].last_label_date)).all()
    with pytest.raises(ConfigError, match="no out-of-sample score"):
        check_unseen(later, embedded[1].loc["2020-06-01":"2020-06-30"].index)
    loaded = WalkForwardModel.load(later.save(tmp_path / "later"))
    assert [f.number for f in loaded.folds] == [1]
    assert np.array_equal(loaded.predict(*embedded).to_numpy(), got.to_numpy(), equal_nan=True)
    with pytest.raises(ConfigError, match="consecutive folds ending with its last"):
        WalkForwardModel.from_folds(CONFIG, PLAN, {0: walkforward.folds[0].model})


def test_rolling_fit_uses_only_its_window(embedded):
    """A fitted rolling fold's training samples start at its rolling start, not at train_start."""
    prices, bench = embedded
    model = WalkForwardModel(
        CONFIG.replace(epochs=1),
        first_test="2021-01-01",
        last_test="2021-06-30",
        window="rolling",
        rolling_years=4,
        valid_years=2,
    ).fit(_fit_on(prices), bench, progress=False)
    (fold,) = model.folds
    assert fold.split.train_start == "2015-01-01"
    first_sample = pd.Timestamp(fold.windows["train"][0])
    assert pd.Timestamp("2015-01-01") <= first_sample <= pd.Timestamp("2015-01-10")
    assert fold.model.report_.windows["scaler"][0] >= "2015-01-01"


# ------------------------------------------------------------------ no fold scores what it was fitted on
def test_every_score_comes_from_a_fold_fitted_before_its_date(walkforward, scores, direct, embedded):
    """Find each score's fold by value (which fold's own predict gives it), then check that fold's
    fit window, purge included, ended before the score's date."""
    prices, bench = embedded
    period = scores.loc["2020-01-01":"2021-12-31"]
    assert period.notna().to_numpy().mean() > 0.95
    last_label = [f.last_label_date for f in walkforward.folds]
    checked = 0
    for date, row in period.iterrows():
        for ticker, value in row.dropna().items():
            matches = [i for i, d in enumerate(direct) if abs(d.at[date, ticker] - value) <= 1e-7]
            assert len(matches) == 1, (date, ticker, matches)  # the folds' scores differ
            assert last_label[matches[0]] < date, (date, ticker, last_label[matches[0]])
            checked += 1
    assert checked > 9000
    # the fit windows themselves: labels end before validation ends, validation before the test
    for fold in walkforward.folds:
        w = fold.windows
        assert pd.Timestamp(w["last_label_date"]) <= pd.Timestamp(fold.split.valid_end) < fold.score_start
        assert pd.Timestamp(w["train"][1]) < pd.Timestamp(fold.split.valid_start)
        assert pd.Timestamp(w["scaler"][1]) <= pd.Timestamp(fold.split.train_end)
        # a fold only ever received prices up to its validation end
        assert fold.model.data_fingerprint_["last_date"] <= fold.split.valid_end


def test_train_stride_halves_the_training_windows_and_keeps_every_validation_window(walkforward, embedded):
    """train_stride 2: each fold fits on every 2nd of its stride-1 training windows per ticker
    (counted here from the stride-1 fold's own samples) and validates on exactly the same windows,
    so its validation loss compares; the plan, the fold configs and the fingerprints record it."""
    from models import labels as L
    from models.dataset import split_samples

    prices, bench = embedded
    strided = WalkForwardModel(CONFIG, **PLAN, train_stride=2)
    assert strided.params["train_stride"] == 2 and "train_stride" not in walkforward.params
    fold_cfg = strided.fold_config(strided.folds[0])
    assert (fold_cfg.stride, fold_cfg.valid_stride) == (2 * CONFIG.stride, CONFIG.stride)
    assert fold_cfg.fingerprint() != walkforward.fold_config(walkforward.folds[0]).fingerprint()
    cfg = walkforward.folds[0].model.config
    index = AlphaModel(cfg)._windows(prices, bench, walkforward.features_)
    labels, ends = L.make_labels(prices, bench, cfg.horizon, cfg.label), L.label_end_dates(prices, cfg.horizon)
    base, _ = split_samples(index, labels, ends, cfg.split, cfg.stride)
    half, _ = split_samples(index, labels, ends, cfg.split, *fold_cfg.replace(split=cfg.split).strides)
    per_ticker = np.bincount(index.row_ticker[index.ends[base["train"]]])
    assert len(half["train"]) == int(np.sum((per_ticker + 1) // 2))  # every other one, per ticker
    assert set(half["train"]) <= set(base["train"]) and np.array_equal(half["valid"], base["valid"])
    fitted = strided.fit(prices, bench, progress=False, workers=1)
    first = fitted.folds[0].model.report_
    assert first.n_samples["train"] == len(half["train"])
    assert first.n_samples["valid"] == walkforward.folds[0].model.report_.n_samples["valid"]
    assert fitted.fingerprint() != walkforward.fingerprint()
    check_unseen_folds(fitted)


def test_valid_stride_is_recorded_only_when_it_changes_the_learning():
    """valid_stride 0 (validate at `stride`, the rule before the field) keeps a config's
    fingerprint, so stored models stay valid; any other value is a new fingerprint, and a bad one
    is refused by name."""
    from models.walkforward import fold_learning

    base = ModelConfig(stride=3)
    assert "valid_stride" not in base.to_dict() and base.strides == (3, 3)
    assert ModelConfig.from_dict(base.to_dict()) == base
    pinned = base.replace(valid_stride=1)
    assert pinned.strides == (3, 1) and pinned.fingerprint() != base.fingerprint()
    assert ModelConfig.from_dict(pinned.to_dict()) == pinned
    assert fold_learning(base, 1) is base and fold_learning(base, 2).strides == (6, 3)
    with pytest.raises(ConfigError, match="valid_stride"):
        ModelConfig(valid_stride=-1)
    with pytest.raises(ConfigError, match="train_stride"):
        WalkForwardModel(CONFIG, **PLAN, train_stride=0)


def check_unseen_folds(model):
    """Every fold's labels end before the first day it scores (the walk-forward leak rule)."""
    from models.selection import check_unseen

    for fold in model.folds:
        assert fold.last_label_date < fold.score_start
    check_unseen(model, pd.bdate_range(model.folds[0].score_start, model.folds[-1].split.test_end))


def test_a_fold_never_sees_a_price_after_its_validation(embedded):
    """Scramble every price from the first refit date on: the first fold's weights do not move.
    Five stocks: what a fold may see is a matter of dates, the same for any universe."""
    prices, bench = embedded
    from feeds import PricePanel

    prices = prices.select(prices.tickers[:5])

    plan = dict(first_test="2021-01-01", last_test="2021-06-30", valid_years=2)
    cfg = CONFIG.replace(epochs=1)
    rng = np.random.default_rng(1)
    later = prices.dates >= pd.Timestamp(plan["first_test"])
    close = prices.close.copy()
    close.loc[later] *= rng.uniform(0.5, 1.5, size=close.loc[later].shape)
    bench2 = bench.copy()
    bench2.loc[bench2.index >= pd.Timestamp(plan["first_test"])] *= 1.3
    a = WalkForwardModel(cfg, **plan).fit(prices, bench, progress=False)
    b = WalkForwardModel(cfg, **plan).fit(PricePanel({"close": close}, available={"close"}), bench2, progress=False)
    for (k, va), (_, vb) in zip(a.folds[0].model.net_.state_dict().items(), b.folds[0].model.net_.state_dict().items()):
        assert np.array_equal(va.numpy(), vb.numpy()), k


# ------------------------------------------------------------------ stitching
def test_predict_stitches_each_folds_own_predictions(walkforward, scores, direct, embedded):
    prices, _ = embedded
    d0, d1 = (f.score_start for f in walkforward.folds)
    before, first, second = scores.index < d0, (scores.index >= d0) & (scores.index < d1), scores.index >= d1
    assert scores[before].isna().all().all()  # no fold may score these
    assert _close(scores[first].to_numpy(), direct[0][first].to_numpy())
    assert _close(scores[second].to_numpy(), direct[1][second].to_numpy())
    assert scores.loc["2022-01-01":].notna().to_numpy().mean() > 0.95  # after the last fold: the last fold
    # the two folds really are different models
    both = first | second
    assert not _close(direct[0][both].to_numpy(), direct[1][both].to_numpy(), atol=1e-4)
    assert list(scores.columns) == prices.tickers and scores.index.equals(prices.dates)


def test_alpha_model_face(walkforward, scores, embedded):
    prices, bench = embedded
    assert walkforward.features_ == walkforward.folds[0].model.features_ == walkforward.folds[1].model.features_
    assert walkforward.warmup == max(f.model.warmup for f in walkforward.folds)
    table = walkforward.fold_table()
    assert list(table.columns) == [
        "train",
        "valid",
        "test",
        "last_label_date",
        "best_epoch",
        "epochs",
        "n_train",
        "n_valid",
    ]
    assert (table["epochs"] >= table["best_epoch"]).all()
    assert table["test"].tolist() == ["2020-01-01..2020-12-31", "2021-01-01..2021-12-31 and later"]
    assert (table["n_train"] > 1000).all() and (table["best_epoch"] >= 1).all()
    # last_only (the indicator's next() path) scores each stock's newest window with the last fold
    tail = prices.between("2019-06-01", None)
    last = walkforward.predict(tail, bench, last_only=True)
    ref = walkforward.folds[-1].model.predict(tail, bench, last_only=True)
    assert _close(last.to_numpy(), ref.to_numpy()) and last.iloc[-1].notna().all()
    # start: windows ending before it are left unscored, later ones unchanged
    cut = walkforward.predict(tail, bench, start="2020-06-01")
    assert cut.loc[:"2020-05-31"].isna().all().all()
    assert _close(cut.loc["2020-06-01":].to_numpy(), scores.loc["2020-06-01":].to_numpy())


def test_runs_inside_cerebro_as_lstm_alpha(walkforward, scores, embedded):
    """LSTMAlpha takes the walk-forward model unchanged; the Cerebro holds Oct 2019 - Mar 2021 only,
    the earlier bars come in as warm-up history. Before the first refit (2020) the score is NaN."""
    import backtrader as bt

    prices, bench = embedded
    start, end = "2019-10-01", "2021-03-31"

    def frame(f):
        return bt.feeds.PandasData(dataname=f.loc[start:end])

    cerebro = bt.Cerebro(stdstats=False)
    spx = cerebro.adddata(
        frame(bench.rename("close").to_frame().assign(open=bench, high=bench, low=bench)), name="SP500"
    )
    tickers = prices.tickers[:3]
    datas = [cerebro.adddata(frame(prices.frame(t)), name=t) for t in tickers]
    make = LSTMAlpha.factory(walkforward, benchmark=spx, history=prices, history_benchmark=bench)
    seen = []

    class Record(bt.Strategy):
        def __init__(self):
            self.alphas = [make(d) for d in datas]

        def next(self):
            day = bt.num2date(datas[0].datetime[0])
            seen.append([day] + [a.score[0] for a in self.alphas])

    cerebro.addstrategy(Record)
    cerebro.run()
    got = pd.DataFrame(seen, columns=["date"] + tickers).set_index("date")
    got.index = pd.DatetimeIndex(got.index).normalize()
    assert got.loc[:"2019-12-31"].isna().all().all() and len(got.loc[:"2019-12-31"]) > 50
    assert got.loc["2020-01-01":].notna().all().all() and got.index.max() > pd.Timestamp("2021-03-01")  # both folds
    assert _close(got.to_numpy(), scores.loc[got.index, tickers].to_numpy(), atol=1e-6)


# ------------------------------------------------------------------ persistence
def test_save_load_round_trip(walkforward, scores, embedded, tmp_path):
    path = walkforward.save(tmp_path / "wf")
    assert sorted(p.name for p in path.iterdir()) == ["bundle.json", "fold_00", "fold_01"]
    loaded = WalkForwardModel.load(path)
    assert isinstance(load_any(path), WalkForwardModel)
    assert [f.split for f in loaded.folds] == [f.split for f in walkforward.folds]
    assert loaded.fold_table().equals(walkforward.fold_table())
    again = loaded.predict(*embedded)
    assert np.array_equal(again.to_numpy(), scores.to_numpy(), equal_nan=True)
    # a single fold is an ordinary AlphaModel artifact
    assert isinstance(load_any(path / "fold_01"), AlphaModel)
    with pytest.raises(ArtifactError, match="neither"):
        load_any(tmp_path)


def test_damaged_bundle_is_refused(walkforward, tmp_path):
    path = walkforward.save(tmp_path / "wf")
    bundle = json.loads((path / "bundle.json").read_text())
    bundle["folds"][0]["split"]["valid_end"] = (
        "2019-12-31" if bundle["folds"][0]["split"]["valid_end"] != "2019-12-31" else "2019-12-30"
    )
    (path / "bundle.json").write_text(json.dumps(bundle))
    with pytest.raises(ArtifactError, match="do not match the plan"):
        WalkForwardModel.load(path)
    path = walkforward.save(tmp_path / "wf2")
    meta = path / "fold_01" / "model.json"
    meta.write_text(meta.read_text().replace('"best_epoch"', '"best_epoch" ', 1))
    with pytest.raises(ArtifactError, match="checksum"):
        WalkForwardModel.load(path)
    with pytest.raises(ConfigError, match="not fitted"):
        WalkForwardModel(CONFIG, **PLAN).predict(None, None)


# ------------------------------------------------------------------ engines give the same bits
def _weights(model):
    return [{k: v.numpy().copy() for k, v in f.model.net_.state_dict().items()} for f in model.folds]


def _same_model(a, b, scores_a, embedded):
    for wa, wb in zip(_weights(a), _weights(b)):
        assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert a.fold_table().equals(b.fold_table())
    assert np.array_equal(b.predict(*embedded).to_numpy(), scores_a.to_numpy(), equal_nan=True)


@pytest.mark.slow
def test_two_processes_train_the_same_folds(walkforward, scores, embedded, monkeypatch):
    """By default the folds train in one process per usable CPU (here: 2 made usable), bit for
    bit the serial weights; the bundle records how many processes trained them."""
    import core.pool

    monkeypatch.setattr(core.pool, "usable_cpus", lambda: 2)
    prices, bench = embedded
    parallel = WalkForwardModel(CONFIG, **PLAN).fit(prices, bench, progress=False)
    assert parallel.fit_workers_ == 2 and walkforward.fit_workers_ == 1
    _same_model(walkforward, parallel, scores, embedded)


@pytest.mark.slow
def test_ray_trains_the_same_folds(walkforward, scores, embedded):
    ray = pytest.importorskip("ray")
    prices, bench = embedded
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = WalkForwardModel(CONFIG, **PLAN).fit(prices, bench, progress=False, ray=True)
    finally:
        ray.shutdown()
    _same_model(walkforward, remote, scores, embedded)
