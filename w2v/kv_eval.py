"""gensim's evaluate_word_pairs / evaluate_word_analogies, with its results and rules, on KeyedVectors."""

import itertools

import numpy as np

from w2v.stats import pearson, spearman, with_pvalue

# The answers gensim looks through for the first one that is not a question word (its topn=5).
_ANSWERS = 5
# Score matrices of many questions at once are cut into blocks of about this many elements (16 MB).
_BATCH_ELEMENTS = 1 << 22


def _fold(word, case_insensitive):
    return word.upper() if case_insensitive else word


def _ok_vocab(kv, restrict_vocab, case_insensitive):
    """Folded word -> row among the first restrict_vocab words; a repeated form keeps its first row."""
    ok = {}
    for i, word in enumerate(kv.index_to_key[:restrict_vocab]):
        ok.setdefault(_fold(word, case_insensitive), i)
    return ok


def word_pairs(kv, path, delimiter="\t", encoding="utf8", restrict_vocab=300000, case_insensitive=True,
               dummy4unknown=False):
    """(pearson, spearman, oov_ratio) over `word1 word2 score` lines, as gensim returns them.

    Lines starting with '#' and lines that do not split into three fields with a numeric score
    are skipped. A pair with a word outside the first `restrict_vocab` words is OOV: skipped, or
    scored 0.0 with dummy4unknown=True. oov_ratio is a percentage: of all pairs, or (dummy4unknown)
    of the scored pairs, as gensim computes it. pearson and spearman are (statistic, pvalue).
    """
    ok = _ok_vocab(kv, restrict_vocab, case_insensitive)
    gold, rows, dummies, oov = [], [], [], 0
    with open(path, encoding=encoding) as f:
        for line in f:
            if not line or line.startswith("#"):
                continue
            fields = line.split(delimiter)
            if len(fields) != 3:
                continue
            a, b = _fold(fields[0], case_insensitive), _fold(fields[1], case_insensitive)
            try:
                score = float(fields[2])
            except ValueError:
                continue
            if a not in ok or b not in ok:
                oov += 1
                if dummy4unknown:
                    dummies.append(len(gold))
                    gold.append(score)
                    rows.append((0, 0))
                continue
            gold.append(score)
            rows.append((ok[a], ok[b]))
    if not gold:
        raise ValueError(f"{path}: no valid similarity judgements (wrong format, or every pair out of vocabulary)")
    rows = np.array(rows, dtype=np.int64)
    unit = kv.vectors[rows] / kv.norms[rows][:, :, None]
    model = np.einsum("ij,ij->i", unit[:, 0], unit[:, 1])
    model[dummies] = 0.0
    n = len(gold)
    ratio = 100.0 * oov / (n if dummy4unknown else n + oov)
    return with_pvalue(pearson(gold, model), n), with_pvalue(spearman(gold, model), n), ratio


def _read_questions(path, case_insensitive):
    """gensim's parse: ': name' starts a section; lines that are not four words are skipped."""
    sections = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f):
            line = raw.decode("utf-8")
            if line.startswith(": "):
                sections.append((line.lstrip(": ").strip(), []))
                continue
            if not sections:
                raise ValueError(f"Missing section header before line #{lineno} in {path}")
            words = [_fold(w, case_insensitive) for w in line.split()]
            if len(words) == 4:
                sections[-1][1].append(tuple(words))
    return sections


def word_analogies(kv, path, restrict_vocab=300000, case_insensitive=True, dummy4unknown=False):
    """(score, sections) on Google-format analogies, as gensim's evaluate_word_analogies.

    Each question a b c d is answered by most_similar(positive=[b, c], negative=[a], topn=5,
    restrict_vocab) with the words folded to upper case when case_insensitive; the first answer
    whose folded form is not a question word is the prediction. Questions with a word outside
    the first `restrict_vocab` words are skipped (dummy4unknown: counted incorrect). sections is a
    list of {'section', 'correct', 'incorrect'} with a last 'Total accuracy' section; score is the
    total's correct / (correct + incorrect), 0.0 when nothing was answered. Questions are
    answered in batches, one matrix product each.
    """
    ok = _ok_vocab(kv, restrict_vocab, case_insensitive)
    n = len(kv) if restrict_vocab is None else min(len(kv), restrict_vocab)
    # Row of each candidate's folded form: an answer that folds onto a question word is skipped.
    canon = np.array([ok[_fold(w, case_insensitive)] for w in kv.index_to_key[:n]], dtype=np.int64)
    parsed = _read_questions(path, case_insensitive)
    answerable = [q for _, items in parsed for q in items if all(w in ok for w in q)]
    hits = set(_solve(kv, answerable, ok, canon, n))
    out, k = [], 0
    for name, items in parsed:
        section = {"section": name, "correct": [], "incorrect": []}
        for q in items:
            if all(w in ok for w in q):
                section["correct" if k in hits else "incorrect"].append(q)
                k += 1
            elif dummy4unknown:
                section["incorrect"].append(q)
        out.append(section)
    total = {"section": "Total accuracy",
             "correct": list(itertools.chain.from_iterable(s["correct"] for s in out)),
             "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in out))}
    out.append(total)
    answered = len(total["correct"]) + len(total["incorrect"])
    score = len(total["correct"]) / answered if answered else 0.0
    return score, out


def _solve(kv, questions, ok, canon, n):
    """Indices of the correctly answered questions (each a folded (a, b, c, d), all in `ok`)."""
    if not questions:
        return []
    ids = np.array([[ok[w] for w in q] for q in questions], dtype=np.int64)
    unit = kv.vectors[ids[:, :3]] / kv.norms[ids[:, :3]][:, :, None]
    # gensim's query: the mean of b, c and -a (unit vectors), normalised.
    target = (unit[:, 1] + unit[:, 2] - unit[:, 0]) / np.float32(3)
    target /= np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-30)
    hits = []
    batch = max(1, _BATCH_ELEMENTS // max(n, 1))
    k = min(_ANSWERS, n)
    for start in range(0, len(ids), batch):
        q = ids[start:start + batch]
        scores = kv.cosines(target[start:start + batch], n)
        rows = np.arange(len(q))[:, None]
        scores[rows, q[:, :3]] = -np.inf  # the question words themselves are never answers
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(q), 1))
        best_scores = np.take_along_axis(scores, best, axis=1)
        order = np.lexsort((best, -best_scores), axis=1)
        best = np.take_along_axis(best, order, axis=1)
        valid = np.take_along_axis(best_scores, order, axis=1) > -np.inf
        folded = canon[best]
        skip = (folded[:, :, None] == q[:, None, :3]).any(axis=2) | ~valid
        # The prediction: the first answer that is not a question word, else the last one looked at.
        first = np.where((~skip).any(axis=1), np.argmax(~skip, axis=1), valid.sum(axis=1) - 1)
        has = first >= 0
        predicted = folded[np.arange(len(q)), np.maximum(first, 0)]
        correct = has & valid[np.arange(len(q)), np.maximum(first, 0)] & (predicted == q[:, 3])
        hits.extend((start + np.flatnonzero(correct)).tolist())
    return hits
