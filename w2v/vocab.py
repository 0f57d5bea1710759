"""Vocabulary: count words in one streaming pass, prune, sort by frequency, save/load vocab.txt."""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np

from .atomic import atomic_write


_COUNT = re.compile(r"[0-9]{1,19}")  # ASCII digits only ('²'.isdigit() is true but int() refuses it)


class VocabError(ValueError):
    """The vocabulary cannot be built or read; the message says why."""


class Vocab:
    """Words in frequency order (ties by word) with their corpus counts.

    `pack()` holds the words as one string until `words` is next read: a run needs them only to
    encode and to export, and a Python string per word costs about 60 bytes (4.5 MB for the
    benchmark's 73k words, over 200 MB for a 3M-word vocabulary)."""

    def __init__(self, words: list[str], counts: np.ndarray):
        self._words: list[str] | None = list(words)
        self._packed: str | None = None
        self._size = len(self._words)
        self._fingerprint: str | None = None
        self.counts = counts  # int64, same order as words

    @property
    def words(self) -> list[str]:
        if self._words is None:
            self._words, self._packed = self._packed.split("\n"), None
        return self._words

    def pack(self) -> None:
        """Join the words into one string (tokens hold no newline; if one does, stay unpacked)."""
        if self._words is not None and self._size:
            packed = "\n".join(self._words)
            if packed.count("\n") == self._size - 1:
                self._packed, self._words = packed, None

    def make_index(self) -> dict[str, int]:
        """word -> id. Not kept on the vocabulary: only encoding needs it, and a run holds the
        vocabulary to the end."""
        return {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return self._size

    @property
    def total(self) -> int:
        """Tokens in the corpus that are in the vocabulary (word2vec.c's train_words)."""
        return int(self.counts.sum())

    def fingerprint(self) -> str:
        """A hash of the words and counts (computed once: a vocabulary does not change)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for w, c in zip(self.words, self.counts.tolist()):
                h.update(f"{w} {c}\n".encode("utf-8"))
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def save(self, path: str | Path) -> None:
        """Write `word count` lines in frequency order."""
        with atomic_write(path, "w") as f:
            for w, c in zip(self.words, self.counts.tolist()):
                f.write(f"{w} {c}\n")

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        """Read `word count` lines (vocab.path). Each word once, each count a whole number >= 1,
        their total below 2**62 (the trainer sums counts in 64-bit integers)."""
        words, counts, first_line = [], [], {}
        total = 0
        try:
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    parts = line.split()
                    if not parts:
                        continue
                    if len(parts) != 2 or not _COUNT.fullmatch(parts[1]):
                        raise VocabError(f"{path}, line {n}: expected 'word count', got {line.strip()[:80]!r}")
                    word, count = parts[0], int(parts[1])
                    if count < 1:
                        raise VocabError(f"{path}, line {n}: the count of {word[:80]!r} is {count}; counts "
                                         f"must be >= 1")
                    if word in first_line:
                        raise VocabError(f"{path}, line {n}: {word[:80]!r} is listed twice (first at line "
                                         f"{first_line[word]}); each word must appear once")
                    total += count
                    if total >= 2**62:
                        raise VocabError(f"{path}, line {n}: the counts add up to more than 2**62")
                    first_line[word] = n
                    words.append(word)
                    counts.append(count)
        except OSError as e:
            raise VocabError(f"{path}: cannot read vocabulary ({e.strerror or e})") from None
        except UnicodeDecodeError as e:
            raise VocabError(f"{path}: not UTF-8 (byte 0x{e.object[e.start]:02x}); a vocab.txt is UTF-8") from None
        if not words:
            raise VocabError(f"{path}: vocabulary file is empty")
        return cls(words, np.asarray(counts, dtype=np.int64))


def count_words(sentences: Iterable[list[str]], max_distinct_words: int) -> tuple[dict[str, int], int]:
    """Count tokens; when more than `max_distinct_words` distinct words are held, drop the rarest
    (count <= r, r growing by one each time) as word2vec.c's ReduceVocab does, bounding memory."""
    counts: Counter = Counter()
    min_reduce = 1
    total = 0
    for sentence in sentences:
        total += len(sentence)
        counts.update(sentence)  # C-level counting loop
        if len(counts) > max_distinct_words:
            counts = Counter({w: c for w, c in counts.items() if c > min_reduce})
            min_reduce += 1
    return dict(counts), total


def build_vocab(counts: dict[str, int], min_count: int, max_vocab_size: int = 0) -> Vocab:
    """Keep words with count >= min_count, sort by count (desc) then word, cap at max_vocab_size."""
    kept = [(w, c) for w, c in counts.items() if c >= min_count]
    kept.sort(key=lambda wc: (-wc[1], wc[0]))
    if max_vocab_size:
        kept = kept[:max_vocab_size]
    if not kept:
        best = max(counts.values()) if counts else 0
        raise VocabError(f"no word occurs at least vocab.min_count={min_count} times "
                         f"(the most frequent occurs {best} times); lower vocab.min_count or add text")
    return Vocab([w for w, _ in kept], np.asarray([c for _, c in kept], dtype=np.int64))
