"""Character n-grams as fastText computes them, its hash, and the vocabulary's n-gram rows (CSR)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

BOW, EOW = "<", ">"  # fastText's word boundary markers
_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619


def _char_starts(b: bytes) -> list[int]:
    """Byte offsets where a UTF-8 character starts (any byte that is not 10xxxxxx), as fastText
    counts characters; the byte length closes the list."""
    return [i for i, c in enumerate(b) if c & 0xC0 != 0x80] + [len(b)]


def _spans(nchars: int, minn: int, maxn: int):
    """(first char, n) of each n-gram of a bracketed word of `nchars` characters, in fastText's
    order (by first character, then length). A 1-gram that is a boundary marker is left out; the
    whole "<word>" is one of the n-grams when it is no longer than maxn."""
    for i in range(nchars):
        for n in range(max(minn, 1), min(maxn, nchars - i) + 1):
            if n == 1 and (i == 0 or i + 1 == nchars):
                continue
            yield i, n


def ngrams(word: str, minn: int, maxn: int) -> list[str]:
    """The n-grams (minn..maxn characters) of "<word>", as fastText's Dictionary::computeSubwords."""
    b = (BOW + word + EOW).encode("utf-8")
    starts = _char_starts(b)
    return [b[starts[i]:starts[i + n]].decode("utf-8") for i, n in _spans(len(starts) - 1, minn, maxn)]


