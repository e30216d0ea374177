"""Backtrader's own optstrategy with our indicator factories: on one core and on several (the
factories and the model cross to Backtrader's worker processes), optreturn on and off, trade for
trade equal to one addstrategy run per parameter value; the model crosses as its state, and no
pickle file is written. Backtrader's own PandasData feeds on a small synthetic universe, a
random-init LSTM (plumbing, not skill)."""

import builtins
import io
import pickle
import warnings
from pathlib import Path

import backtrader as bt
import numpy as np
import pytest

from bench.bench_backtest import untrained_model
from feeds.arraydata import feed_frame
from feeds.synthetic import BENCHMARK_NAME, make_synthetic_universe
from models import LSTMAlpha
from models.score_cache import model_fingerprint
from strategies import AlphaRankStrategy, ScoreAlpha

TOP_K = (2, 3)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pck", ".joblib")


@pytest.fixture(scope="module")
def world():
    panel, bench = make_synthetic_universe(n_tickers=6, n_days=340, seed=1, late_start_share=0.3)
    return panel, bench, untrained_model(hidden=4)


class Fills(bt.Analyzer):
    """Every completed order as (ticker, date, size, price): what 'trade for trade' compares."""

    def start(self):
        self.rows = []

    def notify_order(self, order):
        if order.status == order.Completed:
            day = bt.num2date(order.executed.dt).date().isoformat()
            self.rows.append((order.data._name, day, order.executed.size, order.executed.price))

    def get_analysis(self):
        return self.rows


def new_cerebro(world, **kwargs):
    panel, bench, _ = world
    cerebro = bt.Cerebro(**{"stdstats": False, **kwargs})
    cerebro.broker.setcash(100_000.0)
    bench_feed = cerebro.adddata(bt.feeds.PandasData(dataname=feed_frame(bench)), name=BENCHMARK_NAME)
    for ticker, frame in panel.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=feed_frame(frame)), name=ticker)
    cerebro.addanalyzer(Fills, _name="fills")
    return cerebro, bench_feed


def make_alpha(world, kind, bench_feed):
    panel, bench, model = world
    if kind == "lstm":
        return LSTMAlpha.factory(model, benchmark=bench_feed)
    return ScoreAlpha.factory(model.predict(panel, bench))


STRATEGY = dict(benchmark=BENCHMARK_NAME, entry_threshold=0.0, review_days=5)


@pytest.fixture(scope="module")
def added(world):
    """The fills of one addstrategy run per top_k (the reference), for each alpha kind."""
    out = {}
    for kind in ("lstm", "scores"):
        for top_k in TOP_K:
            cerebro, bench_feed = new_cerebro(world)
            cerebro.addstrategy(AlphaRankStrategy, alpha=make_alpha(world, kind, bench_feed), top_k=top_k, **STRATEGY)
            out[kind, top_k] = cerebro.run()[0].analyzers.fills.get_analysis()
    assert all(len(rows) > 10 for rows in out.values()), {k: len(v) for k, v in out.items()}
    return out


