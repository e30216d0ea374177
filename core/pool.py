"""The project's process pools and Ray sessions, made in one place."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container or `taskset` may allow
    fewer than the machine has), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity call on this platform
        return max(1, os.cpu_count() or 1)


def auto_workers(threads_each: int, n_tasks: int) -> int:
    """How many processes of `threads_each` threads fill the usable CPUs without oversubscribing
    them: usable_cpus() // threads_each, at least 1 and never more than the tasks."""
    return max(1, min(n_tasks, usable_cpus() // max(1, threads_each)))


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
