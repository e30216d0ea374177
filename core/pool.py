"""The project's process pools and Ray sessions, made in one place."""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int, n_tasks: int, start: str, initializer=None, initargs=()) -> ProcessPoolExecutor:
    """A pool of at most `workers` processes (never more than `n_tasks`), each set up once by
    `initializer(*initargs)`.

    start="spawn" for workers that run torch: a forked child would inherit torch's thread-pool state
    from the parent. start="fork" for workers that only read arrays the parent holds: they inherit
    them without pickling (Linux; spawn elsewhere, where fork is unsafe or missing)."""
    if start not in ("spawn", "fork"):
        raise ValueError(f"start={start!r}: use 'spawn' or 'fork'")
    method = "fork" if start == "fork" and sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(
        max_workers=max(1, min(workers, n_tasks)),
        mp_context=multiprocessing.get_context(method),
        initializer=initializer,
        initargs=initargs,
    )


@contextlib.contextmanager
def ray_session(num_cpus: int, address: str | None = None, **init_kwargs):
    """The ray module, started for this block when no Ray instance is running (a local one with
    `num_cpus`, or the cluster at `address`) and shut down afterwards; an instance the caller
    started is used as it is and left running."""
    import ray

    started = not ray.is_initialized()
    if started:
        kwargs = {"log_to_driver": False, "ignore_reinit_error": True, **init_kwargs}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