def optimized(world, kind, maxcpus, optreturn):
    # Backtrader's defaults (stdstats=True) with optreturn; without it each worker sends back its
    # whole strategy, and Backtrader's DataTrades observer (stdstats, several datas) cannot be
    # unpickled outside the worker that made its class: a limit of Backtrader, ours or not
    cerebro, bench_feed = new_cerebro(world, maxcpus=maxcpus, optreturn=optreturn, stdstats=optreturn)
    alpha = make_alpha(world, kind, bench_feed)
    cerebro.optstrategy(AlphaRankStrategy, alpha=alpha, top_k=list(TOP_K), **STRATEGY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a process that has threads
        runs = cerebro.run()
    return {run[0].params.top_k: run[0].analyzers.fills.get_analysis() for run in runs}, alpha


@pytest.mark.parametrize(
    "kind, maxcpus, optreturn",
    [
        ("lstm", 2, True),  # the case: it failed with "Can't pickle local object"
        ("scores", 2, False),
        pytest.param("lstm", 1, True, marks=pytest.mark.slow),
        pytest.param("lstm", 1, False, marks=pytest.mark.slow),
        pytest.param("lstm", 2, False, marks=pytest.mark.slow),
        pytest.param("lstm", None, True, marks=pytest.mark.slow),
        pytest.param("lstm", None, False, marks=pytest.mark.slow),
        pytest.param("scores", None, True, marks=pytest.mark.slow),
    ],
)
def test_optstrategy_equals_one_addstrategy_run_per_value(world, added, kind, maxcpus, optreturn):
    got, _ = optimized(world, kind, maxcpus, optreturn)
    assert sorted(got) == list(TOP_K)
    for top_k in TOP_K:
        assert got[top_k] == added[kind, top_k], f"top_k={top_k}: optstrategy's fills differ from addstrategy's"


def test_each_run_of_one_process_gets_its_own_batch_scorer(world):
    """maxcpus=1 runs every variant in this process with the same factory: the second run must
    not score the first run's indicators too."""
    panel = world[0]
    _, alpha = optimized(world, "lstm", 1, True)
    members = alpha.scorer.members
    assert len(members) == len(panel.tickers)
    assert {m.ticker for m in members} == set(panel.tickers)


def test_factories_travel_without_their_scorer_state(world):
    panel, bench, model = world
    cerebro, bench_feed = new_cerebro(world)
    alpha = make_alpha(world, "lstm", bench_feed)
    cerebro.addstrategy(AlphaRankStrategy, alpha=alpha, **STRATEGY)
    cerebro.run()
    assert alpha.scorer is not None and alpha.scorer._scores is not None  # it scored the run
    copy = pickle.loads(pickle.dumps(alpha))
    assert copy.scorer is None  # a worker starts with no scorer: it builds its own
    assert type(copy) is type(alpha) and copy.indicator_cls is LSTMAlpha
    assert model_fingerprint(copy.model) == model_fingerprint(model)

    scores = ScoreAlpha.factory(model.predict(panel, bench), asof=True)
    copy = pickle.loads(pickle.dumps(scores))
    assert copy._prepared is None and copy.asof is True  # the look-up tables are rebuilt there
    assert copy.scores.equals(scores.scores)


class _Globals(pickle.Unpickler):
    """Records every class or function a pickle stream names."""

    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.names = []

    def find_class(self, module, name):
        self.names.append(f"{module}.{name}")
        return super().find_class(module, name)


def test_a_fitted_model_pickles_as_its_state_not_as_objects(world):
    panel, bench, model = world
    data = pickle.dumps(model)
    loader = _Globals(data)
    copy = loader.load()
    # the stream names only the model's class: the rest is JSON text and the weights' bytes
    assert loader.names == ["models.train.AlphaModel"]
    assert model_fingerprint(copy) == model_fingerprint(model)
    want, got = model.predict(panel, bench).to_numpy(), copy.predict(panel, bench).to_numpy()
    assert np.array_equal(want, got, equal_nan=True)


def test_a_damaged_state_in_a_pickle_is_refused(world):
    from core.errors import ArtifactError

    model = world[2]
    state = model.__getstate__()
    name = next(iter(state["files"]))
    state["files"][name] = state["files"][name][:-1] + bytes([state["files"][name][-1] ^ 1])
    fresh = object.__new__(type(model))
    with pytest.raises(ArtifactError, match="checksum differs"):
        fresh.__setstate__(state)


def test_no_pickle_file_is_written_or_read(world, tmp_path, monkeypatch):
    """optstrategy on 2 cores with the LSTM: the model reaches the workers in memory. Any open()
    of a pickle-named file, in this process or a (forked) worker, fails the run; afterwards no file
    under the working directory or the temporary directory is a pickle."""
    work, temp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir(), temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr("tempfile.tempdir", None)  # tempfile reads TMPDIR again
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, Path)) and str(file).lower().endswith(PICKLE_SUFFIXES):
            raise AssertionError(f"a pickle file was opened: {file}")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    got, _ = optimized(world, "lstm", 2, True)
    assert sorted(got) == list(TOP_K)
    for folder in (work, temp):
        for path in folder.rglob("*"):
            assert not path.name.lower().endswith(PICKLE_SUFFIXES), path
            if path.is_file():
                assert not path.read_bytes()[:1] == b"\x80", f"{path} looks like a pickle stream"
