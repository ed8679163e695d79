"""One run per output folder: a second run is refused, a dead run's lock is taken over."""

import json
import logging
import os
import re
import socket
import subprocess
import sys

import pytest
from test_train_e2e import ROOT

from ltspk.runtime.errors import LtspkError
from ltspk.runtime.runlock import LOCK_NAME, FolderLocked, RunLock


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_lock_is_refused_naming_folder_and_holder(tmp_path):
    out = tmp_path / "run"
    with RunLock(out):
        holder = json.loads((out / LOCK_NAME).read_text())
        assert holder == {"pid": os.getpid(), "host": socket.gethostname()}
        with pytest.raises(FolderLocked, match=re.escape(f"{out} is in use by another run (pid {os.getpid()} on host")) as e:
            RunLock(out).acquire()
        assert isinstance(e.value, LtspkError)
    assert not (out / LOCK_NAME).exists()
    RunLock(out).acquire().release()  # free again


def test_released_on_exception(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), RunLock(tmp_path):
        raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    dead = _dead_pid()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    with caplog.at_level(logging.WARNING, logger="ltspk.runtime.runlock"), RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"stale lock {tmp_path / LOCK_NAME} of pid {dead}" in caplog.text


def test_other_hosts_and_unreadable_locks_are_not_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere.invalid"}))
    with pytest.raises(FolderLocked, match="on host elsewhere.invalid"):
        RunLock(tmp_path).acquire()
    (tmp_path / LOCK_NAME).write_text("")  # a lock being written right now
    with pytest.raises(FolderLocked):
        RunLock(tmp_path).acquire()


def test_disabled_lock_does_nothing(tmp_path):
    with RunLock(tmp_path, enabled=False):  # DDP ranks other than 0
        assert not (tmp_path / LOCK_NAME).exists()


def test_train_into_a_folder_in_use_is_refused(tmp_path):
    out = tmp_path / "run"
    with RunLock(out):  # this test process stands for a training run in progress
        r = subprocess.run([sys.executable, str(ROOT / "recipes" / "train.py"), str(ROOT / "hparams" / "demo_aam.yaml"),
                            "--output_folder", str(out), "--data_folder", str(tmp_path / "corpus")],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode != 0
    assert f"error: {out} is in use by another run (pid {os.getpid()}" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written: no corpus, no hyperparams.yaml
