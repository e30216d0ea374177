import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")

FIXTURES = ROOT / "tests" / "fixtures"


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
