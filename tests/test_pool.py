"""core.pool: how many worker processes fill the usable CPUs."""

import os

import pytest

import core.pool
from core.pool import auto_workers, usable_cpus


def test_usable_cpus_is_the_affinity_mask():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity mask on this platform")
    assert usable_cpus() == len(os.sched_getaffinity(0)) >= 1


@pytest.mark.parametrize(
    "cpus, threads, tasks, expected",
    [(2, 1, 10, 2), (8, 2, 10, 4), (8, 3, 10, 2), (8, 1, 3, 3), (1, 1, 10, 1), (2, 4, 10, 1), (4, 1, 0, 1)],
)
def test_auto_workers_never_oversubscribes(monkeypatch, cpus, threads, tasks, expected):
    monkeypatch.setattr(core.pool, "usable_cpus", lambda: cpus)
    workers = auto_workers(threads, tasks)
    assert workers == expected
    assert workers == 1 or workers * threads <= cpus  # processes x threads fit the CPUs


# ----------------------------------------------------------------------------- core.io: one-rename swaps
def test_exchange_swaps_two_folders_in_one_rename(tmp_path):
    from core.io import exchange

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "old.txt").write_text("old")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "new.txt").write_text("new")
    if not exchange(tmp_path / "b", tmp_path / "a"):
        pytest.skip("this platform or file system has no atomic exchange (atomic_dir falls back to two renames)")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["new.txt"]
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["old.txt"]
    with pytest.raises(FileNotFoundError):
        exchange(tmp_path / "missing", tmp_path / "a")


def test_atomic_dir_replaces_a_folder_whole_and_leaves_no_temporary(tmp_path, monkeypatch):
    import core.io
    from core.io import atomic_dir

    target = tmp_path / "out"
    for fallback in (False, True):
        if fallback:  # where there is no exchange: the two-rename path gives the same folder
            monkeypatch.setattr(core.io, "exchange", lambda a, b: False)
        with atomic_dir(target) as tmp:
            (tmp / "first.txt").write_text("1")
        with atomic_dir(target) as tmp:
            (tmp / "second.txt").write_text("2")
        assert [p.name for p in target.iterdir()] == ["second.txt"]
        assert [p.name for p in tmp_path.iterdir()] == ["out"]
        with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
            (tmp / "third.txt").write_text("3")
            raise RuntimeError("a failed write keeps the previous folder")
        assert [p.name for p in target.iterdir()] == ["second.txt"] and [p.name for p in tmp_path.iterdir()] == ["out"]
