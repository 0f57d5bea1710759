"""Intrinsic evaluation of word vectors: word-pair similarity (Spearman) and analogies."""

import math
import os
from pathlib import Path

import numpy as np

from w2v.export import load_word2vec

# The eval sets shipped in the repository (data/eval/ next to the package).
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "eval"
WORDSIM353 = "wordsim353.tsv"
SIMLEX999 = "simlex999.txt"
ANALOGIES = "questions-words.txt"

# Levy & Goldberg (2014) add this to 3CosMul's denominator to avoid division by zero.
_MUL_EPS = 1e-3
# Cap, in elements (128 MB of float32), on the cosine table of question words x candidates.
_TABLE_ELEMENTS = 1 << 25
# Cap on one batch's score matrix: small enough (~1 MB) that the few passes over it stay in cache.
_BATCH_ELEMENTS = 1 << 18


class Embedding:
    """Word vectors in file order (most frequent first) with unit rows for cosine queries."""

    def __init__(self, words, vectors):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"need one row per word: {len(words)} words, vectors of shape {vectors.shape}")
        self.words = list(words)
        self.vectors = vectors
        self.index = {}
        for i, word in enumerate(self.words):
            self.index.setdefault(word, i)  # a duplicate keeps its more frequent (earlier) row
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        # A zero vector stays zero (cosine 0 with everything) instead of becoming NaN.
        self.unit = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
        self._folded = None  # lowercase form -> first row with that form, built on demand
        self._variants = None  # lowercase form -> all its rows, only for forms with several

    @classmethod
    def load(cls, path, binary=None):
        """Read a word2vec text or binary file (format sniffed when binary is None)."""
        return cls(*load_word2vec(path, binary=binary))

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return self.lookup(word) is not None

    @property
    def dim(self):
        return self.vectors.shape[1]

    def _build_folds(self):
        folded, variants = {}, {}
        for i, word in enumerate(self.words):
            key = word.lower()
            first = folded.setdefault(key, i)
            if first != i:
                variants.setdefault(key, [first]).append(i)
        self._folded, self._variants = folded, variants

    def lookup(self, word):
        """Row of `word`, or None: the exact word, else its lowercase form, else any case variant."""
        i = self.index.get(word)
        if i is None:
            i = self.index.get(word.lower())
        if i is None:
            if self._folded is None:
                self._build_folds()
            i = self._folded.get(word.lower())
        return i

    def case_variants(self, row):
        """All rows whose word has the same lowercase form as row `row` (including `row`)."""
        if self._variants is None:
            self._build_folds()
        return self._variants.get(self.words[row].lower(), [row])

    def _row(self, word):
        i = self.lookup(word)
        if i is None:
            raise KeyError(f"{word!r} is not in the vocabulary")
        return i

    def __getitem__(self, word):
        """The raw (not normalised) vector of `word`."""
        return self.vectors[self._row(word)]

    def _limit(self, restrict):
        return len(self.words) if restrict is None else max(0, min(int(restrict), len(self.words)))

    def most_similar(self, word_or_vector, topn=10, restrict=None):
        """[(word, cosine)] nearest to a word, a list of words (summed), or a vector.

        The query words are excluded; only the first `restrict` (most frequent) words are candidates.
        """
        n = self._limit(restrict)
        if isinstance(word_or_vector, str):
            word_or_vector = [word_or_vector]
        exclude = []
        if isinstance(word_or_vector, (list, tuple)) and all(isinstance(w, str) for w in word_or_vector):
            if not word_or_vector:
                raise ValueError("most_similar needs at least one query word")
            rows = [self._row(w) for w in word_or_vector]
            query = self.unit[rows].sum(axis=0)
            exclude = rows
        else:
            query = np.asarray(word_or_vector, dtype=np.float32)
            if query.shape != (self.dim,):
                raise ValueError(f"query vector must have shape ({self.dim},), got {query.shape}")
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        scores = self.unit[:n] @ query
        _mask_rows(self, scores, exclude, n)
        return self._top(scores, topn)

    def analogy(self, a, b, c, topn=1, method="add", restrict=None):
        """Answer a:b :: c:? as [(word, score)], the question words excluded.

        method 'add' is 3CosAdd (score = cos(x, b - a + c)); 'mul' is 3CosMul (Levy & Goldberg 2014).
        """
        n = self._limit(restrict)
        rows = [self._row(w) for w in (a, b, c)]
        cos = self.unit[rows] @ self.unit[:n].T
        norm = _target_norms(self.unit, *([r] for r in rows))
        scores = _analogy_scores(cos[0:1], cos[1:2], cos[2:3], norm, method)[0]
        _mask_rows(self, scores, rows, n)
        return self._top(scores, topn)

    def _top(self, scores, topn):
        k = min(int(topn), int(np.count_nonzero(scores > -np.inf)))
        if k <= 0:
            return []
        # The k-th best score; ties at it go to the more frequent (earlier) words, deterministically.
        threshold = -np.partition(-scores, k - 1)[k - 1]
        above = np.flatnonzero(scores > threshold)
        top = np.concatenate([above, np.flatnonzero(scores == threshold)[:k - len(above)]])
        top = top[np.lexsort((top, -scores[top]))]
        return [(self.words[i], float(scores[i])) for i in top]


