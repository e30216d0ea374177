"""A sweep SIGKILLed while it writes its folder leaves the earlier sweep's folder or its own, whole.
Its own module, so xdist runs it beside the other sweep tests (tests/test_sweep*.py)."""

import os

import pytest

from jobs import sweep
from tests.sweep_common import SWEEP_TOML
from tests.sweep_common import tree as _tree
from tests.sweep_common import write_toml as _write


@pytest.fixture(scope="module")
def market(embedded):
    from jobs.market import MarketData

    prices, bench = embedded
    return MarketData(prices, bench)


@pytest.mark.slow
def test_a_sweep_killed_while_writing_leaves_the_old_folder_or_the_new_one_whole(tiny_model, market, tmp_path):
    """SIGKILL a sweep (its own process) at steps spread over the writing of its folder, from the
    first variant file to the removal of the replaced folder: each time results/same/ is the
    earlier sweep's folder byte for byte, or the new sweep's whole."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    path, cache = _write(tmp_path, SWEEP_TOML), tmp_path / "cache"  # the children read the scores it caches
    model_dir = tiny_model.save(tmp_path / "model")
    out_root = tmp_path / "r"
    sweep.run_sweep(
        path,
        out_root=out_root,
        name="same",
        model_for=lambda cfg, data: tiny_model,
        data=market,
        cache_dir=cache,
        progress=None,
        confirm=1,
    )
    out = out_root / "same"
    old = _tree(out)
    shutil.copytree(out, tmp_path / "old-copy")
    other = SWEEP_TOML.replace("top_k = [3, 5]", "top_k = [4]").replace('"broken"', '"broken-2"')
    other = _write(tmp_path, other, "other.toml")

    def child(kill_at: int) -> subprocess.CompletedProcess:
        args = [sys.executable, str(ROOT / "tests" / "sweep_kill_child.py"), str(other), str(out_root)]
        args += [str(model_dir), str(cache), str(kill_at)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)

    done = child(0)  # the new sweep, not killed: its whole folder, and how many steps writing it took
    assert done.returncode == 0, done.stderr[-2000:]
    steps = int(done.stdout.strip().split("steps=")[-1])
    new = _tree(out)
    assert steps > 10 and set(new) != set(old) and "broken-2/error.txt" in new
    found = []
    for kill_at in sorted({1, 2, steps // 3, steps // 2, steps - 2, steps - 1, steps}):
        shutil.rmtree(out_root)  # the state the steps were counted in: the earlier run's leftovers gone
        shutil.copytree(tmp_path / "old-copy", out)
        run = child(kill_at)
        assert run.returncode == -9, (kill_at, run.returncode, run.stderr[-2000:])
        now = _tree(out)
        if now == old:
            found.append("old")
        else:
            assert set(now) == set(new), (kill_at, sorted(set(now) ^ set(new)))
            assert now["comparison.csv"] == new["comparison.csv"]
            found.append("new")
    assert found[0] == "old" and found[-1] == "new", found  # killed before the swap / after it
    assert found == sorted(found, key=["old", "new"].index), found  # one moment decides
