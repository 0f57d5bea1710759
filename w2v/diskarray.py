"""A read-only 1-D array in a flat binary file, read by slices with pread instead of a memmap.

A memmap read front to back keeps every page it touched mapped, and Linux counts those pages in
the process's resident memory, so peak RSS grew with the corpus. Reading each slice into a fresh
buffer leaves the data in the page cache (reclaimable, not ours) and memory bounded by the slice."""
from __future__ import annotations

import mmap
import operator
import os
import threading

import numpy as np


class DiskArray:
    """`a[i]`, `a[i:j]`, `len(a)`, `np.asarray(a)` and `a.searchsorted(v)` over a file of `dtype`
    values. Safe to read from several threads at once (pread has no shared file position)."""

    def __init__(self, path: str | os.PathLike, dtype):
        self.path = os.fspath(path)
        self.dtype = np.dtype(dtype)
        self._fd = os.open(self.path, os.O_RDONLY)
        self._lock = threading.Lock()  # only for platforms without os.pread
        self._len = os.fstat(self._fd).st_size // self.dtype.itemsize
        self.shape = (self._len,)

    def __len__(self) -> int:
        return self._len

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty(max(stop - start, 0), dtype=self.dtype)
        view, pos, done = memoryview(out).cast("B"), start * self.dtype.itemsize, 0
        while done < len(view):
            if hasattr(os, "preadv"):
                n = os.preadv(self._fd, [view[done:]], pos + done)
            elif hasattr(os, "pread"):
                data = os.pread(self._fd, len(view) - done, pos + done)
                n = len(data)
                view[done:done + n] = data
            else:
                with self._lock:
                    os.lseek(self._fd, pos + done, os.SEEK_SET)
                    data = os.read(self._fd, len(view) - done)
                n = len(data)
                view[done:done + n] = data
            if n == 0:
                raise EOFError(f"{self.path}: file is shorter than expected (truncated?)")
            done += n
        return out

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self._len)
            if step == 1:
                return self._read(start, max(start, stop))
            return self._read(0, self._len)[key]
        i = operator.index(key)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"index {key} out of range for {self._len} values in {self.path}")
        return self._read(i, i + 1)[0]

    def __array__(self, dtype=None, copy=None):
        data = self._read(0, self._len)
        return data if dtype is None else data.astype(dtype, copy=False)

    def tolist(self) -> list:
        return self._read(0, self._len).tolist()

    def searchsorted(self, v, side: str = "left", sorter=None) -> np.ndarray:
        """np.searchsorted over the file without reading it all: a binary search touches a few
        pages per query through a mapping that is closed (and its pages released) at once."""
        if self._len == 0:
            return np.zeros(np.shape(v), dtype=np.intp)
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            values = np.frombuffer(mm, dtype=self.dtype, count=self._len)
            result = np.searchsorted(values, v, side=side, sorter=sorter)
            del values  # the buffer must be released before the mapping can close
        return result
