"""Stream sentences from text files (plain, .gz, .bz2, folders) in bounded memory."""
from __future__ import annotations

import bz2
import codecs
import gzip
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

CHUNK_CHARS = 1 << 20  # characters read at a time; a 100 MB single line (text8) never sits in memory


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
    """Expand folders (recursively, sorted, hidden files skipped) and check every file exists."""
    if not paths:
        raise CorpusError("corpus.paths is empty: give at least one file or folder")
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*")
                           if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts))
            if not found:
                raise CorpusError(f"{path}: folder contains no files to read")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"{path}: no such file or folder (from corpus.paths)")
    for f in files:
        if not os.access(f, os.R_OK):
            raise CorpusError(f"{f}: file is not readable (permission denied)")
    return files


def _open_binary(path: Path):
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


def _decoded_chunks(path: Path, stats: ReadStats) -> Iterator[str]:
    """Yield decoded text chunks; invalid UTF-8 is replaced by U+FFFD and counted, not fatal."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset = 0
    try:
        f = _open_binary(path)
    except OSError as e:
        raise CorpusError(f"{path}: cannot open the file ({e.strerror or e})") from None
    try:
        with f:
            while True:
                raw = f.read(CHUNK_CHARS)
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
    except (EOFError, OSError, zlib.error) as e:
        # Truncated or corrupt .gz/.bz2, or an I/O error: name the file and roughly where.
        raise CorpusError(f"{path}: cannot read past byte {offset} of the decompressed stream "
                          f"({type(e).__name__}: {e}); the file may be truncated or corrupt") from None


def iter_sentences(paths: list[str], lowercase: bool = True, max_sentence_length: int = 1000,
                   stats: ReadStats | None = None) -> Iterator[list[str]]:
    """Yield sentences as token lists. A newline ends a sentence; longer ones are cut into pieces
    of at most `max_sentence_length` tokens (word2vec.c's 1000), so memory stays bounded."""
    stats = stats if stats is not None else ReadStats()
    for path in list_files(paths):
        stats.files += 1
        sentence: list[str] = []
        carry = ""  # a token (or line) cut by the chunk boundary
        for text in _decoded_chunks(path, stats):
            if lowercase:
                text = text.lower()
            text = carry + text
            lines = text.split("\n")
            carry_line = lines.pop()  # unfinished last line
            for line in lines:
                sentence.extend(line.split())
                stats.lines += 1
                while len(sentence) >= max_sentence_length:
                    stats.tokens += max_sentence_length
                    yield sentence[:max_sentence_length]
                    sentence = sentence[max_sentence_length:]
                if sentence:
                    stats.tokens += len(sentence)
                    yield sentence
                sentence = []
            # Unfinished line: take its complete tokens now, keep only the last (maybe cut) token.
            cut = len(carry_line)
            while cut and not carry_line[cut - 1].isspace():
                cut -= 1
            head, tail = carry_line[:cut], carry_line[cut:]
            sentence.extend(head.split())
            carry = tail
            while len(sentence) >= max_sentence_length:
                stats.tokens += max_sentence_length
                yield sentence[:max_sentence_length]
                sentence = sentence[max_sentence_length:]
        sentence.extend(carry.split())
        if sentence:
            stats.lines += 1
            for i in range(0, len(sentence), max_sentence_length):
                piece = sentence[i:i + max_sentence_length]
                stats.tokens += len(piece)
                yield piece