def _mask_rows(emb, scores, rows, n):
    """Set to -inf the scores of `rows` and of their case variants below candidate limit n."""
    for r in rows:
        for v in emb.case_variants(r):
            if v < n:
                scores[..., v] = -np.inf


def _target_norms(unit, a, b, c):
    """|b - a + c| for unit rows a, b, c (index arrays): turns 3CosAdd's dot products into cosines."""
    target = unit[b] - unit[a] + unit[c]
    return np.maximum(np.linalg.norm(target, axis=1), 1e-12)


def _analogy_scores(cos_a, cos_b, cos_c, target_norm, method):
    """Scores (questions, candidates) from the cosines of each candidate with a, b and c.

    3CosAdd: cos(x, b - a + c) = (cos_b - cos_a + cos_c) / |b - a + c| for unit x, a, b, c.
    3CosMul: cos'_b cos'_c / (cos'_a + eps) with cos' = (cos + 1) / 2, which equals
    (cos_b + 1)(cos_c + 1) / (2 cos_a + 2 + 4 eps); the inputs are left unmodified.
    """
    if method == "add":
        scores = cos_b - cos_a
        scores += cos_c
        scores /= target_norm[:, None]
        return scores
    if method == "mul":
        scores = cos_b + 1.0
        tmp = cos_c + 1.0
        scores *= tmp
        np.multiply(cos_a, 2.0, out=tmp)
        tmp += 2.0 + 4.0 * _MUL_EPS
        scores /= tmp
        return scores
    raise ValueError(f"unknown analogy method {method!r}, expected 'add' or 'mul'")


def _rank(a):
    """1-based ranks of a 1-D array, ties given the average of the ranks they span."""
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    starts = np.r_[True, sorted_a[1:] != sorted_a[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)  # 0-based position where each tie group starts
    size = np.bincount(group)
    ranks = np.empty(len(a), dtype=np.float64)
    ranks[order] = (first + (size + 1) / 2.0)[group]
    return ranks


def spearman(x, y):
    """Spearman rank correlation (average ranks for ties); NaN if undefined (n < 2 or constant)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"spearman needs equal lengths, got {x.size} and {y.size}")
    if x.size < 2:
        return float("nan")
    rx, ry = _rank(x), _rank(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denom if denom > 0 else float("nan")


def _none_if_nan(value):
    return None if value is None or math.isnan(value) else value


def _as_embedding(emb):
    return emb if isinstance(emb, Embedding) else Embedding.load(emb)


def _read_lines(path):
    """Yield (line number, stripped line) for non-blank, non-'#' lines of a UTF-8 file."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{lineno}: line is not valid UTF-8") from None
            if line and not line.startswith("#"):
                yield lineno, line


