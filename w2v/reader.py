"""Stream sentences from text files (plain, .gz, .bz2, folders) in bounded memory."""
from __future__ import annotations

import bz2
import codecs
import gzip
import logging
import os
import stat
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .lock import MARKERS

CHUNK_CHARS = 1 << 20  # characters read at a time; a 100 MB single line (text8) never sits in memory


log = logging.getLogger("w2v")


class CorpusError(ValueError):
    """Unreadable, missing or empty input; the message names the file."""


@dataclass
class ReadStats:
    """What a pass over the corpus saw: files, lines, tokens and undecodable bytes replaced."""
    files: int = 0
    lines: int = 0
    tokens: int = 0
    replaced_bytes: int = 0
    per_file_replaced: dict = field(default_factory=dict)


def list_files(paths: list[str]) -> list[Path]:
    """Expand folders (recursively, sorted, hidden files skipped) and check every file exists.

    Symbolic links to folders are followed, each real folder once (a link back up the tree is
    skipped with a warning). A folder holding a w2v run's output (its output.dir, or a
    corpus.cache_dir) is skipped with a log line: its logs, checkpoints and vectors are not text
    to train on. Named pipes and devices are refused: the corpus is read more than once."""
    if not paths:
        raise CorpusError("corpus.paths is empty: give at least one file or folder")
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = _walk(path)
            if not found:
                raise CorpusError(f"{path}: folder contains no files to read")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise CorpusError(f"{path}: {_kind(path)}, not a regular file or folder (from corpus.paths): w2v "
                              f"reads the corpus more than once (to count, then to encode); save it to a "
                              f"file first")
        elif path.is_symlink():
            raise CorpusError(f"{path}: symbolic link to {os.readlink(path)}, which does not exist "
                              f"(from corpus.paths)")
        else:
            raise CorpusError(f"{path}: no such file or folder (from corpus.paths)")
    for f in files:
        if not os.access(f, os.R_OK):
            raise CorpusError(f"{f}: file is not readable (permission denied)")
    return files


