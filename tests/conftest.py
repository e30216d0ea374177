"""Shared fixtures, and what keeps the suite fast and safe under pytest-xdist.

- `tiny_model` and `tiny_scores` are built once per run, not once per worker: the first worker to
  need one builds it into the run's shared folder under a file lock (`built_once`), the others wait
  and load it. A test that changes the model fails, a module whose tests changed the data fails
  (`_shared_model_unchanged`, `_shared_data_unchanged`); `tiny_scores` hands each test its own copy.
- QuantStats' HTML report is the slowest step of a backtest (~4 s of CPU, nearly all matplotlib).
  Many tests write it for the very same returns: `_tearsheets_rendered_once` renders each distinct
  input once per run (tests/tearsheet_memo.py) and writes the same bytes for a repeat. The first
  rendering of every input is the real one.
- Under xdist (`-n N`), each module's tests run on one worker, so a module-scoped fixture is built
  once and not once per worker (`--dist loadscope`, chosen for a plain `-n`); the modules that take
  longest are sent first (`HEAVY_FIRST`), so none of them starts last and leaves a worker idle.
"""

import hashlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")

FIXTURES = ROOT / "tests" / "fixtures"


# ----------------------------------------------------------------------------- xdist
# The modules that take longest, longest first (measured with --durations on 2 cores): xdist hands
# out modules in collection order, so these start at once and the short ones fill in around them.
HEAVY_FIRST = (
    "test_sweep_kill.py",
    "test_docs.py",
    "test_sweep.py",
    "test_sweep_vector.py",
    "test_paper.py",
    "test_indicator.py",
    "test_vector.py",
    "test_backtest.py",
    "test_model.py",
    "test_walkforward.py",
    "test_positions.py",
    "test_signal.py",
    "test_score_cache.py",
    "test_zoo.py",
    "test_zero_trades_cli.py",
    "test_positive_control.py",
    "test_run_files.py",
    "test_costs.py",
    "test_zoo_models.py",
    "test_selection_guard.py",
)


def pytest_configure(config):
    option = config.option
    given = [str(a) for a in [*config.invocation_params.args, *config.getini("addopts")]]
    if getattr(option, "dist", "no") == "load" and not any(a.startswith("--dist") for a in given):
        # `-n N` alone means --dist load, which would build a module's fixtures (a sweep, fitted folds)
        # once per worker; loadscope sends each module to one worker. (loadgroup cannot group
        # with pytest 9.2: xdist 3.8 renames node ids through an attribute pytest no longer reads.)
        option.dist = "loadscope"
    if getattr(option, "dist", "no") == "loadscope" and not any("loadscope-reorder" in a for a in given):
        option.loadscopereorder = False  # xdist would order modules by test count: keep HEAVY_FIRST's order


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


# ----------------------------------------------------------------------------- shared data and model
def shared_dir(tmp_path_factory) -> Path:
    """One folder for the whole run. Under xdist each worker's basetemp is <run>/popen-gwN, so their
    parent is this run's own folder (pytest-xdist's documented pattern); -n 0: the basetemp."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    root.mkdir(exist_ok=True)
    return root


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder `name` in the run's shared folder, written by `build(folder)` once for all workers:
    the first worker builds it under a file lock, the others wait and read it."""
    from filelock import FileLock

    from core.io import atomic_dir

    root = shared_dir(tmp_path_factory)
    folder = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not folder.is_dir():
            with atomic_dir(folder) as tmp:
                build(tmp)
    return folder


@pytest.fixture(scope="session")
def embedded():
    from feeds import load_embedded

    return load_embedded()


TINY = dict(hidden=8, epochs=2, patience=1, stride=5, batch_size=1024, seed=3, threads=1)


@pytest.fixture(scope="session")
def tiny_model(embedded, tmp_path_factory):
    """A small model fitted on the embedded data in a few seconds: for tests of plumbing, not skill.
    Fitted once per run and saved; every worker loads that artifact (the fit is checked to survive
    the round trip), so all of them hold the very same weights."""
    from models import AlphaModel, ModelConfig

    def fit(folder):
        fitted = AlphaModel(ModelConfig(**TINY)).fit(*embedded, progress=False)
        fitted.save(folder / "model")
        assert AlphaModel.load(folder / "model").fingerprint() == fitted.fingerprint()

    return AlphaModel.load(built_once(tmp_path_factory, "tiny_model", fit) / "model")


@pytest.fixture(scope="session")
def _tiny_scores_once(tiny_model, embedded, tmp_path_factory):
    import pandas as pd

    def predict(folder):
        pd.to_pickle(tiny_model.predict(*embedded), folder / "scores.pkl")

    return pd.read_pickle(built_once(tmp_path_factory, "tiny_scores", predict) / "scores.pkl")


@pytest.fixture
def tiny_scores(_tiny_scores_once):
    """tiny_model.predict(prices, bench) on the whole embedded data (predicted once per run;
    each test gets its own copy to change as it likes)."""
    return _tiny_scores_once.copy()


def _panel_digest(prices, bench) -> str:
    import numpy as np

    from feeds.panel import FIELDS

    h = hashlib.blake2b()
    for frame in [prices[f] for f in FIELDS] + [bench]:
        labels = list(frame.columns) if frame.ndim == 2 else [frame.name]
        h.update(repr((labels, str(frame.dtypes.tolist() if frame.ndim == 2 else frame.dtype))).encode())
        h.update(np.ascontiguousarray(frame.index.asi8).tobytes())
        h.update(np.ascontiguousarray(frame.to_numpy()).tobytes())
    return h.hexdigest()


@pytest.fixture(autouse=True)
def _shared_model_unchanged(request):
    """The session's model is read by every later test: one that changes it fails here."""
    if "tiny_model" not in request.fixturenames:
        yield
        return
    model = request.getfixturevalue("tiny_model")
    before = model.fingerprint()
    yield
    assert model.fingerprint() == before, "this test changed the shared tiny_model: copy.deepcopy it first"


@pytest.fixture(scope="module", autouse=True)
def _shared_data_unchanged(embedded):
    """Checked per module (a digest of the whole panel takes ~20 ms): a module whose tests changed
    the session's embedded data fails at its last test."""
    before = _panel_digest(*embedded)
    yield
    assert _panel_digest(*embedded) == before, "a test of this module changed the shared embedded data"


# ----------------------------------------------------------------------------- tearsheets
@pytest.fixture(scope="session", autouse=True)
def _tearsheets_rendered_once(tmp_path_factory):
    """QuantStats' report rendered once per distinct input for the run (tests/tearsheet_memo.py);
    a test's subprocess that calls tearsheet_memo.install_from_env() shares the same folder."""
    import analyzers.tearsheet as tearsheet
    from tests import tearsheet_memo

    folder = shared_dir(tmp_path_factory) / "tearsheets"
    folder.mkdir(exist_ok=True)
    real = tearsheet.write_tearsheet
    writer = tearsheet_memo.memo_writer(real, folder)
    with pytest.MonkeyPatch.context() as mp:
        for module in tearsheet_memo.modules_holding(real):
            mp.setattr(module, "write_tearsheet", writer)
        mp.setenv(tearsheet_memo.ENV, str(folder))
        yield folder
