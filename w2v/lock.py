"""Advisory locks on a run's folders: one live run per output.dir, one writer of a corpus cache at a time.

The locks are `flock`s on a small file in the folder, so the operating system releases them when
the process ends in any way (SIGKILL and power loss included): a killed run never leaves a stale
lock behind. The lock files stay (an empty file costs nothing, and deleting one would race with a
process that has just opened it); they also mark the folder as a run's, so that a corpus folder
holding it is not read as text (w2v/reader.py)."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from pathlib import Path

log = logging.getLogger("w2v")

RUN_LOCK = ".w2v.lock"          # in output.dir
CACHE_LOCK = ".w2v-cache.lock"  # in corpus.cache_dir
MARKERS = (RUN_LOCK, CACHE_LOCK)


class LockError(RuntimeError):
    """Another live process holds the folder; the message names the folder, the key and its pid."""


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "a process whose pid is not recorded"


class FolderLock:
    """An exclusive flock on `folder/name`; `key` is the config key that chose the folder."""

    def __init__(self, folder: str | Path, name: str, key: str):
        self.folder, self.key = Path(folder), key
        self.path = self.folder / name
        self._fd: int | None = None

    def acquire(self, wait: bool = False) -> "FolderLock":
        """Take the lock, or raise LockError (wait=False) / log and wait (wait=True) while another
        process holds it. Writing our pid is a real write, fsynced: a full disk fails here, before
        any long pass, rather than at the first checkpoint."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise
            raise LockError(f"{self.folder}: cannot use this folder ({self.key}): {e.strerror or e}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise LockError(f"{self.folder}: another w2v run ({_holder(fd)}) is using this folder "
                                    f"({self.key}); wait for it to finish, stop it, or set {self.key} "
                                    f"to another folder") from None
                log.info("waiting for %s, which is writing %s (%s)", _holder(fd), self.folder, self.key)
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            os.fsync(fd)
        except BaseException as e:
            os.close(fd)
            if isinstance(e, OSError) and e.filename is None:
                e.filename = str(self.path)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # no pid recorded for a lock nobody holds
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def output_lock(out_dir: str | Path) -> FolderLock:
    """The lock a run holds on output.dir from start to end (taken with `with`)."""
    return FolderLock(out_dir, RUN_LOCK, "output.dir")


@contextlib.contextmanager
def cache_lock(cache_dir: str | Path):
    """Held while encoding into corpus.cache_dir: a second run waits, then reuses the cache the
    first one wrote, instead of both writing the same files."""
    lock = FolderLock(cache_dir, CACHE_LOCK, "corpus.cache_dir").acquire(wait=True)
    try:
        yield lock
    finally:
        lock.release()


def mark_cache_dir(cache_dir: str | Path) -> None:
    """Create corpus.cache_dir and its lock file before the corpus is first listed (so a cache
    inside a corpus folder is skipped from the start), checking it is writable, by its key."""
    folder = Path(cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(folder / CACHE_LOCK, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise
        raise LockError(f"{folder}: the encoded-corpus cache folder is not writable (corpus.cache_dir): "
                        f"{e.strerror or e}") from None
