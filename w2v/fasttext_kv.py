"""FastTextKeyedVectors: the vectors of a subword model, with a vector for any word from its n-grams."""

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from w2v.atomic import atomic_write
from w2v.keyedvectors import KeyedVectors, gensim_counts
from w2v.subwords import SubwordIndex, mean_rows, ngram_hashes

log = logging.getLogger("w2v")

# fastText's end-of-sentence word: its dictionary computes no n-grams for it (Dictionary::initNgrams).
EOS = "</s>"
# Beside a FastTextKeyedVectors.save file (the KeyedVectors.save pair: vocabulary + composed vectors).
_SUBWORDS_MAGIC = "w2v-fasttextvectors"
_SUBWORDS_VERSION = 1


def _sidecar(fname, suffix):
    return Path(str(os.fspath(fname)) + suffix)


def _as_torch(table):
    """A float32 torch view of `table` (no copy; a read-only memory map is only read from)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns that a read-only map is not writable
        return torch.from_numpy(np.asarray(table, dtype=np.float32))


def _mean_rows(table, offsets, rows):
    """subwords.mean_rows of a numpy table (memory-mapped or not), as numpy."""
    return mean_rows(_as_torch(table), torch.as_tensor(offsets, dtype=torch.int64),
                     torch.as_tensor(rows, dtype=torch.int64)).numpy()


class FastTextKeyedVectors(KeyedVectors):
    """The vectors of a subword model, as gensim's FastTextKeyedVectors behaves.

    `input_table` is the model's input table [V + bucket, D]: the V word rows, then the n-gram
    buckets (`vectors_vocab` and `vectors_ngrams` are views of its two parts). `vectors` holds the
    composed vectors of the vocabulary: the mean of a word's own row and its n-gram rows (pass
    `vectors` and `index`, the vocabulary's SubwordIndex, when already computed).

    A word outside the vocabulary gets the mean of its n-gram rows (the zero vector when it has no
    n-gram of min_n..max_n characters, as fastText and gensim return); `word in kv` is True for every
    word when the model has n-grams (gensim's semantics; use `key_to_index` for the vocabulary).
    `kv[word]`, `kv[list of words]` (OOV vectors computed in one batch), `most_similar`,
    `similarity` and the other queries take OOV words; answers are vocabulary words.
    Without n-grams (max_n 0 or bucket 0) an OOV word raises KeyError, as in gensim.
    """

    # The files save() writes beside `fname`.
    SIDECARS = (".vectors.npy", ".input.npy", ".output.npy", ".subwords.json")

    def __init__(self, words, input_table, min_n, max_n, bucket, counts=None, vectors=None, index=None):
        if not isinstance(input_table, np.ndarray):
            input_table = np.asarray(input_table)
        if input_table.dtype != np.float32:
            input_table = input_table.astype(np.float32)
        words = list(words)
        self.min_n, self.max_n = int(min_n), int(max_n)
        self.bucket = int(bucket) if self.max_n > 0 else 0
        expected = len(words) + self.bucket
        if input_table.ndim != 2 or input_table.shape[0] != expected:
            raise ValueError(f"need an input table of V + bucket = {len(words)} + {self.bucket} rows, "
                             f"got shape {input_table.shape}")
        self.input_table = input_table
        # bucket 0 means no n-grams whatever max_n says (gensim's convention)
        self.index = index if index is not None else \
            SubwordIndex(words, self.min_n, self.max_n if self.bucket else 0, max(self.bucket, 1))
        if vectors is None:
            vectors = self._compose(words)
        super().__init__(words, vectors, counts)

    def _compose(self, words):
        vectors = _mean_rows(self.input_table, self.index.offsets, self.index.rows)
        if EOS in words:  # fastText gives its end-of-sentence word no n-grams
            i = words.index(EOS)
            vectors[i] = self.input_table[i]
        return vectors

    @property
    def vectors_vocab(self):
        """The words' own rows [V, D] (gensim's name), a view of input_table."""
        return self.input_table[:len(self.index_to_key)]

    @property
    def vectors_ngrams(self):
        """The n-gram buckets [bucket, D] (gensim's name), a view of input_table."""
        return self.input_table[len(self.index_to_key):]

    @property
    def has_ngrams(self):
        return self.bucket > 0

    # --- lookup -------------------------------------------------------------------------

    def __contains__(self, key):
        if self.has_ngrams and isinstance(key, str):
            return True  # every word has a vector (gensim: "always True with char ngrams")
        return super().__contains__(key)

    def ngram_rows(self, words):
        """(offsets [len(words)+1], rows): the input-table rows of each word's n-grams (CSR)."""
        counts, hashes = ngram_hashes(list(words), self.min_n, self.max_n)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        rows = len(self.index_to_key) + hashes.astype(np.int64) % self.bucket
        return offsets, rows

    def oov_vectors(self, words):
        """[len(words), D]: the mean of each word's n-gram rows, whether or not it is in the
        vocabulary (zeros for a word without n-grams), computed in one batch."""
        if not self.has_ngrams:
            raise KeyError("cannot compute a vector for an out-of-vocabulary word: this model has no n-grams")
        offsets, rows = self.ngram_rows(words)
        empty = [w for w, n in zip(words, np.diff(offsets)) if n == 0]
        if empty:
            log.warning("no n-grams of %d..%d characters in %s: their vector is the origin",
                        self.min_n, self.max_n, ", ".join(repr(w) for w in empty[:5]))
        return _mean_rows(self.input_table, offsets, rows)

    def get_vectors(self, words, norm=False):
        """[len(words), D]: vocabulary words' composed vectors, the others' n-gram vectors (one
        batch); unit length when norm (a zero vector stays zero)."""
        words = list(words)
        rows = np.array([self.key_to_index.get(w, -1) if isinstance(w, str) else self.get_index(w)
                         for w in words], dtype=np.int64)
        known = rows >= 0
        out = np.empty((len(words), self.vector_size), dtype=np.float32)
        out[known] = self.vectors[rows[known]]
        if not known.all():
            missing = np.flatnonzero(~known)
            if not self.has_ngrams:
                self.get_index(words[missing[0]])  # KeyError naming the word
            out[missing] = self.oov_vectors([words[i] for i in missing])
        if norm:
            lengths = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.where(lengths > 0, lengths, 1.0)
        return out

    def get_vector(self, key, norm=False):
        """The vector of `key`: its composed vector in the vocabulary, else the mean of its n-gram
        rows (unit length when norm=True; the zero vector when it has no n-grams), read-only."""
        if not isinstance(key, str) or key in self.key_to_index or not self.has_ngrams:
            return super().get_vector(key, norm)
        vector = self.get_vectors([key], norm)[0]
        vector.setflags(write=False)
        return vector

    def _rows_of(self, keys):
        """Rows of the vocabulary words among the query keys (left out of the answers); an OOV word
        is a query like any other, without a row."""
        if not self.has_ngrams:
            return super()._rows_of(keys)
        return [self.get_index(k) for k in keys
                if not isinstance(k, np.ndarray) and (not isinstance(k, str) or k in self.key_to_index)]

    # --- files --------------------------------------------------------------------------

    def save(self, fname, output=None):
        """The whole model: `fname` + `fname.vectors.npy` as KeyedVectors.save writes them (so
        KeyedVectors.load reads the vocabulary's vectors), `fname.input.npy` the input table
        [V + bucket, D], `fname.output.npy` the output table when given (to continue training),
        and `fname.subwords.json` min_n, max_n and bucket. The .npy files can be memory-mapped by
        load(fname, mmap='r'); the vocabulary file is written last, so it never stands beside
        incomplete tables."""
        with atomic_write(_sidecar(fname, ".input.npy"), "wb") as f:
            np.save(f, np.ascontiguousarray(self.input_table), allow_pickle=False)
        output_path = _sidecar(fname, ".output.npy")
        if output is not None:
            with atomic_write(output_path, "wb") as f:
                np.save(f, np.ascontiguousarray(np.asarray(output, dtype=np.float32)), allow_pickle=False)
        elif output_path.exists():
            output_path.unlink()  # an older model's output table does not belong to this one
        meta = {"format": _SUBWORDS_MAGIC, "version": _SUBWORDS_VERSION, "min_n": self.min_n,
                "max_n": self.max_n, "bucket": self.bucket, "output": output is not None}
        with atomic_write(_sidecar(fname, ".subwords.json"), "w") as f:
            json.dump(meta, f)
        super().save(fname)

    @staticmethod
    def is_saved_model(fname):
        """Whether `fname` is a file written by FastTextKeyedVectors.save."""
        return _sidecar(fname, ".subwords.json").is_file()

    @classmethod
    def load(cls, fname, mmap=None):
        """Read what save() wrote; mmap='r' maps the tables from disk instead of reading them."""
        meta_path = _sidecar(fname, ".subwords.json")
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise ValueError(f"{meta_path}: missing: {fname} is not a subword model "
                             "(saved by FastTextKeyedVectors.save)") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{meta_path}: not valid JSON ({e})") from None
        if meta.get("format") != _SUBWORDS_MAGIC or meta.get("version") != _SUBWORDS_VERSION:
            raise ValueError(f"{meta_path}: not a w2v subword model of format version {_SUBWORDS_VERSION}")
        plain = KeyedVectors.load(fname, mmap=mmap)
        npy = _sidecar(fname, ".input.npy")
        table = np.load(npy, mmap_mode=mmap, allow_pickle=False)
        rows = len(plain) + (meta["bucket"] if meta["max_n"] > 0 else 0)
        if table.shape != (rows, plain.vector_size) or table.dtype != np.float32:
            raise ValueError(f"{npy}: input table of shape {table.shape} ({table.dtype}) does not match "
                             f"{fname} ({len(plain)} words + {meta['bucket']} buckets x {plain.vector_size} dims, float32)")
        return cls(plain.index_to_key, table, meta["min_n"], meta["max_n"], meta["bucket"], plain.counts,
                   vectors=plain.vectors)

    @staticmethod
    def load_output(fname, mmap=None):
        """The output table saved beside `fname`, or None when it was saved without one."""
        path = _sidecar(fname, ".output.npy")
        return np.load(path, mmap_mode=mmap, allow_pickle=False) if path.exists() else None

    # --- gensim -------------------------------------------------------------------------

    @classmethod
    def from_gensim(cls, kv):
        """Copy a gensim FastTextKeyedVectors (or a FastText model, through its `.wv`)."""
        kv = getattr(kv, "wv", kv)
        parts = [np.asarray(kv.vectors_vocab, dtype=np.float32)]
        if kv.bucket:
            parts.append(np.asarray(kv.vectors_ngrams, dtype=np.float32))
        return cls(list(kv.index_to_key), np.concatenate(parts), kv.min_n, kv.max_n, kv.bucket, gensim_counts(kv))

    def to_gensim(self):
        """A real gensim FastTextKeyedVectors with the same tables (gensim composes its vectors)."""
        try:
            from gensim.models.fasttext import FastTextKeyedVectors as GensimFastTextKeyedVectors
        except ImportError as e:
            raise ImportError("to_gensim() needs gensim: pip install gensim") from e
        kv = GensimFastTextKeyedVectors(self.vector_size, self.min_n, self.max_n, self.bucket)
        kv.add_vectors(list(self.index_to_key), np.array(self.vectors, dtype=np.float32))
        if self.counts is not None:
            for word, count in zip(self.index_to_key, self.counts.tolist()):
                kv.set_vecattr(word, "count", count)
        kv.vectors_vocab = np.array(self.vectors_vocab)
        kv.vectors_ngrams = np.array(self.vectors_ngrams)
        kv.recalc_char_ngram_buckets()
        kv.adjust_vectors()
        return kv

    def __repr__(self):
        return (f"FastTextKeyedVectors({len(self)} words, {self.vector_size} dims, n-grams "
                f"{self.min_n}..{self.max_n} in {self.bucket} buckets)")
