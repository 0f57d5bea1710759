"""The native scanner (w2v/csrc/scan.c) through ctypes: tokenise, count and encode raw bytes."""
from __future__ import annotations

import ctypes

import numpy as np

from .native import CSRC, NativeUnavailable, load_library

SOURCE = CSRC / "scan.c"
COUNT, ENCODE = 0, 1   # the scanner's modes
_p, _i64 = ctypes.c_void_p, ctypes.c_int64
NORMALIZE = ctypes.CFUNCTYPE(_i64, _p, _i64, _p, _i64, ctypes.POINTER(_i64))
_ERRORS = {2: MemoryError, 3: OSError, 4: RuntimeError, 5: RuntimeError}

_loaded: dict = {}   # "lib": the library, or the NativeUnavailable that stopped it, once per process


def load():
    """The compiled scanner (built on first use), or NativeUnavailable saying why not; remembered."""
    if "lib" not in _loaded:
        try:
            _loaded["lib"] = _declare(load_library(SOURCE, "w2v_scan", "the C tokenizer"))
        except NativeUnavailable as e:
            _loaded["lib"] = e
    if isinstance(_loaded["lib"], NativeUnavailable):
        raise _loaded["lib"]
    return _loaded["lib"]


def _declare(lib):
    """The C functions' argument and result types."""
    lib.w2v_scan_new.argtypes = [ctypes.c_int, ctypes.c_int, _i64, _i64, ctypes.c_int, NORMALIZE,
                                 ctypes.c_char_p, ctypes.c_char_p]
    lib.w2v_scan_new.restype = _p
    lib.w2v_scan_free.argtypes = [_p]
    lib.w2v_scan_feed.argtypes = [_p, _p, _i64]
    lib.w2v_scan_finish.argtypes = [_p]
    lib.w2v_scan_stats.argtypes = [_p, _p]
    lib.w2v_scan_counts.argtypes = [_p, _p]
    lib.w2v_scan_sorted.argtypes = [_p, _i64, _p]
    lib.w2v_scan_sorted.restype = _i64
    lib.w2v_scan_words.argtypes = [_p, _p, _i64, _p]
    lib.w2v_scan_words.restype = _i64
    lib.w2v_scan_load.argtypes = [_p, _p, _p, _i64]
    lib.w2v_scan_merge.argtypes = [_p, _p, _p]
    lib.w2v_remap.argtypes = [ctypes.c_char_p, ctypes.c_char_p, _p, _i64, ctypes.c_int, _i64, ctypes.c_char_p,
                              ctypes.POINTER(_i64)]
    lib.w2v_remap.restype = _i64
    for name in ("w2v_scan_feed", "w2v_scan_finish", "w2v_scan_load", "w2v_scan_merge"):
        getattr(lib, name).restype = ctypes.c_int
    return lib


def reset() -> None:
    """Forget the loaded scanner or the failure (tests change the compiler or cache)."""
    _loaded.clear()


def normalize(raw: bytes, lowercase: bool) -> tuple[str, int]:
    """A token's word: its bytes decoded as UTF-8 (invalid bytes -> U+FFFD), lowercased with
    str.lower() when asked; and how many replacement characters decoding made."""
    text = raw.decode("utf-8", "replace")
    replaced = text.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
    return (text.lower() if lowercase else text), replaced


def _callback(lowercase: bool):
    """The C side's normaliser for tokens with non-ASCII bytes (called once per spelling)."""
    def norm(raw, n, out, cap, replaced):
        try:
            word, replaced[0] = normalize(ctypes.string_at(raw, n), lowercase)
            data = word.encode("utf-8")
            if len(data) > cap:
                return -len(data)
            ctypes.memmove(out, data, len(data))
            return len(data)
        except BaseException:  # never let an exception cross into C
            return -1
    return NORMALIZE(norm)