def evaluate_word_pairs(emb, path, restrict_vocab=None):
    """Spearman correlation between cosine and human scores over `w1<TAB>w2<TAB>score` lines.

    Pairs with a word outside the vocabulary (or its first `restrict_vocab` words) are skipped
    and counted. Returns dict(spearman, pairs, oov, total, oov_ratio); spearman is None if undefined.
    """
    emb = _as_embedding(emb)
    n = emb._limit(restrict_vocab)
    rows, human, total = [], [], 0
    for lineno, line in _read_lines(path):
        fields = line.split("\t")
        if len(fields) != 3:
            fields = line.split()
        if len(fields) != 3:
            raise ValueError(f"{path}:{lineno}: expected 'word1<TAB>word2<TAB>score', got {line[:80]!r}")
        try:
            score = float(fields[2])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: score {fields[2]!r} is not a number") from None
        total += 1
        i, j = emb.lookup(fields[0].strip()), emb.lookup(fields[1].strip())
        if i is None or j is None or i >= n or j >= n:
            continue
        rows.append((i, j))
        human.append(score)
    pairs = np.array(rows, dtype=np.int64).reshape(-1, 2)
    cosines = np.einsum("ij,ij->i", emb.unit[pairs[:, 0]], emb.unit[pairs[:, 1]])
    oov = total - len(rows)
    return {
        "spearman": _none_if_nan(spearman(cosines, human)),
        "pairs": len(rows),
        "oov": oov,
        "total": total,
        "oov_ratio": oov / total if total else None,
    }


def _read_analogies(path):
    """Parse the Google format into [(section name, [(a, b, c, d) lowercased])]."""
    sections = []
    for lineno, line in _read_lines(path):
        if line.startswith(":"):
            sections.append((line[1:].strip(), []))
            continue
        words = line.lower().split()
        if len(words) != 4:
            raise ValueError(f"{path}:{lineno}: expected 4 words 'a b c d', got {line[:80]!r}")
        if not sections:
            sections.append(("", []))  # questions before any ': section' line
        sections[-1][1].append(tuple(words))
    return sections


def _tally(correct, answered, questions):
    return {
        "correct": int(correct),
        "questions_answered": int(answered),
        "questions": int(questions),
        "accuracy": correct / answered if answered else None,
    }


