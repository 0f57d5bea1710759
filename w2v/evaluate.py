"""w2v's benchmark of word vectors: word-pair Spearman, 3CosAdd/3CosMul analogies, coverage, semantic/syntactic."""

import math
import os
from pathlib import Path

import numpy as np

from w2v.keyedvectors import KeyedVectors
from w2v.stats import spearman

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


def _limit(kv, restrict):
    """Candidates: the first `restrict` words (all when None)."""
    return len(kv) if restrict is None else max(0, min(int(restrict), len(kv)))


def analogy(kv, a, b, c, topn=1, method="add", restrict_vocab=None):
    """Answer a:b :: c:? as [(word, score)], the question words and their case variants excluded.

    Words are looked up with case folded (KeyedVectors.lookup). method 'add' is 3CosAdd
    (score = cos(x, b - a + c)); 'mul' is 3CosMul (Levy & Goldberg 2014).
    """
    n = _limit(kv, restrict_vocab)
    rows = []
    for word in (a, b, c):
        row = kv.lookup(word)
        if row is None:
            raise KeyError(f"word {word!r} is not in the vocabulary (case folded)")
        rows.append(row)
    unit = kv.get_normed_vectors()
    cos = unit[rows] @ unit[:n].T
    norm = _target_norms(unit, *([r] for r in rows))
    scores = _analogy_scores(cos[0:1], cos[1:2], cos[2:3], norm, method)[0]
    _mask_rows(kv, scores, rows, n)
    return kv.top(scores, topn)


def _mask_rows(kv, scores, rows, n):
    """Set to -inf the scores of `rows` and of their case variants below candidate limit n."""
    for r in rows:
        for v in kv.case_variants(r):
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


def _none_if_nan(value):
    return None if value is None or math.isnan(value) else value


def _as_vectors(kv):
    """KeyedVectors as given, or read from a word2vec file."""
    return kv if isinstance(kv, KeyedVectors) else KeyedVectors.load_word2vec_format(kv)


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


def evaluate_word_pairs(kv, path, restrict_vocab=None, oov=False):
    """Spearman correlation between cosine and human scores over `w1<TAB>w2<TAB>score` lines.

    Pairs with a word outside the vocabulary (or its first `restrict_vocab` words) are skipped
    and counted; with oov=True (a subword model, FastTextKeyedVectors) such a word gets the vector
    of its n-grams instead (of its lowercase form, as fastText's evaluation lowercases), so every
    pair is scored. Returns dict(spearman, pairs, oov, total, oov_ratio); spearman is None if
    undefined; `oov` counts the pairs with a word outside the vocabulary (scored or skipped).
    """
    kv = _as_vectors(kv)
    if oov and not getattr(kv, "has_ngrams", False):
        raise ValueError(f"{path}: scoring out-of-vocabulary pairs needs a subword model with n-grams")
    n = _limit(kv, restrict_vocab)
    rows, words, human, total, missed = [], [], [], 0, 0
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
        pair = (fields[0].strip(), fields[1].strip())
        found = [kv.lookup(w) for w in pair]
        found = [i if i is not None and i < n else -1 for i in found]
        if min(found) < 0:
            missed += 1
            if not oov:
                continue
        rows.append(found)
        words.append(pair)
        human.append(score)
    pairs = np.array(rows, dtype=np.int64).reshape(-1, 2)
    unit = kv.get_normed_vectors()
    first, second = unit[pairs[:, 0]], unit[pairs[:, 1]]
    for side, vectors in ((0, first), (1, second)):
        fill = np.flatnonzero(pairs[:, side] < 0)
        if len(fill):
            vectors[fill] = kv.oov_vectors([words[i][side].lower() for i in fill])
            lengths = np.linalg.norm(vectors[fill], axis=1, keepdims=True)
            vectors[fill] /= np.where(lengths > 0, lengths, 1.0)
    cosines = np.einsum("ij,ij->i", first, second)
    return {
        "spearman": _none_if_nan(spearman(cosines, human)),
        "pairs": len(rows),
        "oov": missed,
        "total": total,
        "oov_ratio": missed / total if total else None,
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


def evaluate_analogies(kv, path, restrict_vocab=30000, method="add"):
    """Accuracy on Google-format analogies a:b :: c:d, as word2vec.c's compute-accuracy counts it.

    Everything is lowercased. Only the first `restrict_vocab` words (the most frequent) are
    candidates, and a question with any word outside them is skipped as OOV. Accuracy is
    correct / answered; sections named 'gram*' are syntactic, the others semantic.
    """
    if method not in ("add", "mul"):
        raise ValueError(f"unknown analogy method {method!r}, expected 'add' or 'mul'")
    kv = _as_vectors(kv)
    n = _limit(kv, restrict_vocab)
    # Lowercase form -> first (most frequent) candidate row; canon maps each row to that row.
    folded = {}
    for i in range(n):
        folded.setdefault(kv.index_to_key[i].lower(), i)
    canon = np.fromiter((folded[w.lower()] for w in kv.index_to_key[:n]), dtype=np.int64, count=n)
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
    unit = kv.get_normed_vectors()[:n]
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
                    for v in {v for i in ids for v in kv.case_variants(i)}:
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


def evaluate_all(kv, data_dir=None, restrict_vocab=30000, wordsim=None, simlex=None, analogies=None, oov=False):
    """Run WordSim-353, SimLex-999 and the Google analogies (3CosAdd and 3CosMul).

    Files default to `data_dir` (default: default_data_dir()); wordsim/simlex/analogies override
    single paths. `restrict_vocab` limits analogy candidates; word pairs use the whole vocabulary.
    oov=True (a subword model) adds wordsim353_oov and simlex999_oov: every pair scored, the words
    outside the vocabulary from their n-grams.
    """
    kv = _as_vectors(kv)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    wordsim = wordsim if wordsim is not None else data_dir / WORDSIM353
    simlex = simlex if simlex is not None else data_dir / SIMLEX999
    analogies = analogies if analogies is not None else data_dir / ANALOGIES
    result = {
        "wordsim353": evaluate_word_pairs(kv, os.fspath(wordsim)),
        "simlex999": evaluate_word_pairs(kv, os.fspath(simlex)),
        "analogy_3cosadd": evaluate_analogies(kv, os.fspath(analogies), restrict_vocab, "add"),
        "analogy_3cosmul": evaluate_analogies(kv, os.fspath(analogies), restrict_vocab, "mul"),
    }
    if oov:
        result["wordsim353_oov"] = evaluate_word_pairs(kv, os.fspath(wordsim), oov=True)
        result["simlex999_oov"] = evaluate_word_pairs(kv, os.fspath(simlex), oov=True)
    return result
