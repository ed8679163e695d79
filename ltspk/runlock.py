"""One run per output folder: a lock file created atomically, released on exit.

``RunLock(folder)`` creates ``folder/.ltspk.lock`` with ``O_CREAT | O_EXCL`` holding the pid
and host of the run. A second run finds it and stops with ``FolderLocked``, naming the folder
and the holder. A lock left by a process that no longer exists on this host (a run killed
with SIGKILL) is taken over with a warning; one from another host is never taken over (delete
it by hand once that run is gone). Under DDP only rank 0 takes it (``enabled=False`` elsewhere).
"""

import json
import logging
import os
import socket
from pathlib import Path

from ltspk.errors import LtspkError

log = logging.getLogger(__name__)
LOCK_NAME = ".ltspk.lock"


class FolderLocked(LtspkError):
    """Another run holds the output folder."""

    def __init__(self, folder, holder):
        self.folder, self.holder = str(folder), holder
        super().__init__(f"{self.folder} is in use by another run (pid {holder.get('pid')} on host "
                         f"{holder.get('host')}, lock file {Path(folder) / LOCK_NAME}): wait for it to finish, or "
                         "use another output_folder")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(path):
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


class RunLock:
    """Context manager holding ``folder/.ltspk.lock`` for this process."""

    def __init__(self, folder, enabled=True):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.enabled = enabled
        self.held = False

    def acquire(self):
        if not self.enabled or self.held:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read(self.path)
                if not self._stale(holder, me):
                    raise FolderLocked(self.folder, holder) from None
                log.warning("taking over the stale lock %s of pid %s (no such process on this host)",
                            self.path, holder.get("pid"))
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise FolderLocked(self.folder, _read(self.path))

    @staticmethod
    def _stale(holder, me):
        pid = holder.get("pid")
        if not isinstance(pid, int) or holder.get("host") != me["host"]:
            return False  # unreadable (being written) or another host's: never taken over
        return pid != me["pid"] and not _alive(pid)

    def release(self):
        if self.held:
            if _read(self.path).get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