def fasttext_hash(s: str | bytes) -> int:
    """fastText's Dictionary::hash: 32-bit FNV-1a over the UTF-8 bytes, each byte widened as a
    signed char (so a byte >= 0x80 is XORed in as 0xFFFFFFxx)."""
    h = _FNV_OFFSET
    for c in s.encode("utf-8") if isinstance(s, str) else s:
        widened = (c - 256 if c >= 128 else c) & 0xFFFFFFFF
        h = ((h ^ widened) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def _hash_spans(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """fasttext_hash of each byte slice buf[start:end], vectorised over the slices (uint32)."""
    h = np.full(len(start), _FNV_OFFSET, dtype=np.uint32)
    widened = buf.view(np.int8).astype(np.int32).view(np.uint32)  # signed-char widening
    prime = np.uint32(_FNV_PRIME)
    length = end - start
    for k in range(int(length.max()) if len(length) else 0):
        live = np.nonzero(length > k)[0]
        h[live] = (h[live] ^ widened[start[live] + k]) * prime  # uint32 arithmetic wraps
    return h


_CHUNK = 1 << 16  # words per vectorised pass: bounds the temporaries for multi-million-word vocabularies


def ngram_hashes(words: Sequence[str], minn: int, maxn: int) -> tuple[np.ndarray, np.ndarray]:
    """(counts int64 [len(words)], hashes uint32 [sum counts]): the fasttext_hash of each word's
    n-grams, in ngrams() order, vectorised over the words."""
    if len(words) <= _CHUNK:
        return _ngram_hashes(words, minn, maxn)
    parts = [_ngram_hashes(words[a:a + _CHUNK], minn, maxn) for a in range(0, len(words), _CHUNK)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _ngram_hashes(words: Sequence[str], minn: int, maxn: int) -> tuple[np.ndarray, np.ndarray]:
    n_words = len(words)
    if n_words == 0 or maxn <= 0 or minn > maxn:
        return np.zeros(n_words, dtype=np.int64), np.zeros(0, dtype=np.uint32)
    enc = [(BOW + w + EOW).encode("utf-8") for w in words]
    blen = np.fromiter(map(len, enc), dtype=np.int64, count=n_words)
    buf = np.frombuffer(b"".join(enc), dtype=np.uint8)
    bstart = np.concatenate(([0], np.cumsum(blen)[:-1]))
    # Characters: global byte offset of each, the word it belongs to, its place in the word.
    cpos = np.nonzero((buf & 0xC0) != 0x80)[0]
    cword = np.searchsorted(bstart, cpos, side="right") - 1
    nchars = np.bincount(cword, minlength=n_words)
    cfirst = np.concatenate(([0], np.cumsum(nchars)[:-1]))
    cidx = np.arange(len(cpos)) - cfirst[cword]
    # An n-gram from char c of n chars ends where char c+n starts: the next word's first char
    # when it reaches the end of its word, or the buffer's end after the last word.
    cbound = np.concatenate((cpos, [len(buf)]))
    # Candidate (char, n) pairs laid out char-major then n: that is fastText's order.
    ns = np.arange(1, maxn + 1)
    c = np.repeat(np.arange(len(cpos)), maxn)
    n = np.tile(ns, len(cpos))
    w = cword[c]
    i = cidx[c]
    last = i + n  # one past the n-gram's last character, within the word
    keep = (n >= minn) & (last <= nchars[w]) & ~((n == 1) & ((i == 0) | (last == nchars[w])))
    c, n, w = c[keep], n[keep], w[keep]
    counts = np.bincount(w, minlength=n_words).astype(np.int64)
    return counts, _hash_spans(buf, cpos[c], cbound[c + n])


def mean_rows(table: torch.Tensor, offsets: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """[len(offsets) - 1, D]: for each word w the mean of table[rows[offsets[w]:offsets[w+1]]]
    (zeros for a word without rows) -- a subword model's word vectors, fastText's getWordVector."""
    if len(offsets) <= 1:
        return table[:0]
    return torch.nn.functional.embedding_bag(rows.long(), table, offsets[:-1], mode="mean")


class SubwordIndex:
    """Input-table rows of each vocabulary word, as CSR: word w's rows are
    rows[offsets[w]:offsets[w+1]] = its own row w, then V + hash % buckets for each of its
    n-grams in fastText's order (repeats kept, as fastText keeps them)."""

    def __init__(self, words: Sequence[str], minn: int, maxn: int, buckets: int):
        if maxn > 0 and buckets < 1:
            raise ValueError(f"buckets must be >= 1 when maxn > 0, got {buckets}")
        self.minn, self.maxn, self.buckets = int(minn), int(maxn), int(buckets)
        self.n_words = len(words)
        counts, hashes = ngram_hashes(words, self.minn, self.maxn)
        per_word = counts + 1
        offsets = np.zeros(self.n_words + 1, dtype=np.int64)
        np.cumsum(per_word, out=offsets[1:])
        rows = np.empty(int(offsets[-1]), dtype=np.int32)
        own = offsets[:-1]
        rows[own] = np.arange(self.n_words, dtype=np.int32)
        is_ngram = np.ones(len(rows), dtype=bool)
        is_ngram[own] = False
        if len(hashes):
            rows[is_ngram] = (self.n_words + hashes.astype(np.int64) % self.buckets).astype(np.int32)
        self.offsets = torch.from_numpy(offsets)
        self.rows = torch.from_numpy(rows)

    @property
    def n_rows(self) -> int:
        """Rows of the input table: V word rows, then the buckets (none when maxn is 0)."""
        return self.n_words + (self.buckets if self.maxn > 0 else 0)

    def oov_rows(self, word: str) -> np.ndarray:
        """Input-table rows of a word outside the vocabulary: its n-gram rows only (may be empty)."""
        _, hashes = ngram_hashes([word], self.minn, self.maxn)
        return (self.n_words + hashes.astype(np.int64) % self.buckets).astype(np.int64) if len(hashes) \
            else np.zeros(0, dtype=np.int64)

    def word_vectors(self, table: torch.Tensor) -> torch.Tensor:
        """The vocabulary's vectors [V, D] from an input table [n_rows, D]: each word's mean over its rows."""
        return mean_rows(table, self.offsets.to(table.device), self.rows.to(table.device))

    def to(self, device) -> "SubwordIndex":
        """Move offsets and rows to `device` (in place); returns self."""
        self.offsets, self.rows = self.offsets.to(device), self.rows.to(device)
        return self
