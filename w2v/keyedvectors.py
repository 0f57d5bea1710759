"""KeyedVectors: trained word vectors with gensim 4's query API, formats and conversions."""

import logging
import os
from numbers import Integral
from pathlib import Path

import numpy as np

from w2v import kv_eval
from w2v.atomic import atomic_write
from w2v.export import load_word2vec, save_word2vec_binary, save_word2vec_text

log = logging.getLogger("w2v")

# First line of the vocabulary file written by KeyedVectors.save (the vectors go beside it as .npy).
_MAGIC = "w2v-keyedvectors"
_FORMAT_VERSION = 1
_KEY_TYPES = (str, Integral)


def _as_items(value):
    """gensim's argument forms: None, one key, one vector, a 2-D array of vectors, or a list of them."""
    if value is None:
        return []
    if isinstance(value, _KEY_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return list(value)
    return list(value)


def _vectors_path(path):
    return Path(str(os.fspath(path)) + ".vectors.npy")


class KeyedVectors:
    """Words (most frequent first), their vectors [V, D] float32 and optional counts.

    `kv[word]` and every query look words up exactly: a missing word raises KeyError naming it.
    The evaluation methods fold case when asked (case_insensitive=True), as gensim's do.
    """

    def __init__(self, words, vectors, counts=None):
        if not isinstance(vectors, np.ndarray):  # an np.memmap stays one: no copy, still on disk
            vectors = np.asarray(vectors)
        if vectors.dtype != np.float32:
            vectors = vectors.astype(np.float32)
        words = list(words)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"need one row per word: {len(words)} words, vectors of shape {vectors.shape}")
        key_to_index = {}
        for i, word in enumerate(words):
            if not isinstance(word, str):
                raise ValueError(f"word {i} is {word!r}, not a str")
            if key_to_index.setdefault(word, i) != i:
                raise ValueError(f"word {word!r} appears twice (rows {key_to_index[word]} and {i})")
        if counts is not None:
            counts = np.asarray(counts, dtype=np.int64)
            if counts.shape != (len(words),):
                raise ValueError(f"need one count per word: {len(words)} words, counts of shape {counts.shape}")
        self.index_to_key = words
        self.key_to_index = key_to_index
        self.vectors = vectors
        self.counts = counts
        self._norms = None
        self._unit = None
        self._folded = None  # lowercase form -> rows with that form, built on demand

    # --- construction and files ---------------------------------------------------------

    @classmethod
    def load_word2vec_format(cls, fname, fvocab=None, binary=None, unicode_errors="strict", limit=None):
        """Read a word2vec.c text or binary file; binary=None (the default) detects the format.

        `fvocab` is a `word count` file (word2vec.c's -save-vocab, w2v's vocab.txt) giving the counts.
        """
        words, vectors = load_word2vec(fname, binary=binary, unicode_errors=unicode_errors, limit=limit)
        counts = _read_counts(fvocab, words) if fvocab is not None else None
        return cls(words, vectors, counts)

    def save_word2vec_format(self, fname, fvocab=None, binary=False):
        """Write word2vec.c's text (binary=False) or binary format, in the stored order."""
        (save_word2vec_binary if binary else save_word2vec_text)(fname, self.index_to_key, self.vectors)
        if fvocab is not None:
            if self.counts is None:
                raise ValueError(f"{fvocab}: no counts to write (these vectors were made without counts)")
            with atomic_write(fvocab, "w") as f:
                f.writelines(f"{w} {c}\n" for w, c in zip(self.index_to_key, self.counts.tolist()))

    def save(self, fname):
        """w2v's own format: `fname` holds the vocabulary with counts, `fname.vectors.npy` the vectors.

        The .npy can be memory-mapped by load(fname, mmap='r'). The vectors are written first, so a
        vocabulary file always has complete vectors beside it; load checks that their shapes agree.
        """
        for word in self.index_to_key:
            if not word or any(ch in word for ch in "\t\n\r"):
                raise ValueError(f"word {word!r} is empty or holds a tab or line break: cannot save it")
        with atomic_write(_vectors_path(fname), "wb") as f:
            np.save(f, np.ascontiguousarray(self.vectors), allow_pickle=False)
        n, dim = self.vectors.shape
        has_counts = self.counts is not None
        with atomic_write(fname, "w") as f:
            f.write(f"{_MAGIC} {_FORMAT_VERSION} {n} {dim} {'counts' if has_counts else 'nocounts'}\n")
            if has_counts:
                f.writelines(f"{w}\t{c}\n" for w, c in zip(self.index_to_key, self.counts.tolist()))
            else:
                f.writelines(f"{w}\n" for w in self.index_to_key)

    @classmethod
    def load(cls, fname, mmap=None):
        """Read what save() wrote; mmap='r' maps the vectors from disk instead of reading them."""
        fname = os.fspath(fname)
        with open(fname, "rb") as f:
            lines = f.read().decode("utf-8").split("\n")
        head = lines[0].split()
        if len(head) != 5 or head[0] != _MAGIC or head[4] not in ("counts", "nocounts"):
            raise ValueError(f"{fname}:1: not a w2v KeyedVectors file (saved by KeyedVectors.save)")
        if head[1] != str(_FORMAT_VERSION):
            raise ValueError(f"{fname}:1: format version {head[1]}, this w2v reads version {_FORMAT_VERSION}")
        n, dim = int(head[2]), int(head[3])
        rows = lines[1:n + 1]
        if len(rows) != n or any(lines[n + 1:]):
            raise ValueError(f"{fname}: header announces {n} words, the file holds {len(lines) - 1} lines")
        counts = None
        if head[4] == "counts":
            pairs = [row.rsplit("\t", 1) for row in rows]
            words = [p[0] for p in pairs]
            try:
                counts = np.array([int(p[1]) for p in pairs], dtype=np.int64)
            except (IndexError, ValueError):
                bad = next(i for i, p in enumerate(pairs) if len(p) != 2 or not p[1].lstrip("-").isdigit())
                raise ValueError(f"{fname}:{bad + 2}: expected 'word<TAB>count', got {rows[bad][:80]!r}") from None
        else:
            words = rows
        npy = _vectors_path(fname)
        vectors = np.load(npy, mmap_mode=mmap, allow_pickle=False)
        if vectors.shape != (n, dim) or vectors.dtype != np.float32:
            raise ValueError(f"{npy}: vectors of shape {vectors.shape} ({vectors.dtype}) do not match "
                             f"{fname} ({n} words x {dim} dims, float32)")
        return cls(words, vectors, counts)

    @classmethod
    def from_gensim(cls, kv):
        """Copy a gensim KeyedVectors (or a model with `.wv`) with its counts when it has them."""
        kv = getattr(kv, "wv", kv)
        return cls(list(kv.index_to_key), np.array(kv.vectors, dtype=np.float32), gensim_counts(kv))

    def to_gensim(self):
        """A real gensim.models.KeyedVectors with the same words, vectors and counts."""
        try:
            from gensim.models import KeyedVectors as GensimKeyedVectors
        except ImportError as e:
            raise ImportError("to_gensim() needs gensim: pip install gensim") from e
        kv = GensimKeyedVectors(vector_size=self.vector_size, count=0)
        kv.add_vectors(list(self.index_to_key), np.array(self.vectors, dtype=np.float32))
        if self.counts is not None:
            for word, count in zip(self.index_to_key, self.counts.tolist()):
                kv.set_vecattr(word, "count", count)
        return kv

    def save_projector(self, folder, limit=10000):
        """Write vectors.tsv and metadata.tsv of the `limit` most frequent words for the embedding
        projector (projector.tensorflow.org, TensorBoard): one row each, tab-separated values, and a
        one-column metadata file without a header row, as the projector expects for plain labels."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        order = np.arange(len(self)) if self.counts is None else np.argsort(-self.counts, kind="stable")
        order = order[:max(0, int(limit))]
        words = [self.index_to_key[i] for i in order]
        for word in words:
            if not word or any(ch in word for ch in "\t\n\r"):
                raise ValueError(f"word {word!r} is empty or holds a tab or line break: the TSV cannot hold it")
        with atomic_write(folder / "vectors.tsv", "w") as f:
            np.savetxt(f, self.vectors[order], fmt="%.6g", delimiter="\t")
        with atomic_write(folder / "metadata.tsv", "w") as f:
            f.writelines(f"{w}\n" for w in words)
        return folder / "vectors.tsv", folder / "metadata.tsv"

    # --- lookup -------------------------------------------------------------------------

    def __len__(self):
        return len(self.index_to_key)

    @property
    def vector_size(self):
        return self.vectors.shape[1]

    def get_index(self, key, default=None):
        """Row of `key` (a word, or a row number as gensim allows); KeyError naming it if absent."""
        i = self.key_to_index.get(key) if isinstance(key, str) else None
        if i is None and isinstance(key, Integral) and not isinstance(key, bool) and 0 <= key < len(self):
            i = int(key)
        if i is not None:
            return i
        if default is not None:
            return default
        raise KeyError(f"word {key!r} is not in the vocabulary")

    def __contains__(self, key):
        return self.get_index(key, -1) >= 0

    def get_vector(self, key, norm=False):
        """The vector of `key` (unit length when norm=True), read-only."""
        i = self.get_index(key)
        vector = self.vectors[i] / self.norms[i] if norm else self.vectors[i]
        vector = vector.view()
        vector.setflags(write=False)
        return vector

    def get_vectors(self, keys, norm=False):
        """[len(keys), D]: the vectors of `keys` (unit length when norm=True), a copy."""
        rows = [self.get_index(k) for k in keys]
        out = np.array(self.vectors[rows], dtype=np.float32).reshape(len(rows), self.vector_size)
        return out / self.norms[rows, None] if norm else out

    def __getitem__(self, key_or_keys):
        """One vector for a word, a [len, D] array for a list of words."""
        if isinstance(key_or_keys, _KEY_TYPES):
            return self.get_vector(key_or_keys)
        return self.get_vectors(key_or_keys)

    def get_vecattr(self, key, attr):
        """gensim's per-word attributes; w2v has 'count' (when the vectors came with counts)."""
        if attr != "count":
            raise KeyError(f"no attribute {attr!r}: w2v vectors carry 'count' only")
        if self.counts is None:
            raise KeyError("these vectors have no counts (load them with fvocab=, or pass counts=)")
        return int(self.counts[self.get_index(key)])

    def fill_norms(self, force=False):
        """Compute the row norms (after changing `vectors` in place, call with force=True)."""
        if self._norms is None or force:
            norms = np.linalg.norm(self.vectors, axis=1)
            # A zero vector gets similarity 0 with everything instead of NaN.
            self._norms = np.where(norms > 0, norms, 1.0).astype(np.float32)
            self._unit = None

    @property
    def norms(self):
        self.fill_norms()
        return self._norms

    def get_normed_vectors(self):
        """All vectors scaled to unit length (computed once, then kept; read-only)."""
        if self._unit is None:
            unit = self.vectors / self.norms[:, None]
            unit.setflags(write=False)
            self._unit = unit
        return self._unit

    def lookup(self, word):
        """Row of `word` with case folded, for the evaluation: the exact word, else its lowercase
        form, else its first case variant; None if absent. kv[word] never folds."""
        i = self.key_to_index.get(word)
        if i is None:
            i = self.key_to_index.get(word.lower())
        if i is None:
            rows = self._folds().get(word.lower())
            i = rows[0] if rows else None
        return i

    def case_variants(self, row):
        """All rows whose word has the same lowercase form as row `row` (including `row`)."""
        return self._folds().get(self.index_to_key[row].lower(), [row])

    def _folds(self):
        if self._folded is None:
            folded = {}
            for i, word in enumerate(self.index_to_key):
                folded.setdefault(word.lower(), []).append(i)
            self._folded = folded
        return self._folded

    # --- similarity queries (gensim 4 semantics) -----------------------------------------

    def _limit(self, restrict_vocab):
        return len(self) if not restrict_vocab else max(0, min(int(restrict_vocab), len(self)))

    def cosines(self, targets, n=None):
        """Cosine of each target row [Q, D] with the first n words: [Q, n], one matrix product.

        The targets are used as given: pass unit rows for cosines (a raw vector scales its row)."""
        n = len(self) if n is None else n
        return (np.asarray(targets, dtype=np.float32) @ self.vectors[:n].T) / self.norms[:n]

    def get_mean_vector(self, keys, weights=None, pre_normalize=True, post_normalize=False,
                        ignore_missing=True):
        """The weighted mean of the vectors of `keys` (words and/or vectors), divided by the sum of
        |weights|; words as unit vectors when pre_normalize, vectors as given; unit length when
        post_normalize. A missing word is skipped when ignore_missing, else KeyError."""
        keys = list(keys)
        if not keys:
            raise ValueError("cannot compute mean with no input")
        weights = np.ones(len(keys), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        if weights.shape != (len(keys),):
            raise ValueError("keys and weights array must have same number of elements")
        mean = np.zeros(self.vector_size, dtype=np.float32)
        total = 0.0
        for key, weight in zip(keys, weights):
            if isinstance(key, np.ndarray):
                vector = key.astype(np.float32, copy=False)
            elif key in self or not ignore_missing:
                vector = self.get_vector(key, norm=pre_normalize)
            else:
                continue
            mean += weight * vector
            total += abs(float(weight))
        if total > 0:
            mean /= np.float32(total)
        if post_normalize:
            length = np.linalg.norm(mean)
            mean = mean / length if length > 0 else mean
        return mean

    def _query(self, positive, negative):
        """(keys, weights, rows of the words among them) of gensim's positive/negative arguments:
        weight 1 and -1 unless a (key, weight) pair gives one."""
        keys, weights = [], []
        for item, sign in [(p, 1.0) for p in _as_items(positive)] + [(q, -1.0) for q in _as_items(negative)]:
            key, weight = item if isinstance(item, tuple) else (item, sign)
            keys.append(key)
            weights.append(weight)
        return keys, weights, self._rows_of(keys)

    def _rows_of(self, keys):
        """Rows of the words among query keys (vectors skipped), left out of the answers; KeyError
        for a word without a vector."""
        return [self.get_index(k) for k in keys if not isinstance(k, np.ndarray)]

    def top(self, scores, topn, exclude=()):
        """[(word, score)] of the `topn` best of `scores` (candidates are rows 0..len(scores)-1),
        rows in `exclude` and scores of -inf left out; ties go to the more frequent (earlier) word."""
        scores = np.array(scores, dtype=np.float32)
        n = len(scores)
        scores[[r for r in set(exclude) if r < n]] = -np.inf
        k = min(int(topn), int(np.count_nonzero(scores > -np.inf)))
        if k <= 0:
            return []
        # The k-th best score; ties at it go to the earlier words, deterministically.
        threshold = -np.partition(-scores, k - 1)[k - 1]
        above = np.flatnonzero(scores > threshold)
        best = np.concatenate([above, np.flatnonzero(scores == threshold)[:k - len(above)]])
        best = best[np.lexsort((best, -scores[best]))]
        return [(self.index_to_key[i], float(scores[i])) for i in best]

    def most_similar(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """Words nearest (cosine) to the mean of the unit vectors of `positive` minus `negative`.

        Each may be a word, a vector, a list of words and/or vectors, or of (word, weight) pairs.
        Query words are left out of the answers; only the first `restrict_vocab` words are searched.
        topn=None returns the scores of all searched words (query words included) as an array.
        """
        if isinstance(topn, Integral) and topn < 1:
            return []
        keys, weights, rows = self._query(positive, negative)
        mean = self.get_mean_vector(keys, weights, pre_normalize=True, post_normalize=True, ignore_missing=False)
        scores = self.cosines(mean[None, :], self._limit(restrict_vocab))[0]
        return scores if topn is None else self.top(scores, topn, rows)

    def similar_by_word(self, word, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[word], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """3CosMul (Levy & Goldberg 2014): the product of the positives' cosines over the product of
        the negatives' (+1e-6), each shifted to [0, 1] as (1 + cos) / 2. Words are unit vectors,
        vectors are used as given. Unlike gensim 4.4, restrict_vocab limits the candidates."""
        if isinstance(topn, Integral) and topn < 1:
            return []
        positive, negative = _as_items(positive), _as_items(negative)
        if not positive:
            raise ValueError("cannot compute similarity with no input: give at least one positive word")
        rows = self._rows_of(positive + negative)
        terms = np.stack([w.astype(np.float32) if isinstance(w, np.ndarray) else self.get_vector(w, norm=True)
                          for w in positive + negative])
        shifted = (1.0 + self.cosines(terms, self._limit(restrict_vocab))) / 2.0
        scores = np.prod(shifted[:len(positive)], axis=0) / (np.prod(shifted[len(positive):], axis=0) + 1e-6)
        return scores if topn is None else self.top(scores, topn, rows)

    def similarity(self, w1, w2):
        """Cosine similarity of two words."""
        return float(self.get_vector(w1, norm=True) @ self.get_vector(w2, norm=True))

    def distance(self, w1, w2):
        """Cosine distance, 1 - similarity."""
        return 1.0 - self.similarity(w1, w2)

    def n_similarity(self, ws1, ws2):
        """Cosine of the means of the (raw) vectors of two word lists; KeyError for a missing word
        (gensim skips it silently)."""
        if not (len(ws1) and len(ws2)):
            raise ZeroDivisionError("At least one of the passed list is empty.")
        m1 = self.get_mean_vector(ws1, pre_normalize=False, post_normalize=True, ignore_missing=False)
        m2 = self.get_mean_vector(ws2, pre_normalize=False, post_normalize=True, ignore_missing=False)
        return float(m1 @ m2)

    def distances(self, word_or_vector, other_words=()):
        """Cosine distances from a word or vector to `other_words` (default: every word, itself too)."""
        v = self.get_vector(word_or_vector) if isinstance(word_or_vector, _KEY_TYPES) else \
            np.asarray(word_or_vector, dtype=np.float32)
        if other_words:
            rows = [self.get_index(w) for w in other_words]
            others, norms = self.vectors[rows], self.norms[rows]
        else:
            others, norms = self.vectors, self.norms
        return 1.0 - (others @ v) / (norms * np.linalg.norm(v))

    def closer_than(self, key1, key2):
        """Words closer to key1 than key2 is (key1 itself left out)."""
        d = self.distances(key1)
        i1, i2 = self.get_index(key1), self.get_index(key2)
        return [self.index_to_key[i] for i in np.flatnonzero(d < d[i2]) if i != i1]

    def words_closer_than(self, word1, word2):
        return self.closer_than(word1, word2)

    def rank(self, key1, key2):
        """1 + the number of words closer to key1 than key2 is."""
        return len(self.closer_than(key1, key2)) + 1

    def rank_by_centrality(self, words, use_norm=True):
        """[(cosine, word)] with the normalised mean of the words' vectors (unit vectors when
        use_norm), most central first. Words not in the vocabulary are left out with a warning,
        as gensim does."""
        used = [w for w in words if w in self]
        if len(used) != len(words):
            log.warning("vectors for words %s are not present in the model, ignoring these words",
                        sorted(set(words) - set(used)))
        if not used:
            raise ValueError("cannot select a word from an empty list")
        vectors = np.stack([self.get_vector(w, norm=use_norm) for w in used])
        mean = self.get_mean_vector(vectors, post_normalize=True)
        return sorted(zip((vectors @ mean).tolist(), used), reverse=True)

    def doesnt_match(self, words):
        """The word farthest (cosine) from the normalised mean of the words' unit vectors."""
        return self.rank_by_centrality(words)[-1][1]

    def analogy(self, a, b, c, topn=1, method="add", restrict_vocab=None):
        """w2v's a:b :: c:? as its benchmark answers it: 3CosAdd (method='add') or 3CosMul ('mul',
        eps 1e-3 as Levy & Goldberg), case folded, the question words and their case variants left out."""
        from w2v.evaluate import analogy  # evaluate imports this module; it holds the benchmark's formulas
        return analogy(self, a, b, c, topn=topn, method=method, restrict_vocab=restrict_vocab)

    # --- gensim's benchmarks --------------------------------------------------------------

    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                            case_insensitive=True, dummy4unknown=False):
        """(pearson, spearman, oov_ratio) on a word-pair file, as gensim computes them."""
        return kv_eval.word_pairs(self, pairs, delimiter, encoding, restrict_vocab, case_insensitive,
                                  dummy4unknown)

    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True,
                                dummy4unknown=False):
        """(score, sections) on a Google-format analogy file, as gensim computes them (3CosAdd)."""
        return kv_eval.word_analogies(self, analogies, restrict_vocab, case_insensitive, dummy4unknown)

    def __repr__(self):
        return f"KeyedVectors({len(self)} words, {self.vector_size} dims)"


def gensim_counts(kv):
    """The 'count' of each word of a gensim KeyedVectors, or None when it has none."""
    if "count" not in getattr(kv, "expandos", {}):
        return None
    return np.asarray(kv.expandos["count"][:len(kv.index_to_key)], dtype=np.int64)


def _read_counts(fvocab, words):
    """Counts for `words` from a `word count` file; a word missing from it is an error."""
    counts = {}
    with open(fvocab, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            parts = raw.decode("utf-8").split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit():
                raise ValueError(f"{fvocab}:{lineno}: expected 'word count', got {raw[:80]!r}")
            counts.setdefault(parts[0], int(parts[1]))
    missing = [w for w in words if w not in counts]
    if missing:
        raise ValueError(f"{fvocab}: no count for {len(missing)} word(s) of the vectors, e.g. {missing[0]!r}")
    return np.array([counts[w] for w in words], dtype=np.int64)
