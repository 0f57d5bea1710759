"""Atomic file writes: a file appears complete under its final name, or not at all."""

import contextlib
import glob
import os
import tempfile


def _read_umask():
    # os.umask can only be read by setting it; do it once at import, before any
    # worker threads exist, rather than briefly zeroing it on every write.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_dir(directory):
    """Persist the rename itself; best effort, as some platforms cannot open directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8", newline="\n"):
    """Yield a file object whose content replaces `path` only if the block finishes.

    The data goes to a temporary file in the same directory (so the final
    os.replace is a same-filesystem rename), is flushed and fsynced, then
    renamed over `path`. If the block raises, the temporary file is removed
    and any existing `path` is left untouched.
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write supports modes 'w', 'wt' and 'wb', not {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        try:
            if "b" in mode:
                f = os.fdopen(fd, "wb")
            else:
                f = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        except BaseException:
            os.close(fd)  # fdopen failed (e.g. unknown encoding), so nothing owns the descriptor
            raise
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the permissions open() would have.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:
            e.filename = path  # a full disk fails in write() or fsync(), which name no file
        raise
    _fsync_dir(directory)


def remove_stale_temps(directory, names):
    """Delete the temporary files atomic_write left for `names` in `directory` when its process
    was killed mid-write (SIGKILL skips the clean-up above). Returns how many were removed; call
    it only where no other process is writing those names."""
    removed = 0
    for name in names:
        for tmp in glob.glob(os.path.join(glob.escape(os.fspath(directory)), f".{glob.escape(name)}.*.tmp")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
                removed += 1
    return removed
