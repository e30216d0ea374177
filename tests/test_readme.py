"""The README's promises: its example runs as written, its first screen holds the two commands,
and .ci/run does what the README tells a new user."""

import re

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def readme_example() -> str:
    match = re.search(r"<!-- readme-example -->\s*```python\n(.*?)```", README, re.S)
    assert match, "README.md lost its marked example"
    return match.group(1)


@pytest.mark.slow
def test_readme_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(readme_example(), "README.md example", "exec"), namespace)
    strategy = namespace["strategy"]
    metrics = strategy.analyzers.portfoliometrics.get_analysis()
    assert metrics["n_trades"] > 0 and metrics["start"] >= "2021-01-01"
    assert (tmp_path / "trades.csv").stat().st_size > 100
    assert "<html" in (tmp_path / "tearsheet.html").read_text()[:2000].lower()


def test_first_screen_holds_install_run_and_test_commands():
    first_screen = "\n".join(README.splitlines()[:30])
    assert "pip install -r requirements.txt && python run_backtest.py" in first_screen
    assert "python -m pytest" in first_screen


def test_ci_does_what_the_readme_says():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -r requirements.txt" in ci and "python -m pytest" in ci
    assert "python -m venv .venv" in README and "python3 -m venv .venv" in ci


def test_requirements_are_pinned():
    lines = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if x and not x.startswith("#")]
    assert all("==" in x for x in lines), lines
    assert "torch==2.13.0" in lines
    imported = {
        "backtrader",
        "torch",
        "pandas",
        "numpy",
        "yfinance",
        "scikit-learn",
        "quantstats",
        "pyfolio-reloaded",
        "pyarrow",
        "ray",
        "scipy",
        "matplotlib",
        "tqdm",
        "pytest",
    }
    assert imported <= {x.split("==")[0] for x in lines}
