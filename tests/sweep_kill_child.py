"""Run by tests/test_sweep.py's SIGKILL test in its own process: a small sweep whose folder-writing
step (sweep.write_sweep) is killed with SIGKILL just before its k-th file-system step (a file
written, a rename, the folder swap, the removal of the replaced folder).

    python tests/sweep_kill_child.py VARIANTS.toml OUT_ROOT MODEL_DIR CACHE_DIR K

K = 0 kills nothing and prints the number of steps the writing took. The tearsheets come from the
test run's memo (tests/tearsheet_memo.py): the first child renders each, the later ones reuse it
(the writing of the folder, what is killed, is the same either way)."""

import os
import pathlib
import shutil
import signal
import sys

import core.io
import jobs.sweep as sweep
from feeds import load_embedded
from jobs.market import MarketData
from models.walkforward import load_any
from tests.tearsheet_memo import install_from_env

STEPS = {"n": 0, "on": False, "kill_at": 0}


def _step(fn):
    def wrapped(*args, **kwargs):
        if STEPS["on"]:
            STEPS["n"] += 1
            if STEPS["n"] == STEPS["kill_at"]:
                os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)

    return wrapped


def main(variants, out_root, model_dir, cache_dir, kill_at) -> None:
    STEPS["kill_at"] = kill_at
    install_from_env()
    pathlib.Path.write_bytes = _step(pathlib.Path.write_bytes)
    pathlib.Path.write_text = _step(pathlib.Path.write_text)
    os.replace = _step(os.replace)
    core.io.exchange = _step(core.io.exchange)
    shutil.rmtree = _step(shutil.rmtree)
    write = sweep.write_sweep

    def counted_write(*args, **kwargs):
        STEPS["on"] = True
        try:
            return write(*args, **kwargs)
        finally:
            STEPS["on"] = False

    sweep.write_sweep = counted_write
    model = load_any(model_dir)
    prices, bench = load_embedded()
    sweep.run_sweep(
        variants,
        out_root=out_root,
        name="same",
        model_for=lambda cfg, data: model,
        data=MarketData(prices, bench),
        cache_dir=cache_dir,
        progress=None,
        confirm=1,
    )
    print(f"steps={STEPS['n']}")


if __name__ == "__main__":
    main(*sys.argv[1:5], int(sys.argv[5]))
