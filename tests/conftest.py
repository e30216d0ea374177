"""Shared fixtures, and what keeps the suite fast and safe under pytest-xdist.

- Session fixtures (`embedded`, `tiny_model`, `tiny_scores`) are built once per process. A test that
  changes the model fails, a module whose tests changed the data fails (`_shared_model_unchanged`,
  `_shared_data_unchanged`); `tiny_scores` hands each test its own copy.
- QuantStats' HTML report is the slowest step of a backtest (~4 s of CPU, nearly all matplotlib).
  Many tests write it for the very same returns (a sweep's confirmation replays, a variant run
  again alone): `_tearsheets_rendered_once` renders each distinct input once per process and writes
  the same bytes for a repeat. The first rendering of every input is the real one.
- Under xdist (`-n N`), each module's tests run on one worker, so a module-scoped fixture is built
  once and not once per worker (`--dist loadscope`, chosen for a plain `-n`).
"""

import hashlib
import inspect
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")

FIXTURES = ROOT / "tests" / "fixtures"


# ----------------------------------------------------------------------------- xdist
def pytest_configure(config):
    option = config.option
    explicit = any(str(a).startswith("--dist") for a in [*config.invocation_params.args, *config.getini("addopts")])
    if getattr(option, "dist", "no") == "load" and not explicit:
        # `-n N` alone means --dist load, which would build a module's fixtures (a sweep, fitted folds)
        # once per worker; loadscope sends each module to one worker. (loadgroup cannot group
        # with pytest 9.2: xdist 3.8 renames node ids through an attribute pytest no longer reads.)
        option.dist = "loadscope"


# ----------------------------------------------------------------------------- shared data and model
@pytest.fixture(scope="session")
def embedded():
    from feeds import load_embedded

    return load_embedded()


TINY = dict(hidden=8, epochs=2, patience=1, stride=5, batch_size=1024, seed=3, threads=1)


@pytest.fixture(scope="session")
def tiny_model(embedded):
    """A small model fitted on the embedded data in a few seconds: for tests of plumbing, not skill."""
    from models import AlphaModel, ModelConfig

    prices, bench = embedded
    return AlphaModel(ModelConfig(**TINY)).fit(prices, bench, progress=False)


@pytest.fixture(scope="session")
def _tiny_scores_once(tiny_model, embedded):
    return tiny_model.predict(*embedded)


@pytest.fixture
def tiny_scores(_tiny_scores_once):
    """tiny_model.predict(prices, bench) on the whole embedded data (predicted once per session;
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
def _tearsheets_rendered_once():
    import analyzers.tearsheet as tearsheet
    from core.io import atomic_path

    real = tearsheet.write_tearsheet
    signature = inspect.signature(real)
    rendered: dict[str, bytes] = {}
    html = []  # QuantStats' own report function, seen at the first call (importing it takes seconds)

    def write_tearsheet(*args, **kwargs):
        import quantstats as qs

        if not html:
            html.append(qs.reports.html)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = _tearsheet_key(bound.arguments)
        if key is None or qs.reports.html is not html[0]:  # a test that replaced QuantStats gets it
            return real(*args, **kwargs)
        path = Path(bound.arguments["path"])
        if key not in rendered:
            out = real(*args, **kwargs)
            if out is not None:  # None: QuantStats cannot report on these returns, nothing written
                rendered[key] = Path(out).read_bytes()
            return out
        with atomic_path(path, suffix=".html") as tmp:
            tmp.write_bytes(rendered[key])
        return path

    with pytest.MonkeyPatch.context() as mp:
        for module in list(sys.modules.values()):  # `from analyzers.tearsheet import write_tearsheet` too
            if getattr(module, "write_tearsheet", None) is real:
                mp.setattr(module, "write_tearsheet", write_tearsheet)
        yield rendered


def _tearsheet_key(arguments: dict) -> str | None:
    """sha256 over every input of write_tearsheet but the path; None for inputs this does not know."""
    import numpy as np
    import pandas as pd

    h = hashlib.sha256()
    for name, value in arguments.items():
        if name == "path":
            continue
        h.update(name.encode())
        if isinstance(value, pd.Series) and isinstance(value.index, pd.DatetimeIndex):
            h.update(repr((value.name, str(value.dtype), str(value.index.tz))).encode())
            h.update(np.ascontiguousarray(value.index.asi8).tobytes())
            h.update(np.ascontiguousarray(value.to_numpy()).tobytes())
        elif value is None or isinstance(value, (str, int, float, bool)):
            h.update(repr(value).encode())
        else:
            return None
    return h.hexdigest()
