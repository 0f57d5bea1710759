"""The encoded corpus: a flat int32 array of word ids plus sentence offsets, cached on disk (w2v/pipeline.py
writes it; `write_encoding` is the Python reference's encoder)."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .diskarray import DiskArray
from .reader import list_files
from .vocab import Vocab

FORMAT_VERSION = 2  # 2: offsets as a flat int64 file, read like the ids (1 was an .npy)
FLUSH_TOKENS = 1 << 20  # ids buffered before appending to the cache file

log = logging.getLogger("w2v")


@dataclass
class EncodedCorpus:
    """Word ids of every in-vocabulary token (OOV dropped, as word2vec.c does) and sentence starts.

    `ids` and `offsets` are files read by slices (DiskArray), so memory does not grow with the
    corpus; `offsets[i]:offsets[i+1]` is sentence i. `raw_tokens` counts all tokens read, OOV
    included; the learning-rate schedule and progress count in-vocabulary tokens."""
    ids: DiskArray
    offsets: DiskArray
    raw_tokens: int

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])

    def sentence_of_token(self, start_sentence: int, end_sentence: int) -> np.ndarray:
        """Sentence index of each token in sentences [start, end), relative to `start`."""
        lengths = np.diff(self.offsets[start_sentence:end_sentence + 1])
        return np.repeat(np.arange(end_sentence - start_sentence, dtype=np.int64), lengths)


def corpus_fingerprint(paths: list[str], lowercase: bool, max_sentence_length: int, vocab: Vocab) -> str:
    """Identifies an encoding: the files (path, size, mtime), the reading settings and the vocabulary."""
    h = hashlib.sha256()
    h.update(f"v{FORMAT_VERSION} lower={lowercase} maxlen={max_sentence_length} vocab={vocab.fingerprint()}".encode())
    for f in list_files(paths):
        st = f.stat()
        h.update(f"|{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cached_encoding(ids_path: Path, off_path: Path, meta_path: Path) -> EncodedCorpus | None:
    """The cached encoding, or None when it is missing or its files do not agree (cut short)."""
    if not (meta_path.exists() and ids_path.exists() and off_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        tokens, sentences = int(meta["tokens"]), int(meta["sentences"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if ids_path.stat().st_size != 4 * tokens or off_path.stat().st_size != 8 * (sentences + 1):
        return None
    return EncodedCorpus(DiskArray(ids_path, np.int32), DiskArray(off_path, np.int64), meta["raw_tokens"])


def write_encoding(sentences: Iterable[list[str]], index: dict[str, int], ids_out, off_out) -> tuple[int, int, int]:
    """Append the ids of `sentences` (OOV dropped, empty sentences skipped) and their end offsets,
    after a leading 0, to two binary files; returns (raw tokens, tokens, sentences)."""
    ids_buf: list[int] = []
    ends: list[int] = [0]  # offsets not yet written, starting with the corpus's leading 0
    raw_tokens = tokens = n_sentences = 0
    for sentence in sentences:
        raw_tokens += len(sentence)
        encoded = [i for i in map(index.get, sentence) if i is not None]
        if encoded:
            ids_buf.extend(encoded)
            tokens += len(encoded)
            n_sentences += 1
            ends.append(tokens)
        if len(ids_buf) >= FLUSH_TOKENS:
            ids_out.write(np.asarray(ids_buf, dtype=np.int32).tobytes())
            off_out.write(np.asarray(ends, dtype=np.int64).tobytes())
            ids_buf.clear()
            ends.clear()
    ids_out.write(np.asarray(ids_buf, dtype=np.int32).tobytes())
    off_out.write(np.asarray(ends, dtype=np.int64).tobytes())
    return raw_tokens, tokens, n_sentences


