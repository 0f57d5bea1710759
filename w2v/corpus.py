"""Encode the corpus once into a flat int32 array of word ids plus sentence offsets, cached on disk."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .reader import ReadStats, iter_sentences, list_files
from .vocab import Vocab

FORMAT_VERSION = 1
FLUSH_TOKENS = 1 << 20  # ids buffered before appending to the cache file


@dataclass
class EncodedCorpus:
    """Word ids of every in-vocabulary token (OOV dropped, as word2vec.c does) and sentence starts.

    `ids` is memory-mapped; `offsets[i]:offsets[i+1]` is sentence i. `raw_tokens` counts all tokens
    read, OOV included; the learning-rate schedule and progress count in-vocabulary tokens."""
    ids: np.ndarray
    offsets: np.ndarray
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


def encode_corpus(paths: list[str], vocab: Vocab, cache_dir: str | Path, lowercase: bool = True,
                  max_sentence_length: int = 1000, stats: ReadStats | None = None) -> EncodedCorpus:
    """Return the encoded corpus, reusing the cache when files and vocabulary are unchanged."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = corpus_fingerprint(paths, lowercase, max_sentence_length, vocab)
    ids_path, meta_path = cache_dir / f"corpus-{key}.ids", cache_dir / f"corpus-{key}.json"
    off_path = cache_dir / f"corpus-{key}.offsets.npy"
    if meta_path.exists() and ids_path.exists() and off_path.exists():
        meta = json.loads(meta_path.read_text())
        offsets = np.load(off_path)
        ids = np.memmap(ids_path, dtype=np.int32, mode="r", shape=(int(offsets[-1]),)) if offsets[-1] else np.zeros(0, np.int32)
        return EncodedCorpus(ids, offsets, meta["raw_tokens"])

    index = vocab.index
    lengths: list[int] = []
    buffer: list[int] = []
    raw_tokens = 0
    tmp_ids = ids_path.with_suffix(".ids.tmp")
    try:
        with open(tmp_ids, "wb") as out:
            for sentence in iter_sentences(paths, lowercase, max_sentence_length, stats):
                raw_tokens += len(sentence)
                encoded = [i for i in map(index.get, sentence) if i is not None]
                if encoded:
                    buffer.extend(encoded)
                    lengths.append(len(encoded))
                if len(buffer) >= FLUSH_TOKENS:
                    out.write(np.asarray(buffer, dtype=np.int32).tobytes())
                    buffer.clear()
            out.write(np.asarray(buffer, dtype=np.int32).tobytes())
            out.flush()
            os.fsync(out.fileno())
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        with atomic_write(off_path, "wb") as f:
            np.save(f, offsets)
        os.replace(tmp_ids, ids_path)
    finally:
        if tmp_ids.exists():
            tmp_ids.unlink()
    with atomic_write(meta_path, "w") as f:
        json.dump({"raw_tokens": raw_tokens, "tokens": int(offsets[-1]), "sentences": len(lengths),
                   "paths": [str(p) for p in paths]}, f)
    ids = np.memmap(ids_path, dtype=np.int32, mode="r", shape=(int(offsets[-1]),)) if offsets[-1] else np.zeros(0, np.int32)
    return EncodedCorpus(ids, offsets, raw_tokens)
