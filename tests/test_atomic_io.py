"""Temporaries of atomic writes are named after their owner, and the next write of the same name
removes those a killed run left (issue 20.3), never a live run's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from core.io import (
    STALE_AFTER,
    atomic_dir,
    atomic_path,
    is_stale,
    remove_stale_temps,
    temp_name,
    temp_owner,
    write_text,
)
from tests.conftest import ROOT

# A child that opens an atomic folder (or file), writes into it, says so, and waits to be killed.
CHILD = """
import sys, time
from pathlib import Path
from core.io import atomic_dir, atomic_path
kind, target = sys.argv[1], Path(sys.argv[2])
opener = atomic_dir(target) if kind == "dir" else atomic_path(target, suffix=".png")
with opener as tmp:
    if kind == "dir":
        (tmp / "metrics.json").write_text("{}")
    print(tmp.name, flush=True)
    time.sleep(60)
"""


def start_child(kind, target):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    name = child.stdout.readline().strip()  # the temporary exists once the child has printed it
    assert name, "the child did not start"
    return child, target.parent / name


def kill(child):
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()  # reaped: its pid names no process now
    return done.pid


def test_temp_names_say_who_owns_them():
    name = temp_name("selection.png", suffix=".png")
    assert name.startswith(".selection.png.tmp-") and name.endswith(".png")
    host, pid = temp_owner("selection.png", name)
    assert pid == os.getpid() and host and "-" not in host
    assert temp_owner("selection", name) is None  # another name's temporary is not ours
    assert temp_name("x") != temp_name("x")


def test_is_stale_by_owner_and_age():
    live, dead = temp_name("default"), temp_name("default").replace(f"-{os.getpid()}-", f"-{dead_pid()}-")
    assert not is_stale("default", live, age=10 * STALE_AFTER)  # this very process: never
    assert is_stale("default", dead, age=0.0)  # dead on this host: at once
    foreign = ".default.tmp-otherhost-1-0123abcd"
    assert not is_stale("default", foreign, age=60.0) and is_stale("default", foreign, age=STALE_AFTER + 1)
    for legacy in (".default.k2j3h4g5", ".default.old-1234"):  # names from before temp_name
        assert not is_stale("default", legacy, age=60.0) and is_stale("default", legacy, age=STALE_AFTER + 1)
    assert not is_stale("default", ".defaults.k2j3h4g5", age=STALE_AFTER + 1)
    assert not is_stale("default", ".default.keep-me.txt", age=STALE_AFTER + 1)


def test_a_killed_runs_folder_is_removed_by_the_next_run(tmp_path):
    target = tmp_path / "default"
    child, tmp = start_child("dir", target)
    kill(child)
    assert tmp.is_dir() and (tmp / "metrics.json").exists()  # what a SIGKILL leaves
    assert temp_owner("default", tmp.name)[1] == child.pid
    with atomic_dir(target) as new:
        (new / "metrics.json").write_text('{"whole": true}')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default"]
    assert (target / "metrics.json").read_text() == '{"whole": true}'


def test_a_killed_runs_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "selection.png"
    child, tmp = start_child("file", target)
    kill(child)
    assert tmp.exists() and tmp.stat().st_size == 0 and tmp.suffix == ".png"
    write_text(target, "png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["selection.png"]


def test_a_live_runs_temporaries_are_kept(tmp_path):
    target = tmp_path / "default"
    child, tmp = start_child("dir", target)
    try:
        with atomic_dir(target) as new:
            (new / "a").write_text("1")
        with atomic_dir(target) as new:  # a second run of the same name, while the first still runs
            (new / "a").write_text("2")
        assert tmp.is_dir() and (tmp / "metrics.json").exists()
        assert (target / "a").read_text() == "2"
    finally:
        kill(child)
    assert remove_stale_temps(target) == [tmp]  # once it is dead, it goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default"]


def test_old_unowned_leftovers_go_after_the_bound_only(tmp_path):
    target = tmp_path / "default"
    fresh, old = tmp_path / ".default.abcd1234", tmp_path / ".default.wxyz5678"
    other = tmp_path / ".other.tmp-otherhost-1-0123abcd"
    for folder in (fresh, old, other):
        folder.mkdir()
    past = time.time() - STALE_AFTER - 60
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    with atomic_path(tmp_path / "default", suffix=".txt") as tmp:
        tmp.write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["default", fresh.name, other.name])
    assert target.read_text() == "x"


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "run") as tmp:
        (tmp / "half").write_text("1")
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "f.png", suffix=".png"):
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writing_under_a_file_names_the_file(tmp_path):
    from core.errors import ConfigError
    from core.io import ensure_folder

    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    for target in (blocker / "default", blocker / "deeper" / "default"):
        with pytest.raises(ConfigError, match=rf"{blocker} is a file, not a folder") as error:
            with atomic_dir(target):
                pass
        assert "--out" in str(error.value)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        write_text(blocker / "metrics.json", "{}")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        ensure_folder(blocker)
    assert ensure_folder(tmp_path / "a" / "b").is_dir()


def test_read_json_names_the_damaged_file_and_how_to_restore_it(tmp_path):
    from core.errors import ArtifactError
    from core.io import read_json

    path = tmp_path / "book.json"
    path.write_text('{"date": "2021-01-05", "value": 10')  # cut off mid-write
    with pytest.raises(ArtifactError) as error:
        read_json(path, "restore it from a backup")
    assert str(error.value).startswith(f"{path} is damaged (not valid JSON: ")
    assert "line 1, column" in str(error.value) and str(error.value).endswith("restore it from a backup")
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ArtifactError, match="not text: byte 0 is not UTF-8"):
        read_json(path, "x")
    path.write_text('{"a": [1, 2]}')
    assert read_json(path, "x") == {"a": [1, 2]}


def test_read_csv_rows_refuses_a_cut_or_edited_table(tmp_path):
    from core.errors import ArtifactError
    from core.io import read_csv_rows

    path, columns = tmp_path / "journal.csv", ["date", "value", "decisions"]
    assert read_csv_rows(path, columns, "r") == []  # absent: nothing recorded yet
    path.write_text("date,value,decisions\n2021-01-04,100,\n2021-01-05,101,BUY AAPL\n")
    assert read_csv_rows(path, columns, "r") == [
        {"date": "2021-01-04", "value": "100", "decisions": ""},
        {"date": "2021-01-05", "value": "101", "decisions": "BUY AAPL"},
    ]
    for text, says in [
        ("date,value,decisions\n2021-01-04,100,\n2021-01-05,1", "line 3 has fewer than 3 fields"),
        ("date,value,decisions\n2021-01-04,100,,extra\n", "line 2 has more than 3 fields"),
        ("date,value\n2021-01-04,100\n", "its header is ['date', 'value']"),
        ("", "its header is None"),
    ]:
        path.write_text(text)
        with pytest.raises(ArtifactError, match=rf"journal\.csv is damaged \({re.escape(says)}.*\); restore"):
            read_csv_rows(path, columns, "restore from a backup")
    path.write_bytes(b"date,value,decisions\n\xff\xfe\x00")
    with pytest.raises(ArtifactError, match="not a readable CSV"):
        read_csv_rows(path, columns, "r")
