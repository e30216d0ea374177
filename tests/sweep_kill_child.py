"""Run by tests/test_sweep_kill.py: small sweeps, each in its own process, whose folder-writing step
(sweep.write_sweep) is killed with SIGKILL just before its k-th file-system step (a file written, a
rename, the folder swap, the removal of the replaced folder).

    python tests/sweep_kill_child.py VARIANTS.toml OUT_ROOT MODEL_DIR CACHE_DIR

It imports everything and loads the model and the data once, then reads one K a line from stdin:
for each it forks a child that runs the whole sweep (and is killed at step K; K = 0 kills nothing
and prints `steps=N`, the number of steps the writing took), waits for it and prints
`status exit=CODE` or `status signal=SIG`. Forking spares each sweep ~10 s of imports; what runs
and is killed is the same. The tearsheets come from the test run's memo (tests/tearsheet_memo.py):
the first sweep renders each, the later ones reuse it (the writing of the folder is the same)."""

import os
import pathlib
import shutil
import signal
import sys
import traceback
from functools import partial

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


def count_steps(kill_at: int) -> None:
    """In the child only: count (and kill at) the file-system steps of write_sweep."""
    STEPS["kill_at"] = kill_at
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


def sweep_once(variants, out_root, model, data, cache_dir, kill_at) -> None:
    count_steps(kill_at)
    sweep.run_sweep(
        variants,
        out_root=out_root,
        name="same",
        model_for=lambda cfg, data: model,
        data=data,
        cache_dir=cache_dir,
        progress=None,
        confirm=1,
    )
    print(f"steps={STEPS['n']}", flush=True)


def forked(run) -> str:
    """run() in a forked child; its end as `exit=CODE` or `signal=SIG`."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            run()
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return f"signal={os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit={os.WEXITSTATUS(status)}"


def main(variants, out_root, model_dir, cache_dir) -> None:
    install_from_env()
    model = load_any(model_dir)
    prices, bench = load_embedded()
    data = MarketData(prices, bench)
    for line in sys.stdin:
        kill_at = int(line)
        end = forked(partial(sweep_once, variants, out_root, model, data, cache_dir, kill_at))
        print(f"status {end}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