class Scanner:
    """One C scanner: its word table, and (when paths are given) the ids and sentence-end files
    it writes. Not thread-safe; one per thread."""

    def __init__(self, mode: int, lowercase: bool, max_sentence_length: int, max_distinct: int,
                 prune: bool, ids_path=None, ends_path=None):
        self._lib = load()
        self._norm = _callback(lowercase)  # kept alive as long as the scanner
        enc = (lambda p: None if p is None else str(p).encode())
        self._s = self._lib.w2v_scan_new(mode, int(lowercase), max_sentence_length, max_distinct, int(prune),
                                         self._norm, enc(ids_path), enc(ends_path))
        if not self._s:
            raise MemoryError("the C tokenizer could not allocate its tables")
        self._check(self._lib.w2v_scan_feed(self._s, None, 0), ids_path)

    def _check(self, status: int, where=None) -> None:
        if status:
            exc = _ERRORS.get(status, RuntimeError)
            what = {2: "out of memory", 3: f"cannot write {where}", 4: "decoding a token failed"}.get(status)
            raise exc(f"C tokenizer: {what or f'error {status}'}")

    def feed(self, buf) -> None:
        """Scan the bytes of `buf` (bytes, bytearray or memoryview of bytes)."""
        n = len(buf)
        if not n:
            return
        if isinstance(buf, bytes):
            ptr = ctypes.cast(ctypes.c_char_p(buf), _p)
            self._check(self._lib.w2v_scan_feed(self._s, ptr, n))
        else:
            arr = (ctypes.c_char * n).from_buffer(buf)
            self._check(self._lib.w2v_scan_feed(self._s, ctypes.addressof(arr), n))
            del arr

    def finish(self) -> None:
        """End of a file (or byte range): the last token and sentence; files flushed."""
        self._check(self._lib.w2v_scan_finish(self._s))

    def stats(self) -> dict:
        """tokens read, replacement characters made, words held, their bytes, whether pruned,
        whether it stopped at max_distinct, word2vec.c's min_reduce. Kept after close()."""
        if not self._s:
            return self._final
        out = np.zeros(8, dtype=np.int64)
        self._lib.w2v_scan_stats(self._s, out.ctypes.data)
        keys = ("tokens", "replaced", "words", "arena", "pruned", "overflow", "min_reduce", "kept")
        return dict(zip(keys, out.tolist()))

    def counts(self) -> np.ndarray:
        """The count of each word, by word id (count mode)."""
        out = np.zeros(self.stats()["words"], dtype=np.int64)
        self._lib.w2v_scan_counts(self._s, out.ctypes.data)
        return out

    def vocabulary(self, min_count: int) -> tuple[np.ndarray, list[str]]:
        """The ids of the words counted at least min_count times in build_vocab's order (count
        descending, then word), and those words."""
        st = self.stats()
        order = np.zeros(st["words"], dtype=np.int64)
        k = self._lib.w2v_scan_sorted(self._s, min_count, order.ctypes.data)
        if k < 0:
            raise MemoryError("C tokenizer: out of memory")
        order = order[:k]
        blob = ctypes.create_string_buffer(st["arena"] + k + 1)
        n = self._lib.w2v_scan_words(self._s, order.ctypes.data, k, blob)
        words = ctypes.string_at(blob, n).decode("utf-8").split("\n") if k else []
        return order, words

    def load_words(self, words: list[str]) -> None:
        """Encode mode: the vocabulary, word i getting id i."""
        data = [w.encode("utf-8") for w in words]
        off = np.zeros(len(data) + 1, dtype=np.int64)
        np.cumsum([len(d) for d in data], out=off[1:])
        blob = b"".join(data) + bytes(8)  # the C side reads a key's last 8 bytes whole
        self._check(self._lib.w2v_scan_load(self._s, ctypes.c_char_p(blob), off.ctypes.data, len(data)))

    def merge(self, other: "Scanner") -> np.ndarray:
        """Add `other`'s counts into this table; returns, per word of `other`, its index here."""
        mapping = np.zeros(other.stats()["words"], dtype=np.int64)
        self._check(self._lib.w2v_scan_merge(self._s, other._s, mapping.ctypes.data))
        return mapping

    def words_of(self, ids: np.ndarray) -> list[str]:
        """The words of the given word ids."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        blob = ctypes.create_string_buffer(self.stats()["arena"] + len(ids) + 1)
        n = self._lib.w2v_scan_words(self._s, ids.ctypes.data, len(ids), blob)
        return ctypes.string_at(blob, n).decode("utf-8").split("\n") if len(ids) else []

    def close(self) -> None:
        if self._s:
            self._final = self.stats()
            self._lib.w2v_scan_free(self._s)
            self._s = None

    def __del__(self):
        if getattr(self, "_s", None):
            self.close()


def remap(ids_path, ends_path, lut: np.ndarray | None, out_fd: int, base: int, off_path) -> tuple[int, int]:
    """Map one part's provisional ids through `lut` (None: final already), dropping -1, into the
    file `out_fd` from token `base` on, and write its sentence offsets (from base) to off_path;
    returns (tokens kept, sentences). Releases the GIL: parts run in parallel."""
    lib = load()
    sentences = _i64(0)
    if lut is not None:
        lut = np.ascontiguousarray(lut, dtype=np.int32)
    kept = lib.w2v_remap(str(ids_path).encode(), str(ends_path).encode(),
                         None if lut is None else lut.ctypes.data, 0 if lut is None else len(lut),
                         out_fd, base, str(off_path).encode(), ctypes.byref(sentences))
    if kept < 0:
        if -kept == 3:
            raise OSError(f"cannot read {ids_path} or write the encoded corpus")
        raise RuntimeError(f"C remap: the ids of {ids_path} do not match its word table")
    return int(kept), int(sentences.value)