def _kind(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


_reported: set[str] = set()  # folders and files already named in a log line (the corpus is listed often)


def _note(message: str, level: int = logging.INFO) -> None:
    if message not in _reported:
        _reported.add(message)
        log.log(level, "%s", message)


def _walk(top: Path) -> list[Path]:
    """Files under `top`, sorted by path, hidden ones skipped, symlinked folders followed once."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for root, dirs, names in os.walk(top, followlinks=True):
        st = os.stat(root)
        here = Path(root)
        if (st.st_dev, st.st_ino) in seen:
            _note(f"{here}: skipped, a symbolic link to a folder already read (a loop?)", logging.WARNING)
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        if here != top and any(m in names for m in MARKERS):
            _note(f"{here}: skipped, a w2v run's output or cache folder (not text to train on)")
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            f = here / name
            if name.startswith("."):
                continue
            if f.is_file():
                found.append(f)
            elif f.exists():
                _note(f"{f}: skipped, {_kind(f)}", logging.WARNING)
            else:
                _note(f"{f}: skipped, a broken symbolic link", logging.WARNING)
    return sorted(found, key=lambda f: f.relative_to(top).parts)


def compression(path: Path) -> str:
    """'gz', 'bz2' or '' (plain), from the file name."""
    name = path.name.lower()
    return "gz" if name.endswith(".gz") else "bz2" if name.endswith(".bz2") else ""


READ_ERRORS = (EOFError, OSError, zlib.error)


def read_error(path: Path, offset: int, e: BaseException) -> CorpusError:
    """The error for a truncated or corrupt .gz/.bz2, or an I/O error, naming the file and where."""
    return CorpusError(f"{path}: cannot read past byte {offset} of the decompressed stream "
                       f"({type(e).__name__}: {e}); the file may be truncated or corrupt")


class _Stream:
    """An opened corpus file: `raw` the file on disk (its tell() is the progress), `text` the
    bytes of its text (decompressed for .gz/.bz2). Closing closes both."""

    def __init__(self, path: Path):
        self.raw = open(path, "rb")
        kind = compression(path)
        try:
            self.text = gzip.GzipFile(fileobj=self.raw, mode="rb") if kind == "gz" else \
                bz2.BZ2File(self.raw) if kind == "bz2" else self.raw
        except BaseException:
            self.raw.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.text is not self.raw:
            self.text.close()
        self.raw.close()


def open_binary(path: Path) -> _Stream:
    """Open a corpus file for reading its bytes."""
    return _Stream(path)


def open_file(path: Path) -> _Stream:
    """`open_binary`, with a CorpusError naming the file if it cannot be opened."""
    try:
        return open_binary(path)
    except OSError as e:
        raise CorpusError(f"{path}: cannot open the file ({e.strerror or e})") from None


def _decoded_chunks(path: Path, stats: ReadStats) -> Iterator[str]:
    """Yield decoded text chunks; invalid UTF-8 is replaced by U+FFFD and counted, not fatal."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset = 0
    stream = open_file(path)
    try:
        with stream:
            while True:
                raw = stream.text.read(CHUNK_CHARS)
                final = not raw
                text = decoder.decode(raw, final=final)
                if text:
                    # U+FFFD already in the source (valid UTF-8 EF BF BD) is rare; the count is
                    # of replacement characters produced, which is what users need to know.
                    bad = text.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
                    if bad > 0:
                        stats.replaced_bytes += bad
                        stats.per_file_replaced[str(path)] = stats.per_file_replaced.get(str(path), 0) + bad
                    yield text
                if final:
                    return
                offset += len(raw)
    except READ_ERRORS as e:
        raise read_error(path, offset, e) from None


_SPACE = re.compile(r"\s")  # str.split()'s whitespace: \s in a str pattern is str.isspace()


def _pieces(sentence: list[str], max_sentence_length: int, stats: ReadStats, final: bool):
    """Yield `sentence` in pieces of max_sentence_length tokens; the rest (a short last piece)
    too when `final`, else it is returned to be continued."""
    start = 0
    while len(sentence) - start >= max_sentence_length:
        stats.tokens += max_sentence_length
        yield sentence[start:start + max_sentence_length]
        start += max_sentence_length
    rest = sentence[start:] if start else sentence
    if final and rest:
        stats.tokens += len(rest)
        yield rest
        return []
    return rest


def iter_sentences(paths: list[str], lowercase: bool = True, max_sentence_length: int = 1000,
                   stats: ReadStats | None = None) -> Iterator[list[str]]:
    """Yield sentences as token lists. A newline ends a sentence; longer ones are cut into pieces
    of at most `max_sentence_length` tokens (word2vec.c's 1000), so memory stays bounded.

    The reference tokenisation (README "Tokenisation"): UTF-8 decoded with errors="replace", split
    at "\n" into lines and by str.split() into tokens, each token lowercased with str.lower().
    Text is lowercased only up to its last whitespace, so a token cut by the read chunk is
    lowercased whole (str.lower() looks at neighbours for a final sigma); the cut token's pieces
    are joined once it ends, so a token longer than any chunk costs linear time."""
    stats = stats if stats is not None else ReadStats()
    for path in list_files(paths):
        stats.files += 1
        sentence: list[str] = []
        pending: list[str] = []  # the pieces of a token cut by the chunk boundary
        for text in _decoded_chunks(path, stats):
            last = _SPACE.search(text[::-1])  # the chunk's last whitespace
            if last is None:
                pending.append(text)
                continue
            cut = len(text) - last.start()
            complete = "".join(pending) + text[:cut]
            pending = [text[cut:]] if cut < len(text) else []
            if lowercase:
                complete = complete.lower()
            lines = complete.split("\n")
            for line in lines[:-1]:
                sentence.extend(line.split())
                stats.lines += 1
                yield from _pieces(sentence, max_sentence_length, stats, final=True)
                sentence = []
            sentence.extend(lines[-1].split())
            sentence = yield from _pieces(sentence, max_sentence_length, stats, final=False)
        rest = "".join(pending)
        sentence.extend((rest.lower() if lowercase else rest).split())
        if sentence:
            stats.lines += 1
            yield from _pieces(sentence, max_sentence_length, stats, final=True)
