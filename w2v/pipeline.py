"""From text to vocabulary and encoded corpus in one parallel native pass, cached with its vocabulary."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import logs, reader, scan
from .atomic import atomic_write
from .corpus import FORMAT_VERSION, EncodedCorpus, cached_encoding, write_encoding
from .lock import cache_lock
from .native import NativeUnavailable
from .reader import (READ_ERRORS, CorpusError, ReadStats, compression, iter_sentences, list_files, open_file,
                     read_error)
from .vocab import Vocab, build_vocab, count_words

log = logging.getLogger("w2v")

BLOCK = 4 << 20          # bytes read and scanned at a time
KEEP_ENTRIES = 3         # cache entries kept per cache_dir (the newest, by last use)
ENTRY_SUFFIXES = (".ids", ".offsets", ".json", ".vocab")


@dataclass
class Prepared:
    """What `prepare` made or found: the vocabulary, the encoded corpus and what each stage cost."""
    vocab: Vocab
    corpus: EncodedCorpus
    reused: bool
    bytes: int                 # bytes of the files on disk (compressed where they are)
    threads: int
    native: bool
    seconds: dict = field(default_factory=dict)   # stage -> seconds
    vocab_file: Path | None = None                # the cache's copy of the vocabulary (vocab.txt format)


@dataclass
class _Item:
    path: Path
    start: int
    end: int


def prepare_corpus(cfg, cache_dir: str | Path, quiet: bool = True, check=None) -> tuple[Vocab, EncodedCorpus]:
    """The vocabulary (`vocab.path`, or counted) and the encoded corpus of `cfg.corpus`, from the
    cache in `cache_dir` when it holds them, else made in one pass over the text and cached.
    `check(vocab)`, if given, runs as soon as the vocabulary is known, before anything is cached:
    an exception from it leaves the cache as it was (the trainer checks memory there)."""
    p = prepare(cfg, cache_dir, quiet=quiet, check=check)
    return p.vocab, p.corpus


def prepare(cfg, cache_dir: str | Path, quiet: bool = True, native: bool | None = None, check=None,
            given: Vocab | None = None) -> Prepared:
    """`prepare_corpus` with its report. `native`: True needs the C scanner, False uses the
    Python reference (two passes), None uses C when it can be built. `given`: the vocabulary to
    encode with (the Python API's), instead of `vocab.path`'s or a counted one."""
    check = check or (lambda vocab: None)
    t0 = time.perf_counter()
    c, v = cfg.corpus, cfg.vocab
    files = list_files(c.paths)
    snap = [(f, *_stat(f)) for f in files]
    total_bytes = sum(size for _, size, _ in snap)
    if given is None and v.path:
        given = Vocab.load(v.path)
    key = cache_key(snap, cfg, given)
    cache_dir = Path(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CorpusError(f"{cache_dir}: cannot create the cache folder (corpus.cache_dir): {e.strerror or e}") from None
    entry = {s: cache_dir / f"corpus-{key}{s}" for s in ENTRY_SUFFIXES}
    threads = c.read_threads or os.cpu_count() or 1
    with cache_lock(cache_dir):
        removed = [p for p in cache_dir.glob(".corpus-*.tmp") if _unlink(p)]
        if removed:
            log.info("removed %d temporary files of a killed encode from %s", len(removed), cache_dir)
        found = cached_encoding(entry[".ids"], entry[".offsets"], entry[".json"])
        if found is not None and entry[".vocab"].exists():
            vocab = Vocab.load(entry[".vocab"])
            check(vocab)
            meta = json.loads(entry[".json"].read_text())
            os.utime(entry[".json"])  # last use, for the housekeeping
            _warn_replaced(meta.get("replaced", {}))
            log.info("vocabulary: %d words, from the cache %s (files and settings unchanged; nothing read)",
                     len(vocab), entry[".vocab"])
            return Prepared(vocab, found, True, total_bytes, 0, False, {"total": time.perf_counter() - t0},
                            entry[".vocab"])
        if native is None:
            try:
                scan.load()
                native = True
            except NativeUnavailable as e:
                log.info("the C tokenizer is unavailable (%s); reading with Python", e)
                native = False
        with atomic_write(entry[".ids"], "wb") as ids_out, atomic_write(entry[".offsets"], "wb") as off_out:
            if native:
                vocab, counts, seconds = _native(cfg, snap, given, threads, cache_dir, key, ids_out, off_out,
                                                 total_bytes, quiet, check)
            else:
                vocab, counts, seconds = _reference(cfg, given, ids_out, off_out, check)
                threads = 1
            _check_unchanged(snap)
        distinct = counts.pop("distinct")
        vocab.save(entry[".vocab"])
        with atomic_write(entry[".json"], "w") as f:
            json.dump({**counts, "paths": [str(p) for p in c.paths]}, f)
        _keep_newest(cache_dir, entry[".json"])
    corpus = cached_encoding(entry[".ids"], entry[".offsets"], entry[".json"])
    seconds["total"] = time.perf_counter() - t0
    mb = total_bytes / 1e6
    log.info("vocabulary: %d words (min_count %d) of %d distinct; %d tokens in %d files",
             len(vocab), v.min_count, distinct, counts["raw_tokens"], len(files))
    log.info("read %.1f MB with %s (%d threads): %d in-vocabulary tokens in %d sentences; %s; %.0f MB/s",
             mb, "C" if native else "Python", threads, counts["tokens"], counts["sentences"],
             ", ".join(f"{k} {s:.2f}s" for k, s in seconds.items()), mb / max(seconds["total"], 1e-9))
    return Prepared(vocab, corpus, False, total_bytes, threads, native, seconds, entry[".vocab"])


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def cache_key(snap, cfg, given: Vocab | None) -> str:
    """Identifies a cache entry: the files (path, size, mtime), the reading settings, and the
    vocabulary settings (or the given vocabulary) — not the counted vocabulary, which the entry
    holds, so that a valid cache is found without reading the text."""
    c, v = cfg.corpus, cfg.vocab
    h = hashlib.sha256(f"prepare v{FORMAT_VERSION} lower={c.lowercase} maxlen={c.max_sentence_length}".encode())
    if given is not None:
        h.update(f" vocab={given.fingerprint()}".encode())
    else:
        h.update(f" min_count={v.min_count} max_vocab_size={v.max_vocab_size} "
                 f"max_distinct_words={v.max_distinct_words}".encode())
    for f, size, mtime in snap:
        h.update(f"|{f.resolve()}|{size}|{mtime}".encode())
    return h.hexdigest()[:16]


def _check_unchanged(snap) -> None:
    """A file written to while it was read gives counts and ids of no one version of it: refuse
    to cache them (issue: an appended log file)."""
    for f, size, mtime in snap:
        try:
            now = _stat(f)
        except OSError:
            now = None
        if now != (size, mtime):
            what = "was removed" if now is None else f"changed (size {size} -> {now[0]} bytes)" \
                if now[0] != size else "was modified (same size, new mtime)"
            raise CorpusError(f"{f}: the file {what} while it was read; nothing was cached. "
                              f"Run again once it no longer changes")


def _warn_replaced(per_file: dict) -> None:
    for path, n in per_file.items():
        if n:
            log.warning("%s: %d undecodable bytes replaced by U+FFFD (input is not valid UTF-8)", path, n)


def _no_words(cfg) -> CorpusError:
    return CorpusError(f"the corpus {cfg.corpus.paths} contains no words (empty files?)")


# --- the Python reference: two passes through reader.iter_sentences ---

def _reference(cfg, given, ids_out, off_out, check):
    c, v = cfg.corpus, cfg.vocab
    seconds, t = {}, time.perf_counter()
    stats = ReadStats()
    if given is None:
        counts, total = count_words(iter_sentences(c.paths, c.lowercase, c.max_sentence_length, stats),
                                    v.max_distinct_words)
        if total == 0:
            raise _no_words(cfg)
        vocab = build_vocab(counts, v.min_count, v.max_vocab_size)
        seconds["count"] = time.perf_counter() - t
        t = time.perf_counter()
    else:
        vocab = given
    check(vocab)
    raw, tokens, sentences = write_encoding(iter_sentences(c.paths, c.lowercase, c.max_sentence_length,
                                                           ReadStats() if given is None else stats),
                                            vocab.make_index(), ids_out, off_out)
    if raw == 0:
        raise _no_words(cfg)
    seconds["encode"] = time.perf_counter() - t
    _warn_replaced(stats.per_file_replaced)
    return vocab, {"raw_tokens": raw, "tokens": tokens, "sentences": sentences, "replaced": stats.per_file_replaced,
                   "distinct": len(counts) if given is None else len(vocab)}, seconds


# --- the native pass ---

def plan(snap, threads: int) -> list[list[_Item]]:
    """Split the files into `threads` groups of about equal bytes, in order: plain files are cut
    at line starts (a range ends just after a '\\n'), compressed ones go whole to one group. The
    groups' outputs, joined in order, are those of one sequential pass."""
    total = sum(size for _, size, _ in snap)
    groups: list[list[_Item]] = [[] for _ in range(threads)]
    g, base = 0, 0
    for f, size, _ in snap:
        pos = 0
        if not compression(f):
            while g < threads - 1 and total * (g + 1) // threads < base + size:
                cut = _line_start(f, max(pos, total * (g + 1) // threads - base), size)
                if cut > pos:
                    groups[g].append(_Item(f, pos, cut))
                    pos = cut
                g += 1
        if pos < size or size == 0:
            groups[g].append(_Item(f, pos, size))
        base += size
        while g < threads - 1 and total * (g + 1) // threads <= base:
            g += 1
    return [grp for grp in groups if grp]


def _line_start(path: Path, at: int, size: int) -> int:
    """The first offset >= at that follows a '\\n' (or the file size)."""
    if at <= 0:
        return 0
    with open(path, "rb") as f:
        f.seek(at - 1)
        pos = at - 1
        while True:
            block = f.read(1 << 16)
            if not block:
                return size
            i = block.find(b"\n")
            if i >= 0:
                return min(pos + i + 1, size)
            pos += len(block)


class _Run:
    """The workers of one pass: one thread per group, progress and errors. A group's scanners are
    its segments in order: one, or for a group that is a single compressed file `segments` of it
    (cut at line ends by the compressed offset), so that their ids are remapped in parallel."""

    def __init__(self, groups, make_scanner, bar, segments=None):
        self.groups, self.bar, self.make = groups, bar, make_scanner
        self.parts = [[make_scanner(f"{i}")] for i in range(len(groups))]
        self.segments = segments or [1] * len(groups)
        self.done = [0] * len(groups)          # bytes read, per worker
        self.replaced: dict[str, int] = {}
        self.abort = threading.Event()
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    @property
    def scanners(self) -> list:
        """Every scanner, in the order of the text."""
        return [s for part in self.parts for s in part]

    def run(self) -> None:
        workers = [threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(len(self.groups))]
        for w in workers:
            w.start()
        shown = 0
        try:
            while any(w.is_alive() for w in workers):
                for w in workers:
                    w.join(0.1)
                    now = sum(self.done)
                    self.bar.update(now - shown)
                    shown = now
        finally:
            self.abort.set()   # a Ctrl-C here stops the workers at their next block
            for w in workers:
                w.join()
        if self.errors:
            raise self.errors[0]
        self.bar.update(sum(self.done) - shown)

    def _replaced(self, i: int) -> int:
        return sum(s.stats()["replaced"] for s in self.parts[i])

    def _work(self, i: int) -> None:
        try:
            for item in self.groups[i]:
                before = self._replaced(i)
                if compression(item.path):
                    self._feed_compressed(i, item)
                else:
                    self._feed_plain(i, item)
                self.parts[i][-1].finish()
                after = self._replaced(i)
                if after > before:
                    with self._lock:
                        key = str(item.path)
                        self.replaced[key] = self.replaced.get(key, 0) + after - before
                if any(s.stats()["overflow"] for s in self.parts[i]) or self.abort.is_set():
                    self.abort.set()
                    return
        except BaseException as e:
            self.errors.append(e)
            self.abort.set()

    def _feed_plain(self, i: int, item: _Item) -> None:
        s, buf = self.parts[i][-1], bytearray(BLOCK)
        view = memoryview(buf)
        stream = open_file(item.path)
        try:
            with stream:
                f = stream.raw
                f.seek(item.start)
                left = item.end - item.start
                while left > 0 and not self.abort.is_set():
                    n = f.readinto(view[:min(BLOCK, left)])
                    if not n:
                        break
                    s.feed(view[:n])
                    left -= n
                    self.done[i] += n
                    if s.stats()["overflow"]:
                        return
        except OSError as e:
            raise CorpusError(f"{item.path}: cannot read the file ({e.strerror or e})") from None

    def _feed_compressed(self, i: int, item: _Item) -> None:
        """Decompress in a thread of its own (zlib and bz2 release the GIL) beside the scanner."""
        s, blocks = self.parts[i][-1], queue.Queue(maxsize=4)
        stop = threading.Event()
        k = self.segments[i]
        cuts = [item.end * j // k for j in range(1, k)]   # compressed offsets where a new segment starts

        def decompress():
            offset = 0
            try:
                with open_file(item.path) as stream:
                    chunks = _gunzip(stream.raw, BLOCK) if compression(item.path) == "gz" else \
                        iter(lambda: stream.text.read(reader.CHUNK_CHARS), b"")
                    for data in chunks:   # a corrupt stream is named to the offset reached
                        if stop.is_set():
                            return
                        _put(blocks, (data, stream.raw.tell()), stop)
                        offset += len(data)
                    _put(blocks, (b"", stream.raw.tell()), stop)
            except READ_ERRORS as e:
                _put(blocks, e if isinstance(e, CorpusError) else read_error(item.path, offset, e), stop)
            except BaseException as e:  # anything else reaches the scanner's thread, which re-raises it
                _put(blocks, e, stop)

        unzip = threading.Thread(target=decompress, daemon=True)
        unzip.start()
        base = self.done[i]
        try:
            while not self.abort.is_set():
                got = blocks.get()
                if isinstance(got, BaseException):
                    raise got
                data, at = got
                if not data:
                    break
                if cuts and at >= cuts[0] and not s.stats()["overflow"]:
                    nl = data.rfind(b"\n")
                    if nl >= 0:   # the segment ends with this line; the next begins a new one
                        s.feed(data[:nl + 1])
                        s.finish()
                        data, s = data[nl + 1:], self.make(f"{i}.{len(self.parts[i])}")
                        self.parts[i].append(s)
                        del cuts[0]
                s.feed(data)
                self.done[i] = base + at
                if s.stats()["overflow"]:
                    break
        finally:
            stop.set()
            unzip.join()


def _gunzip(raw, block: int):
    """The decompressed bytes of a .gz file, every member of it, at most `block` at a time: zlib
    straight (it releases the GIL while it inflates), a fifth faster than gzip.GzipFile. As
    GzipFile does, zero bytes between members are skipped; an end inside a member is an EOFError."""
    d, data, first = None, b"", True
    while True:
        if not data:
            data = raw.read(1 << 20)
            if not data:
                if d is not None:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                return
        if d is None:   # a member starts (after the first, zero padding may come before it)
            if not first:
                data = data.lstrip(b"\0")
                if not data:
                    continue
            d, first = zlib.decompressobj(wbits=31), False
        out = d.decompress(data, block)
        data = d.unconsumed_tail
        if out:
            yield out
        if d.eof:
            data, d = d.unused_data + data, None


def _put(q: queue.Queue, value, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(value, timeout=0.1)
            return
        except queue.Full:
            pass


def segments(groups, threads: int) -> list[int]:
    """Scanners per group: a group that is one compressed file gets the threads no other group
    has (its segments are scanned one after another, but remapped in parallel); others one."""
    spare = max(1, threads // max(len(groups), 1))
    return [spare if len(g) == 1 and compression(g[0].path) else 1 for g in groups]


def _scan_pass(cfg, groups, mode, prune, tmp, words, bar, segs=None) -> _Run:
    c, v = cfg.corpus, cfg.vocab

    def make(name):
        s = scan.Scanner(mode, c.lowercase, c.max_sentence_length, v.max_distinct_words, prune,
                         tmp(name, "ids"), tmp(name, "ends"))
        s.name = name
        if words is not None:
            s.load_words(words)
        return s
    run = _Run(groups, make, bar, segs)
    run.run()
    return run


def count_corpus(cfg, work_dir: str | Path) -> tuple[dict[str, int], int, int] | None:
    """Every word of `cfg.corpus` with its count, and the corpus's tokens and sentences (pieces of
    at most max_sentence_length tokens), in one native pass over all threads: the Python API's
    build_vocab, which needs the words under min_count too (for trim_rule). None where the C
    scanner cannot be built or the count would reach vocab.max_distinct_words (whose pruning
    needs the one-thread order): the caller then counts in Python, the reference."""
    try:
        scan.load()
    except NativeUnavailable:
        return None
    c = cfg.corpus
    snap = [(f, *_stat(f)) for f in list_files(c.paths)]
    threads = c.read_threads or os.cpu_count() or 1
    ends: list[Path] = []

    def tmp(name, kind):   # only the sentence ends are written: their count is the sentences
        if kind != "ends":
            return None
        ends.append(Path(work_dir) / f".count-{os.getpid()}-{threading.get_ident()}-{name}.ends.tmp")
        return ends[-1]
    bar = logs.progress(sum(size for _, size, _ in snap), disable=True)
    run = None
    try:
        groups = plan(snap, threads)
        run = _scan_pass(cfg, groups, scan.COUNT, False, tmp, None, bar, segments(groups, threads))
        first = run.scanners[0]
        if any(s.stats()["overflow"] for s in run.scanners):
            return None
        for other in run.scanners[1:]:
            first.merge(other)
        if first.stats()["words"] > cfg.vocab.max_distinct_words:
            return None
        tokens = sum(s.stats()["tokens"] for s in run.scanners)
        order, words = first.vocabulary(1)
        counts = first.counts()[order].tolist()
        sentences = sum(p.stat().st_size for p in ends) // 8
        _warn_replaced(run.replaced)
        return dict(zip(words, counts)), tokens, sentences
    finally:
        bar.close()
        for s in run.scanners if run is not None else []:
            s.close()
        for p in ends:
            _unlink(p)


def _vocab_of(scanner: scan.Scanner, cfg) -> tuple[Vocab, np.ndarray]:
    """The vocabulary of a count table (as build_vocab makes it: sorted in C, by count then by the
    words' UTF-8 bytes, which is Python's order of str) and, per word id, the final id or -1."""
    v = cfg.vocab
    counts = scanner.counts()
    if not len(counts):
        raise _no_words(cfg)
    order, words = scanner.vocabulary(v.min_count)
    if not len(order):   # build_vocab names the best count in its error
        best = int(np.argmax(counts))
        build_vocab({scanner.words_of(np.array([best]))[0]: int(counts[best])}, v.min_count, v.max_vocab_size)
    if v.max_vocab_size:
        order, words = order[:v.max_vocab_size], words[:v.max_vocab_size]
    lut = np.full(len(counts), -1, dtype=np.int32)
    lut[order] = np.arange(len(order), dtype=np.int32)
    return Vocab(words, counts[order]), lut


def _native(cfg, snap, given, threads, cache_dir, key, ids_out, off_out, total_bytes, quiet, check):
    seconds = {}
    temps: list[Path] = []

    def tmp(i, kind):
        p = cache_dir / f".corpus-{key}.w{i}.{kind}.tmp"
        temps.append(p)
        return p

    bar = logs.progress(total_bytes, disable=quiet, desc="reading", unit="B", leave=False)
    try:
        t = time.perf_counter()
        groups = plan(snap, threads)
        segs = segments(groups, threads)
        if given is not None:
            check(given)
            run = _scan_pass(cfg, groups, scan.ENCODE, False, tmp, given.words, bar, segs)
            vocab, luts, distinct = given, [None] * len(run.scanners), len(given)
            kept = [s.stats()["kept"] for s in run.scanners]
            seconds["scan+encode"] = time.perf_counter() - t
        else:
            # One scanner prunes as word2vec.c does; several stop at max_distinct_words instead.
            run = _scan_pass(cfg, groups, scan.COUNT, sum(segs) == 1, tmp, None, bar, segs)
            first, maps = run.scanners[0], [None]
            own = [s.counts() for s in run.scanners]   # each part's counts, before the merge
            overflow = any(s.stats()["overflow"] for s in run.scanners)
            if not overflow and len(run.scanners) > 1:
                maps += [first.merge(s) for s in run.scanners[1:]]
                overflow = first.stats()["words"] > cfg.vocab.max_distinct_words
            if overflow:
                # The sequential count prunes (ReduceVocab) from the first sentence where more
                # than max_distinct_words words are held; only one thread sees the sentences in
                # that order, so count again in one.
                log.info("more than vocab.max_distinct_words=%d distinct words: counting again in one "
                         "thread, pruning as word2vec.c does", cfg.vocab.max_distinct_words)
                for s in run.scanners:
                    s.close()
                bar.reset()
                groups = plan(snap, 1)
                run = _scan_pass(cfg, groups, scan.COUNT, True, tmp, None, bar)
                first, maps = run.scanners[0], [None]
                own = [first.counts()]
            seconds["scan+count"] = time.perf_counter() - t
            t = time.perf_counter()
            vocab, lut = _vocab_of(first, cfg)
            distinct = first.stats()["words"]
            check(vocab)
            pruned = first.stats()["pruned"]
            if pruned:
                # Pruned words' earlier tokens carry ids no word owns any more: encode again.
                for s in run.scanners:
                    s.close()
                seconds["vocab"] = time.perf_counter() - t
                log.info("the count was pruned: a second pass encodes with the final vocabulary")
                t = time.perf_counter()
                bar.reset()
                groups = plan(snap, threads)
                run = _scan_pass(cfg, groups, scan.ENCODE, False, tmp, vocab.words, bar, segments(groups, threads))
                luts = [None] * len(run.scanners)
                kept = [s.stats()["kept"] for s in run.scanners]
                seconds["encode pass"] = time.perf_counter() - t
            else:
                luts = [lut if m is None else lut[m] for m in maps]
                # tokens each part keeps (the first part's words are the merged table's first ids)
                kept = [int(c[lu[:len(c)] >= 0].sum()) for c, lu in zip(own, luts)]
                seconds["vocab"] = time.perf_counter() - t
        raw_tokens = sum(s.stats()["tokens"] for s in run.scanners)
        replaced = run.replaced
        for s in run.scanners:
            s.close()
        if raw_tokens == 0:
            raise _no_words(cfg)
        t = time.perf_counter()
        parts = [(tmp(s.name, "ids"), tmp(s.name, "ends"), luts[i], kept[i], tmp(s.name, "off"))
                 for i, s in enumerate(run.scanners)]
        tokens, sentences = remap(parts, ids_out, off_out)
        seconds["remap"] = time.perf_counter() - t
    finally:
        bar.close()
        for p in temps:
            _unlink(p)
    _warn_replaced(replaced)
    return vocab, {"raw_tokens": raw_tokens, "tokens": tokens, "sentences": sentences,
                   "replaced": replaced, "distinct": distinct}, seconds


def remap(parts, ids_out, off_out) -> tuple[int, int]:
    """Write the final ids and sentence offsets from each part's provisional ids and sentence
    ends (raw token counts), mapped through its lookup table (None: ids are final already); -1
    drops a token, and a sentence left empty is dropped. A part (ids, ends, lut, kept tokens,
    offsets temp file) knows how many tokens it keeps, so all parts are written at once, each
    from its own place in the ids file. Returns (tokens, sentences)."""
    bases = np.concatenate([[0], np.cumsum([p[3] for p in parts])]).tolist()
    ids_out.flush()
    results: list = [None] * len(parts)

    def one(i):
        ids, ends, lut, _, offs = parts[i]
        try:
            results[i] = scan.remap(ids, ends, lut, ids_out.fileno(), bases[i], offs)
        except BaseException as e:
            results[i] = e
    workers = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(1, len(parts))]
    for w in workers:
        w.start()
    one(0)
    for w in workers:
        w.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    for (_, _, _, want, _), (got, _) in zip(parts, results):
        if got != want:
            raise RuntimeError(f"C remap: {got} tokens kept where the counts say {want}")
    ids_out.seek(0, os.SEEK_END)
    off_out.write(np.zeros(1, dtype=np.int64).tobytes())
    for (_, _, _, _, offs) in parts:
        with open(offs, "rb") as f:
            shutil.copyfileobj(f, off_out, 1 << 22)
    return bases[-1], sum(n for _, n in results)


def _keep_newest(cache_dir: Path, current: Path) -> None:
    """Remove all but the newest KEEP_ENTRIES cache entries (by last use), with a log line."""
    metas = sorted(cache_dir.glob("corpus-*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    old = [m for m in metas if m != current][KEEP_ENTRIES - 1:]
    freed = 0
    for meta in old:
        stem = meta.name[:-len(".json")]
        for suffix in ENTRY_SUFFIXES:
            p = cache_dir / (stem + suffix)
            try:
                freed += p.stat().st_size
                p.unlink()
            except FileNotFoundError:
                pass
    if old:
        log.info("removed %d old cache entries (%.1f MB) from %s; the newest %d are kept",
                 len(old), freed / 1e6, cache_dir, KEEP_ENTRIES)
