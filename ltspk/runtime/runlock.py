"""One run per output folder: a lock file created atomically, released on exit.

``RunLock(folder)`` holds ``folder/.ltspk.lock``, which names the pid and host of the run. The
owner is written into a temporary file first and the file is then linked under the lock's name
(``os.link`` fails where the name exists), so a lock file is never seen empty; the run also holds
an advisory ``flock`` on it, which the kernel drops when the process dies. A second run finds the
lock and stops with ``FolderLocked``, naming the folder and the holder.

A stale lock is taken over with a warning: one naming a process that no longer exists on this
host (a run killed with SIGKILL), or one naming no owner at all (left by an older version killed
between creating and writing it) once it is older than ``OWNERLESS_GRACE_SECONDS``. The take-over
is atomic: a contender first takes the ``flock`` of the stale file (only one gets it), checks that
the file is still the one under the lock's name, and renames its own lock file over it. A lock
from another host is never taken over (delete it by hand once that run is gone). Under DDP only
rank 0 takes it (``enabled=False`` elsewhere).
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path

from ltspk.runtime.errors import LtspkError

log = logging.getLogger(__name__)
LOCK_NAME = ".ltspk.lock"
OWNERLESS_GRACE_SECONDS = 10.0  # a lock file naming no owner is stale once this old
_HELD = set()  # the locks this process holds (until released, or the process ends)


def _forget_in_child():
    """A forked child (a DataLoader worker) does not hold its parent's lock: it closes its copy of the
    fd, so that the flock lives exactly as long as the run's process (closing a copy releases nothing)."""
    for lock in list(_HELD):
        if lock._fd is not None:
            with contextlib.suppress(OSError):
                os.close(lock._fd)
        lock._fd, lock.held = None, False
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


class FolderUnwritable(LtspkError):
    """The output folder cannot be created or written (read-only, no permission, disk full)."""

    def __init__(self, folder, e):
        self.folder = str(folder)
        super().__init__(f"{self.folder}: cannot write the run's lock file {Path(folder) / LOCK_NAME} here "
                         f"({e.strerror or e}): is the output folder read-only? Use another output_folder")


class FolderLocked(LtspkError):
    """Another run holds the output folder."""

    def __init__(self, folder, holder):
        self.folder, self.holder = str(folder), holder
        lock = Path(folder) / LOCK_NAME
        if holder.get("pid") is None:
            who = (f"lock file {lock} names no owner yet; it is taken over once older than "
                   f"{OWNERLESS_GRACE_SECONDS:g} s")
        else:
            who = f"pid {holder.get('pid')} on host {holder.get('host')}, lock file {lock}"
        super().__init__(f"{self.folder} is in use by another run ({who}): wait for it to finish, or "
                         "use another output_folder")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _parse(text):
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _read(path):
    try:
        return _parse(Path(path).read_text(encoding="utf-8"))
    except OSError:
        return {}


def _read_fd(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return _parse(b"".join(chunks).decode("utf-8", "replace"))


def _try_flock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def _open_existing(path):
    """An fd of the lock file for flock: read-write where allowed (NFS emulates flock with byte-range
    locks, whose exclusive kind needs it), else read-only (another user's lock file)."""
    try:
        return os.open(path, os.O_RDWR)
    except PermissionError:
        return os.open(path, os.O_RDONLY)


def _same_file(fd, path):
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


class RunLock:
    """Context manager holding ``folder/.ltspk.lock`` for this process."""

    def __init__(self, folder, enabled=True):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.enabled = enabled
        self.held = False
        self._fd = None

    def _owned_file(self, me):
        """A temporary file beside the lock holding ``me``, flocked: ``(fd, path)``."""
        fd, tmp = tempfile.mkstemp(prefix=f"{LOCK_NAME}.", suffix=".tmp", dir=self.folder)
        try:
            os.fchmod(fd, 0o644)
            os.write(fd, json.dumps(me).encode("utf-8"))
            os.fsync(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)  # a new file nobody else can hold yet
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        return fd, tmp

    def _create(self, me):
        """Link a file naming ``me`` under the lock's name; its fd, or None where a lock exists."""
        fd, tmp = self._owned_file(me)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        finally:
            os.unlink(tmp)
        return fd

    def _take_over(self, me):
        """Rename a file naming ``me`` over the lock (whose flock this process holds); its fd."""
        fd, tmp = self._owned_file(me)
        try:
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return fd

    def acquire(self):
        if not self.enabled or self.held:
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return self._acquire()
        except LtspkError:
            raise
        except OSError as e:  # a read-only folder, no permission, a full disk: before any work
            raise FolderUnwritable(self.folder, e) from None

    def _acquire(self):
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        holder = {}
        for attempt in range(50):
            fd = self._create(me)
            if fd is not None:
                break
            try:
                old = _open_existing(self.path)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            try:
                if not _try_flock(old):
                    holder = _read_fd(old)
                    if self._stale(holder, me, self.path) and attempt < 49:
                        time.sleep(0.02)  # another run is taking the stale lock over right now: see who wins
                        continue
                    raise FolderLocked(self.folder, holder)
                if not _same_file(old, self.path):
                    continue  # released or taken over between open and flock: try again
                holder = _read_fd(old)
                if not self._stale(holder, me, self.path):
                    raise FolderLocked(self.folder, holder)
                if holder.get("pid") is None:
                    log.warning("taking over the lock file %s, which names no owner (older than %g s)",
                                self.path, OWNERLESS_GRACE_SECONDS)
                else:
                    log.warning("taking over the stale lock %s of pid %s (no such process on this host)",
                                self.path, holder.get("pid"))
                fd = self._take_over(me)
                break
            finally:
                os.close(old)
        else:
            raise FolderLocked(self.folder, _read(self.path))
        self._fd = fd
        self.held = True
        _HELD.add(self)
        return self

    @staticmethod
    def _stale(holder, me, path):
        pid = holder.get("pid")
        if pid is None and not holder.get("host"):  # names no owner: stale once past the grace period
            try:
                return time.time() - os.stat(path).st_mtime > OWNERLESS_GRACE_SECONDS
            except FileNotFoundError:
                return False
        if not isinstance(pid, int) or holder.get("host") != me["host"]:
            return False  # another host's: never taken over
        return pid != me["pid"] and not _alive(pid)

    def release(self):
        if self.held:
            if _same_file(self._fd, self.path):
                self.path.unlink(missing_ok=True)  # still holding the flock: nobody takes it meanwhile
            os.close(self._fd)
            self._fd = None
            self.held = False
            _HELD.discard(self)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