def evaluate_analogies(emb, path, restrict_vocab=30000, method="add"):
    """Accuracy on Google-format analogies a:b :: c:d, as word2vec.c's compute-accuracy counts it.

    Everything is lowercased. Only the first `restrict_vocab` words (the most frequent) are
    candidates, and a question with any word outside them is skipped as OOV. Accuracy is
    correct / answered; sections named 'gram*' are syntactic, the others semantic.
    """
    if method not in ("add", "mul"):
        raise ValueError(f"unknown analogy method {method!r}, expected 'add' or 'mul'")
    emb = _as_embedding(emb)
    n = emb._limit(restrict_vocab)
    # Lowercase form -> first (most frequent) candidate row; canon maps each row to that row.
    folded = {}
    for i in range(n):
        folded.setdefault(emb.words[i].lower(), i)
    canon = np.fromiter((folded[w.lower()] for w in emb.words[:n]), dtype=np.int64, count=n)
    # Question ids are canonical rows; these are the ones with other case variants to mask too.
    multi = set(canon[canon != np.arange(n)].tolist())

    sections = _read_analogies(path)
    questions, section_of = [], []
    for s, (_, items) in enumerate(sections):
        for words in items:
            ids = [folded.get(w) for w in words]
            if None not in ids:
                questions.append(ids)
                section_of.append(s)
    questions = np.array(questions, dtype=np.int64).reshape(-1, 4)
    section_of = np.array(section_of, dtype=np.int64)

    # The questions use few distinct words (905 in the Google set), so one cosine table
    # (distinct question word x candidate) replaces three matrix products per question.
    # Candidates are processed in column blocks that bound the table's size; each block
    # keeps the running best per question.
    unit = emb.unit[:n]
    distinct, inverse = np.unique(questions[:, :3].ravel(), return_inverse=True)
    inverse = inverse.reshape(-1, 3)
    norms = _target_norms(unit, questions[:, 0], questions[:, 1], questions[:, 2])
    best = np.full(len(questions), -np.inf, dtype=np.float32)
    answer = np.zeros(len(questions), dtype=np.int64)
    block = max(1, _TABLE_ELEMENTS // max(len(distinct), 1))
    for lo in range(0, n if len(questions) else 0, block):
        hi = min(n, lo + block)
        table = unit[distinct] @ unit[lo:hi].T
        batch = max(1, _BATCH_ELEMENTS // (hi - lo))
        for start in range(0, len(questions), batch):
            end = min(start + batch, len(questions))
            q, qi = questions[start:end], inverse[start:end]
            scores = _analogy_scores(table[qi[:, 0]], table[qi[:, 1]], table[qi[:, 2]],
                                     norms[start:end], method)
            rows = np.arange(end - start)
            for k in range(3):
                inside = (q[:, k] >= lo) & (q[:, k] < hi)
                scores[rows[inside], q[inside, k] - lo] = -np.inf
            # Rare: a question word with case variants among the candidates (e.g. 'US', 'us').
            for r, ids in enumerate(q[:, :3].tolist() if multi else ()):
                if not multi.isdisjoint(ids):
                    for v in {v for i in ids for v in emb.case_variants(i)}:
                        if lo <= v < hi:
                            scores[r, v - lo] = -np.inf
            top = scores.argmax(axis=1)
            top_score = scores[rows, top]
            # Strictly better only: a tie keeps the earlier, more frequent candidate.
            better = top_score > best[start:end]
            best[start:end][better] = top_score[better]
            answer[start:end][better] = top[better] + lo
    # best stays -inf only if every candidate was a question word: no answer, not a hit.
    hit = (best > -np.inf) & (canon[answer] == questions[:, 3])

    counts = {}  # section name -> [correct, answered, questions]; a repeated name merges
    for s, (name, items) in enumerate(sections):
        mine = section_of == s
        c = counts.setdefault(name, [0, 0, 0])
        c[0] += int(hit[mine].sum())
        c[1] += int(mine.sum())
        c[2] += len(items)
    groups = {"semantic": [0, 0, 0], "syntactic": [0, 0, 0]}
    for name, c in counts.items():
        g = groups["syntactic" if name.startswith("gram") else "semantic"]
        for k in range(3):
            g[k] += c[k]
    total_questions = sum(len(items) for _, items in sections)
    answered = len(questions)
    return {
        "method": method,
        "restrict_vocab": n,
        "semantic": _tally(*groups["semantic"]),
        "syntactic": _tally(*groups["syntactic"]),
        "total": _tally(int(hit.sum()), answered, total_questions),
        "oov": total_questions - answered,
        "total_questions": total_questions,
        "coverage": answered / total_questions if total_questions else None,
        "sections": {name: _tally(*c) for name, c in counts.items()},
    }


def default_data_dir():
    """The repository's data/eval/, else ./data/eval (e.g. when the package is installed)."""
    if REPO_DATA_DIR.is_dir():
        return REPO_DATA_DIR
    local = Path.cwd() / "data" / "eval"
    return local if local.is_dir() else REPO_DATA_DIR


def evaluate_all(emb, data_dir=None, restrict_vocab=30000, wordsim=None, simlex=None, analogies=None):
    """Run WordSim-353, SimLex-999 and the Google analogies (3CosAdd and 3CosMul).

    Files default to `data_dir` (default: default_data_dir()); wordsim/simlex/analogies override
    single paths. `restrict_vocab` limits analogy candidates; word pairs use the whole vocabulary.
    """
    emb = _as_embedding(emb)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    wordsim = wordsim if wordsim is not None else data_dir / WORDSIM353
    simlex = simlex if simlex is not None else data_dir / SIMLEX999
    analogies = analogies if analogies is not None else data_dir / ANALOGIES
    return {
        "wordsim353": evaluate_word_pairs(emb, os.fspath(wordsim)),
        "simlex999": evaluate_word_pairs(emb, os.fspath(simlex)),
        "analogy_3cosadd": evaluate_analogies(emb, os.fspath(analogies), restrict_vocab, "add"),
        "analogy_3cosmul": evaluate_analogies(emb, os.fspath(analogies), restrict_vocab, "mul"),
    }
