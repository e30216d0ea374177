"""A sweep SIGKILLed while it writes its folder leaves the earlier sweep's folder or its own, whole.
Its own module, so xdist runs it beside the other sweep tests (tests/test_sweep*.py)."""

import os
import select

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

    args = [sys.executable, str(ROOT / "tests" / "sweep_kill_child.py"), str(other), str(out_root)]
    args += [str(model_dir), str(cache)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    errors = tmp_path / "child-stderr.txt"
    with errors.open("w") as stderr:
        sweeps = subprocess.Popen(
            args, bufsize=0, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
    sweeps = _Sweeps(sweeps, errors)
    try:
        _kill_at_each_step(sweeps, out_root, out, old, tmp_path / "old-copy")
    finally:
        sweeps.close()


class _Sweeps:
    """tests/sweep_kill_child.py: one sweep process (forked from it) per line we send."""

    def __init__(self, proc, errors):
        self.proc, self.errors = proc, errors  # unbuffered pipes: select() sees every line

    def run(self, kill_at: int) -> tuple[str, str]:
        """The sweep killed at step `kill_at` (0: not killed): (its end, what it printed)."""
        self.proc.stdin.write(f"{kill_at}\n".encode())
        self.proc.stdin.flush()
        printed = []
        while True:
            if not select.select([self.proc.stdout], [], [], 600)[0]:  # a hung sweep fails, it does not hang
                self.proc.kill()
                raise AssertionError(f"no answer in 600 s for kill_at={kill_at}: {self.errors.read_text()[-2000:]}")
            line = self.proc.stdout.readline().decode()
            assert line, f"the sweep process ended: {self.errors.read_text()[-2000:]}"
            if line.startswith("status "):
                return line.split()[1], "".join(printed)
            printed.append(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _kill_at_each_step(sweeps, out_root, out, old, old_copy):
    import shutil

    end, printed = sweeps.run(0)  # the new sweep, not killed: its whole folder, and how many steps writing it took
    assert end == "exit=0", (end, sweeps.errors.read_text()[-2000:])
    steps = int(printed.strip().split("steps=")[-1])
    new = _tree(out)
    assert steps > 10 and set(new) != set(old) and "broken-2/error.txt" in new
    found = []
    for kill_at in sorted({1, 2, steps // 3, steps // 2, steps - 2, steps - 1, steps}):
        shutil.rmtree(out_root)  # the state the steps were counted in: the earlier run's leftovers gone
        shutil.copytree(old_copy, out)
        end, _ = sweeps.run(kill_at)
        assert end == "signal=9", (kill_at, end, sweeps.errors.read_text()[-2000:])
        now = _tree(out)
        if now == old:
            found.append("old")
        else:
            assert set(now) == set(new), (kill_at, sorted(set(now) ^ set(new)))
            assert now["comparison.csv"] == new["comparison.csv"]
            found.append("new")
    assert found[0] == "old" and found[-1] == "new", found  # killed before the swap / after it
    assert found == sorted(found, key=["old", "new"].index), found  # one moment decides
