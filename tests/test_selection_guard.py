"""The out-of-sample guard: a sweep may select only on scores of models that never saw those days."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from feeds import ConfigError
from jobs.market import MarketData
from jobs.store import get_selection_model, model_diagnostics
from models import ModelConfig
from models.selection import (
    check_unseen,
    fit_windows,
    seen_until,
    selection_walk_forward,
)
from models.walkforward import WalkForwardModel
from tests.conftest import TINY


@pytest.fixture(scope="module")
def walkforward(embedded):
    """One tiny yearly fold scoring 2021, fitted on 5 stocks (what it saw is a matter of dates)."""
    prices, bench = embedded
    return WalkForwardModel(ModelConfig(**TINY), first_test="2021-01-01", last_test="2021-12-31", valid_years=2).fit(
        prices.select(prices.tickers[:5]), bench, progress=False
    )


def _days(start, end):
    return pd.bdate_range(start, end)


def _returns(n_days, names, seed=0):
    return pd.DataFrame(np.random.default_rng(seed).normal(0, 0.01, (n_days, len(names))), columns=names)


def test_a_model_whose_validation_covers_the_selection_period_is_refused(tiny_model):
    w = fit_windows(tiny_model)
    assert w["valid"][0] >= "2013-01-01" and "2016-12-01" < w["last_label_date"] <= "2016-12-31"
    with pytest.raises(ConfigError) as err:
        check_unseen(tiny_model, _days("2013-01-01", "2016-12-31"))
    text = str(err.value)
    assert "validation window" in text and "early stopping" in text and w["last_label_date"] in text
    assert "walk-forward" in text and f"start after {w['last_label_date']}" in text
    assert "training window" not in text
    with pytest.raises(ConfigError, match="training window"):
        check_unseen(tiny_model, _days("2010-01-01", "2010-12-31"))
    # the test period was never seen by this model: allowed (the holdout rule is the sweep's)
    check_unseen(tiny_model, _days("2017-01-02", "2017-12-29"))
    assert (seen_until(tiny_model, ["2017-01-03"]) == pd.Timestamp(w["last_label_date"])).all()


def test_walk_forward_scores_pass(walkforward, embedded):
    prices, bench = embedded
    scores = walkforward.predict(prices, bench)
    dates = scores.loc["2021-01-01":"2021-12-31"].dropna(how="all").index
    assert len(dates) > 240
    check_unseen(walkforward, dates)
    until = seen_until(walkforward, dates)
    assert (until < dates.min()).all()  # every fold's labels end before the first scored day
    with pytest.raises(ConfigError, match="before its first fold scores anything"):
        check_unseen(walkforward, _days("2020-06-01", "2021-02-01"))


def test_a_fold_that_saw_its_own_days_is_refused(walkforward):
    broken = copy.deepcopy(walkforward)
    broken.folds[0].model.report_.windows["last_label_date"] = "2021-03-31"
    with pytest.raises(ConfigError, match=r"scored by fold 0 .* reach 2021-03-31"):
        check_unseen(broken, _days("2021-01-04", "2021-06-30"))


def test_the_default_selection_plan():
    model = selection_walk_forward(ModelConfig(**TINY))
    table = model.fold_table()
    assert len(model.folds) == 10
    assert table["test"].iloc[0].startswith("2013-01-01..2013-12-31")
    assert table["test"].iloc[-1].startswith("2022-01-01..2022-12-31")
    assert table["valid"].iloc[0] == "2010-01-01..2012-12-31"  # fold 0 never touches 2013
    assert set(table["train"].str[:10]) == {"1996-01-01"}  # expanding
    with pytest.raises(ConfigError, match="selection_start"):
        selection_walk_forward(ModelConfig(**TINY), "2018-01-01", "2017-12-31")


def test_unfitted_or_empty_requests_are_clear(tiny_model):
    from models import AlphaModel

    with pytest.raises(ConfigError, match="not fitted"):
        check_unseen(AlphaModel(ModelConfig(**TINY)), ["2013-01-02"])
    with pytest.raises(ConfigError, match="score_dates is empty"):
        check_unseen(tiny_model, [])


def test_the_selection_model_is_trained_once_and_kept(embedded, tmp_path):
    from configs import load_config

    config = load_config("default", overrides={"model": dict(TINY), "walk_forward": {"valid_years": 2}})
    data = MarketData(*embedded)
    model, path, reused = get_selection_model(config, data, "2021-01-01", "2021-12-31", progress=False, store=tmp_path)
    assert not reused and path.parent == tmp_path and len(model.folds) == 1
    assert model.params["first_test"] == "2021-01-01" and model.params["valid_years"] == 2
    again, path2, reused2 = get_selection_model(
        config, data, "2021-01-01", "2021-12-31", progress=False, store=tmp_path
    )
    assert reused2 and path2 == path
    check_unseen(again, _days("2021-01-04", "2021-12-31"))


def test_the_selection_train_stride_is_in_the_stored_model_and_its_path(embedded, tmp_path):
    """[walk_forward] selection_train_stride changes how a fold learns: the plan and every fold's
    config record it, and a model stored with another stride is retrained, not reused."""
    from configs import load_config

    data = MarketData(*embedded)

    def selection(stride):
        wf = {"valid_years": 2, "selection_train_stride": stride}
        config = load_config("default", overrides={"model": dict(TINY), "walk_forward": wf})
        return get_selection_model(config, data, "2021-01-01", "2021-12-31", progress=False, store=tmp_path)

    assert load_config("default")["walk_forward"]["selection_train_stride"] == 2
    two, path2, reused2 = selection(2)
    one, path1, reused1 = selection(1)
    assert not reused2 and not reused1 and path1 != path2
    assert two.params["train_stride"] == 2 and "train_stride" not in one.params
    fold2, fold1 = two.folds[0].model, one.folds[0].model
    assert (fold2.config.stride, fold2.config.strides[1]) == (2 * TINY["stride"], TINY["stride"])
    assert fold2.config.fingerprint() != fold1.config.fingerprint() and two.fingerprint() != one.fingerprint()
    assert fold2.report_.n_samples["valid"] == fold1.report_.n_samples["valid"]
    assert fold2.report_.n_samples["train"] < 0.51 * fold1.report_.n_samples["train"]
    again, path, reused = selection(2)
    assert reused and path == path2 and again.fingerprint() == two.fingerprint()
    check_unseen(again, _days("2021-01-04", "2021-12-31"))


def test_run_diagnostics_use_the_validation_period(tiny_model, tiny_scores, embedded, capsys):
    """The spread of p and the 0.2 gate's rate printed with every run come from the validation
    period; the test period's rank IC is labelled as an after-the-fact report."""
    from types import SimpleNamespace

    import run_backtest
    from configs import load_config

    prices, bench = embedded
    data = MarketData(prices, bench, None, [])
    d = model_diagnostics(tiny_model, data, load_config("default"))
    s = tiny_scores.loc["2013-01-01":"2016-12-31"].to_numpy()  # tiny_model.predict(prices, bench)
    s = s[np.isfinite(s)]
    p = (s + 1) / 2
    assert d["valid_p_percentiles_1_99"] == [pytest.approx(np.percentile(p, 1)), pytest.approx(np.percentile(p, 99))]
    assert d["share_valid_score_above_0.2"] == pytest.approx(np.mean(s > 0.2))
    assert not any("share_test" in k or k == "p_percentiles_1_99" for k in d)
    result = SimpleNamespace(
        out_dir="x",
        metrics={"psr": 0.912, "sharpe": 0.5},
        rejected_orders=0,
        alpha=None,
        model_path=None,
        model_reused=None,
        seconds={},
    )
    run_backtest.print_summary(result, data, {}, d)
    out = capsys.readouterr().out
    assert "probabilistic Sharpe ratio 0.91" in out
    assert "percentile on validation" in out and "test period: reported after the fact" in out
