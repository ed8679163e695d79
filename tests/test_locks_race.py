"""Taking over a stale lock has one winner, and a lock file naming no owner does not lock a folder for good."""

import json
import logging
import multiprocessing as mp
import os
import socket
import time

import pytest
from test_runlock import _dead_pid

from ltspk.runtime.runlock import LOCK_NAME, OWNERLESS_GRACE_SECONDS, FolderLocked, RunLock

N_PROCS, TRIALS, HOLD = 4, 8, 0.15


def _contender(folder, barrier, queue):
    barrier.wait()
    try:
        lock = RunLock(folder).acquire()
    except FolderLocked:
        queue.put(None)
        return
    start = time.monotonic()  # system-wide clock: comparable between the processes
    time.sleep(HOLD)
    end = time.monotonic()
    lock.release()
    queue.put((start, end))


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_concurrent_takeover_of_a_stale_lock_has_one_holder_at_a_time(tmp_path):
    ctx = mp.get_context("fork")
    dead = _dead_pid()
    for trial in range(TRIALS):
        folder = tmp_path / f"t{trial}"
        folder.mkdir()
        (folder / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
        barrier, queue = ctx.Barrier(N_PROCS), ctx.Queue()
        procs = [ctx.Process(target=_contender, args=(folder, barrier, queue)) for _ in range(N_PROCS)]
        for p in procs:
            p.start()
        held = [queue.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        spans = sorted(s for s in held if s is not None)
        assert spans, f"trial {trial}: nobody took over the stale lock"
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end, f"trial {trial}: two processes held {folder} at once: {spans}"
        assert not (folder / LOCK_NAME).exists()
        assert [p.name for p in folder.iterdir()] == []  # no temporary files left behind


def test_lock_file_naming_no_owner_is_taken_over_once_old(tmp_path, caplog):
    lock = tmp_path / LOCK_NAME
    lock.write_text("")  # a run killed between creating the lock file and writing its owner
    with pytest.raises(FolderLocked, match=f"lock file {lock} names no owner yet"):
        RunLock(tmp_path).acquire()  # young: maybe being written right now
    old = time.time() - OWNERLESS_GRACE_SECONDS - 1
    os.utime(lock, (old, old))
    with caplog.at_level(logging.WARNING, logger="ltspk.runtime.runlock"), RunLock(tmp_path):
        assert json.loads(lock.read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
    assert f"taking over the lock file {lock}, which names no owner" in caplog.text
    assert not lock.exists()


def test_a_new_lock_file_is_never_seen_empty(tmp_path, monkeypatch):
    """The owner is written before the lock file appears under its name."""
    seen = []
    real_link = os.link

    def spy(src, dst, *a, **k):
        seen.append(open(src, encoding="utf-8").read())
        return real_link(src, dst, *a, **k)

    monkeypatch.setattr(os, "link", spy)
    with RunLock(tmp_path):
        pass
    assert seen and json.loads(seen[0])["pid"] == os.getpid()


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_a_forked_child_does_not_keep_the_lock_after_the_run_dies(tmp_path):
    """A run killed while a forked child (a DataLoader worker) lives on: the lock is free at once."""
    ctx = mp.get_context("fork")
    ready, out = ctx.Event(), tmp_path / "run"

    def run():
        RunLock(out).acquire()
        child = ctx.Process(target=time.sleep, args=(30,))
        child.start()
        (tmp_path / "child").write_text(str(child.pid))
        ready.set()
        time.sleep(30)

    proc = ctx.Process(target=run)
    proc.start()
    assert ready.wait(20)
    child = int((tmp_path / "child").read_text())
    proc.kill()
    proc.join()  # no timeout: a blocking wait, which reaps it (a dead pid, not a zombie)
    try:
        with RunLock(out):  # the run's pid is dead; its child holds no lock
            pass
    finally:
        os.kill(child, 9)
