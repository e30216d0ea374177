"""Variant sweeps on the vector engine and the sweep's plumbing, none of which needs the Cerebro sweep
of tests/test_sweep.py: a model per distinct [model] table, the command line, a sweep on seen scores
refused before it writes anything, processes == sequential == Ray, a simulator drifting from Cerebro
caught, the returns kept in files over the memory bound."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from jobs import sweep
from tests.sweep_common import SWEEP_TOML
from tests.sweep_common import write_toml as _write


@pytest.fixture(scope="module")
def market(embedded):
    from jobs.market import MarketData

    prices, bench = embedded
    return MarketData(prices, bench)


def test_a_model_change_in_a_variant_means_another_model(tiny_model, market, tmp_path):
    seen = []

    def model_for(cfg, data):
        seen.append(cfg["model"]["seed"])
        if cfg["model"]["seed"] == 99:
            raise ConfigError("no such model in this test")
        return tiny_model

    path = _write(
        tmp_path,
        'base = "default"\n[selection]\nselection_start = "2022-01-01"\n'
        'selection_end = "2022-06-30"\nholdout_start = "2022-07-01"\nholdout_end = "2022-12-31"\n'
        '[[variants.list]]\nname = "a"\n[[variants.list]]\nname = "b"\nmodel.seed = 99\n'
        '[[variants.list]]\nname = "c"\nmodel.seed = 99\ntop_k = 3\n',
    )
    result = sweep.run_sweep(
        path, out_root=tmp_path / "r", model_for=model_for, data=market, cache_dir=tmp_path / "cache", progress=None
    )
    assert seen == [0, 99]  # one attempt per distinct model, not one per variant
    assert result.outcomes["a"].error is None
    assert "no such model" in result.outcomes["b"].error and "no such model" in result.outcomes["c"].error


@pytest.mark.slow
def test_command_line_variants(tmp_path, monkeypatch):
    """run_backtest.py --variants FILE --selection --holdout trains the tiny walk-forward selection
    model once (2 yearly refits), scores each period once and writes the sweep."""
    import models.score_cache
    import run_backtest

    monkeypatch.setattr(models.score_cache, "DEFAULT_CACHE_DIR", tmp_path / "cache")
    tiny = "\n".join(
        f"{k} = {v}"
        for k, v in dict(hidden=8, epochs=1, patience=1, stride=10, batch_size=2048, seed=3, threads=1).items()
    )
    path = _write(tmp_path, f'base = "default"\n[model]\n{tiny}\n[variants.grid]\ntop_k = [3, 4]\n', name="cli.toml")
    code = run_backtest.main(
        [
            "--variants",
            str(path),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            "--model-store",
            str(tmp_path / "store"),
            "--analyzer",
            "backtrader.analyzers.SQN",
            "--selection",
            "2021-01-01,2021-12-31",
            "--holdout",
            "2022-01-01,2022-12-31",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "out" / "cli" / "selection.json").read_text())
    assert summary["periods"]["selection"] == ["2021-01-01", "2021-12-31"] and summary["n_trials"] == 2
    assert [p.name for p in (tmp_path / "store").iterdir()][0].split("-wf")[1]  # the walk-forward selection model
    extra = json.loads((tmp_path / "out" / "cli" / "top_k=3" / "analyzers.json").read_text())
    assert "SQN" in extra and extra["SQN"]["trades"] > 0  # --analyzer reaches every variant
    table = pd.read_csv(tmp_path / "out" / "cli" / "comparison.csv")
    assert sorted(table["variant"]) == ["top_k=3", "top_k=4"] and (table["status"] == "ok").all()
    assert len(list((tmp_path / "cache").glob("*.parquet"))) == 2  # one per period
    assert run_backtest.main(["--ray"]) == 2  # --ray alone is an error with a message, not a crash
    assert run_backtest.main(["--variants", str(path), "--start", "2020-01-01"]) == 2  # the periods decide


def test_a_sweep_on_scores_its_model_saw_stops_and_writes_nothing(tiny_model, market, tmp_path):
    """The tiny model chose its epoch on 2013-2016 (its validation window): selecting on those
    years (the default selection period) is refused before any variant runs; no results folder."""
    path = _write(tmp_path, 'base = "default"\n[variants.grid]\ntop_k = [3, 5]\n', "seen.toml")
    with pytest.raises(ConfigError) as caught:
        sweep.run_sweep(
            path,
            out_root=tmp_path / "results",
            model_for=lambda cfg, data: tiny_model,
            data=market,
            cache_dir=tmp_path / "cache",
            progress=None,
        )
    message = str(caught.value)
    assert "cannot select strategy variants on scores the model saw" in message
    assert "validation window" in message and "2013-01-02" in message and "Fix:" in message
    assert "jobs.store.get_selection_model" in message and "Nothing was run or written" in message
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()  # not even scores


def test_backtest_dates_cannot_override_the_periods(tiny_model, market, tmp_path):
    path = _write(tmp_path, SWEEP_TOML.replace("[variants.grid]", '[backtest]\nstart = "2020-01-01"\n[variants.grid]'))
    with pytest.raises(ConfigError, match="backtest.start / backtest.end .* cannot apply.*--selection START,END"):
        sweep.run_sweep(
            path, out_root=tmp_path / "results", model_for=lambda cfg, data: tiny_model, data=market, progress=None
        )
    assert not (tmp_path / "results").exists()


def test_vector_sweep_in_processes_equals_sequential_and_a_mismatch_fails_loudly(
    tiny_model, market, tmp_path, monkeypatch
):
    tmp = tmp_path
    path = _write(tmp, SWEEP_TOML)  # its own file and score cache: no Cerebro sweep needed
    common = dict(model_for=lambda cfg, data: tiny_model, data=market, cache_dir=tmp / "cache", progress=None)
    one = sweep.run_sweep(path, out_root=tmp_path / "a", confirm=0, **common)
    two = sweep.run_sweep(path, out_root=tmp_path / "b", confirm=0, mode="processes", workers=2, **common)
    assert {n: o.metrics for n, o in one.outcomes.items()} == {n: o.metrics for n, o in two.outcomes.items()}
    assert (one.returns.values[~pd.isna(one.returns.values)] == two.returns.values[~pd.isna(two.returns.values)]).all()

    real = sweep.run_vector_chunk

    def off_by_a_little(chunk, panels):  # a simulator that drifts from Cerebro must not pass
        return [
            (name, {**m, "sharpe": m["sharpe"] * (1 + 1e-6)} if m else m, r, e) for name, m, r, e in real(chunk, panels)
        ]

    monkeypatch.setattr(sweep.runners, "run_vector_chunk", off_by_a_little)
    with pytest.raises(sweep.EngineMismatchError, match="sharpe"):
        sweep.run_sweep(path, out_root=tmp_path / "c", confirm=1, **common)


@pytest.mark.slow
def test_vector_sweep_on_ray_equals_sequential(tiny_model, market, tmp_path):
    path = _write(tmp_path, SWEEP_TOML)
    common = dict(
        model_for=lambda cfg, data: tiny_model, data=market, cache_dir=tmp_path / "cache", progress=None, confirm=0
    )
    one = sweep.run_sweep(path, out_root=tmp_path / "a", **common)
    ray = sweep.run_sweep(path, out_root=tmp_path / "r", mode="ray", workers=2, **common)
    assert {n: o.metrics for n, o in one.outcomes.items()} == {n: o.metrics for n, o in ray.outcomes.items()}
    np.testing.assert_array_equal(one.returns.values, ray.returns.values)


def test_a_sweep_over_its_memory_bound_keeps_the_returns_in_a_file_and_gives_the_same_report(
    tiny_model, market, tmp_path
):
    """With a 1 kB bound every returns matrix is a float32 file (np.memmap) in a hidden folder
    beside the results, removed when the sweep ends; the report, comparison.csv and the returns
    equal those of the same sweep held in memory. The grid's size is printed before it runs."""
    path = _write(tmp_path, SWEEP_TOML.replace("top_k = [3, 5]", "top_k = [2, 3, 4, 5]\nreview_days = [5, 7, 14]"))
    printed = {}
    for bound in (1 << 30, 1 << 10):
        lines = []
        result = sweep.run_sweep(
            path,
            out_root=tmp_path / str(bound),
            model_for=lambda cfg, data: tiny_model,
            data=market,
            cache_dir=tmp_path / "cache",
            progress=lines.append,
            confirm=0,
            memory_bound=bound,
        )
        printed[bound] = (result, lines)
        assert [p.name for p in (tmp_path / str(bound)).iterdir()] == ["mysweep"]  # no returns file left
    (memory, lines_in), (on_disk, lines_out) = printed[1 << 30], printed[1 << 10]
    assert not isinstance(memory.returns.values, np.memmap) and isinstance(on_disk.returns.values, np.memmap)
    assert np.array_equal(memory.returns.values, on_disk.returns.values, equal_nan=True)
    assert memory.returns.names == on_disk.returns.names and len(on_disk.returns.names) == 13
    assert memory.report.summary == on_disk.report.summary
    csv = [(tmp_path / str(b) / "mysweep" / "comparison.csv").read_text() for b in (1 << 30, 1 << 10)]
    assert csv[0] == csv[1]
    days = (len(market.prices.dates[(market.prices.dates >= "2021-07-01") & (market.prices.dates <= "2021-12-31")]),)
    assert f"sweep: 14 variants x 2 periods ({days[0]:,} + " in lines_in[0] and "in memory" in lines_in[0]
    assert "in float32 files beside the results" in lines_out[0]
    assert {"setup", "models_and_scores", "vector", "ranking", "write", "total"} <= set(on_disk.seconds)
    parts = sum(v for k, v in on_disk.seconds.items() if k != "total")
    assert parts <= on_disk.seconds["total"] and parts > 0.95 * on_disk.seconds["total"]  # no phase untimed
    # the files' folder is a core.io temporary of the results folder: a killed run's is removed later
    from core.io import temp_owner

    spill = sweep.Spill(1 << 10, tmp_path / "spill", "mysweep")
    assert isinstance(spill.array((100, 10)), np.memmap) and not isinstance(spill.array((10, 10)), np.memmap)
    assert temp_owner("mysweep", spill.folder.name)[1] == os.getpid()
    spill.close()
    assert list((tmp_path / "spill").iterdir()) == []
