"""Tests for evaluation: Spearman, KeyedVectors queries, word pairs, analogies and the CLI."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from w2v import evaluate
from w2v.evaluate import evaluate_all, evaluate_analogies, evaluate_word_pairs, spearman
from w2v.keyedvectors import KeyedVectors
from w2v.export import save_word2vec_text

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "evaluate.py"

# Axes: base, gender (+male), royal, fruit. With orthonormal axes and equal norms,
# unit(king) - unit(man) + unit(woman) is exactly unit(queen).
TOY = {
    "the": [0.5, 0.5, 0.5, 0.5],
    "King": [0, 1, 1, 0],  # capitalised on purpose: lookups fall back case-insensitively
    "queen": [0, -1, 1, 0],
    "man": [1, 1, 0, 0],
    "woman": [1, -1, 0, 0],
    "apple": [0, 0, 0, 1],
    "girl": [1, -1, 0, 0.2],
}


@pytest.fixture
def toy():
    return KeyedVectors(list(TOY), np.array(list(TOY.values()), dtype=np.float32))


# --- Spearman ---------------------------------------------------------------------------

def test_spearman_hand_computed_with_ties():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]: rho = 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [10, 30, 20, 40]) == pytest.approx(4.5 / math.sqrt(22.5), abs=1e-12)
    assert spearman([1, 2, 3], [5, 7, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1], [2]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])


def test_spearman_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.integers(0, 6, 200)  # heavy ties
        y = x + rng.integers(0, 4, 200)
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


# --- KeyedVectors queries ------------------------------------------------------------------

def test_lookup_case_folding(toy):
    assert toy.lookup("queen") == 2
    assert toy.lookup("QUEEN") == 2  # lowercase form
    assert toy.lookup("king") == 1  # case-insensitive match of 'King'
    assert toy.lookup("prince") is None and "prince" not in toy
    both = KeyedVectors(["Apple", "apple"], np.eye(2, dtype=np.float32))
    assert both.lookup("Apple") == 0 and both.lookup("apple") == 1  # exact first


def test_most_similar_excludes_query_and_restricts(toy):
    result = toy.most_similar("woman", topn=3)
    assert [w for w, _ in result] == ["girl", "queen", "the"]
    assert "woman" not in [w for w, _ in toy.most_similar("woman", topn=10)]
    assert result[0][1] == pytest.approx(1 / math.sqrt(1.02), rel=1e-6)
    assert [w for w, _ in toy.most_similar("woman", topn=3, restrict_vocab=5)] == ["queen", "the", "man"]
    # A vector query excludes nothing.
    assert toy.most_similar(np.array([1, -1, 0, 0]), topn=1)[0][0] == "woman"
    with pytest.raises(KeyError):
        toy.most_similar("prince")


@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogy_solved_and_question_words_excluded(toy, method):
    answers = toy.analogy("man", "king", "woman", topn=10, method=method)
    assert answers[0][0] == "queen"
    assert {"man", "King", "woman"}.isdisjoint(w for w, _ in answers)
    assert len(answers) == len(TOY) - 3
    if method == "add":
        assert answers[0][1] == pytest.approx(1.0, abs=1e-6)  # target is exactly queen
    # a == b makes the target c itself; c is excluded, so its nearest other word wins.
    assert toy.analogy("man", "man", "woman", method=method)[0][0] == "girl"
    # Candidates restricted to the 2 most frequent words.
    assert toy.analogy("man", "king", "woman", restrict_vocab=2, method=method)[0][0] == "the"


def test_3cosmul_formula(toy):
    u = toy.get_normed_vectors()
    cos = lambda i, j: float(u[i] @ u[j])  # noqa: E731
    p = lambda c: (c + 1) / 2  # noqa: E731
    a, b, c = toy.lookup("man"), toy.lookup("king"), toy.lookup("woman")
    expected = {w: p(cos(x, b)) * p(cos(x, c)) / (p(cos(x, a)) + 1e-3)
                for x, w in enumerate(toy.index_to_key) if x not in (a, b, c)}
    got = dict(toy.analogy("man", "king", "woman", topn=10, method="mul"))
    assert got.keys() == expected.keys()
    for w in expected:
        assert got[w] == pytest.approx(expected[w], rel=1e-5)


# --- word pairs -------------------------------------------------------------------------

def test_word_pairs_coverage_and_score(toy, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("# comment\n\nKing\tqueen\t8\nman\twoman\t6\n"
                    "apple\tgirl\t1\nprince\tman\t5\nthe\tapple\t2\n", encoding="utf-8")
    r = evaluate_word_pairs(toy, path)
    assert (r["pairs"], r["oov"], r["total"]) == (4, 1, 5)
    assert r["oov_ratio"] == pytest.approx(0.2)
    u = toy.get_normed_vectors()
    cosines = [u[1] @ u[2], u[3] @ u[4], u[5] @ u[6], u[0] @ u[5]]
    assert r["spearman"] == pytest.approx(spearman(cosines, [8, 6, 1, 2]))
    # Restricting the vocabulary turns pairs with rarer words into OOV.
    assert evaluate_word_pairs(toy, path, restrict_vocab=5)["pairs"] == 2


def test_word_pairs_malformed_line(toy, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("# c\nking\tqueen\t8\nking queen\n", encoding="utf-8")
    with pytest.raises(ValueError, match="pairs.tsv:3:"):
        evaluate_word_pairs(toy, path)


# --- analogies --------------------------------------------------------------------------

def _write_questions(path, sections):
    with open(path, "w", encoding="utf-8") as f:
        for name, questions in sections.items():
            f.write(f": {name}\n")
            for q in questions:
                f.write(" ".join(q) + "\n")


def test_analogies_toy_oov_and_restrict(toy, tmp_path):
    path = tmp_path / "q.txt"
    _write_questions(path, {
        "family": [("man", "king", "woman", "queen"), ("Man", "KING", "Woman", "Queen"),
                   ("man", "prince", "woman", "princess")],
        "gram1-test": [("man", "woman", "king", "queen"), ("man", "king", "woman", "girl")],
    })
    r = evaluate_analogies(toy, path, restrict_vocab=30000, method="add")
    assert r["semantic"] == {"correct": 2, "questions_answered": 2, "questions": 3, "accuracy": 1.0}
    assert r["syntactic"]["questions_answered"] == 2 and r["syntactic"]["correct"] == 1
    assert r["total"]["correct"] == 3 and r["total"]["questions_answered"] == 4
    assert (r["oov"], r["total_questions"]) == (1, 5)
    assert r["coverage"] == pytest.approx(0.8)
    assert r["sections"]["family"]["questions"] == 3
    # 'girl' (row 6) outside the first 6 words: the question with it is skipped.
    r6 = evaluate_analogies(toy, path, restrict_vocab=6)
    assert (r6["oov"], r6["total"]["correct"], r6["total"]["questions_answered"]) == (2, 3, 3)


def test_restrict_vocab_limits_candidates(tmp_path):
    # 'queenly' (last, rarest) sits exactly on the target; 'queen' is nudged off it.
    vecs = dict(TOY, queen=[0, -1, 1, 0.3], queenly=[0, -1, 1, 0])
    emb = KeyedVectors(list(vecs), np.array(list(vecs.values()), dtype=np.float32))
    path = tmp_path / "q.txt"
    _write_questions(path, {"family": [("man", "king", "woman", "queen")]})
    assert emb.analogy("man", "king", "woman")[0][0] == "queenly"
    assert emb.analogy("man", "king", "woman", restrict_vocab=7)[0][0] == "queen"
    for method in ("add", "mul"):
        assert evaluate_analogies(emb, path, restrict_vocab=None, method=method)["total"]["correct"] == 0
        assert evaluate_analogies(emb, path, restrict_vocab=7, method=method)["total"]["correct"] == 1


def _reference(emb, questions, n, method):
    """Per-question loop, straight from the definitions, as an independent check."""
    u = emb.get_normed_vectors()[:n]
    index = {}
    for i, w in enumerate(emb.index_to_key[:n]):
        index.setdefault(w.lower(), i)
    answers = []
    for q in questions:
        if any(w not in index for w in q):
            answers.append(None)
            continue
        a, b, c, _ = (u[index[w]] for w in q)
        if method == "add":
            t = b - a + c
            s = u @ (t / np.linalg.norm(t))
        else:
            s = ((u @ b + 1) / 2) * ((u @ c + 1) / 2) / ((u @ a + 1) / 2 + 1e-3)
        for w in q[:3]:
            s[index[w]] = -np.inf
        answers.append(emb.index_to_key[int(np.argmax(s))])
    return answers


@pytest.mark.parametrize("table_elements", [None, 1000])  # 1000: many small candidate blocks
@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogies_match_reference_loop(tmp_path, method, table_elements, monkeypatch):
    if table_elements:
        monkeypatch.setattr(evaluate, "_TABLE_ELEMENTS", table_elements)
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(300)]
    emb = KeyedVectors(words, rng.standard_normal((300, 12)).astype(np.float32))
    n = 200
    questions = [tuple(words[i] for i in rng.choice(260, 4, replace=False)) for _ in range(400)]
    predicted = _reference(emb, questions, n, method)
    # Make half the answerable questions correct by construction.
    fixed = [q[:3] + (p,) if p is not None and k % 2 else q
             for k, (q, p) in enumerate(zip(questions, predicted))]
    expected_correct = sum(p is not None and p == q[3] for q, p in zip(fixed, predicted))
    answered = sum(p is not None for p in predicted)
    assert expected_correct > 50
    path = tmp_path / "q.txt"
    _write_questions(path, {"capital": fixed[:150], "gram2": fixed[150:]})
    r = evaluate_analogies(emb, path, restrict_vocab=n, method=method)
    assert r["total"]["correct"] == expected_correct
    assert r["total"]["questions_answered"] == answered
    assert r["oov"] == 400 - answered
    assert r["semantic"]["correct"] + r["syntactic"]["correct"] == expected_correct


def test_tie_goes_to_more_frequent_word_across_blocks(tmp_path, monkeypatch):
    # 'queen2' duplicates 'queen' but is rarer; it must not win the tie, even in a later block.
    monkeypatch.setattr(evaluate, "_TABLE_ELEMENTS", 6)  # 3 question words: 2 candidates a block
    vecs = dict(TOY, queen2=TOY["queen"])
    emb = KeyedVectors(list(vecs), np.array(list(vecs.values()), dtype=np.float32))
    path = tmp_path / "q.txt"
    _write_questions(path, {"family": [("man", "king", "woman", "queen")]})
    assert [w for w, _ in emb.analogy("man", "king", "woman", topn=2)] == ["queen", "queen2"]
    for method in ("add", "mul"):
        assert evaluate_analogies(emb, path, restrict_vocab=None, method=method)["total"]["correct"] == 1


def test_analogies_match_gensim(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    rng = np.random.default_rng(11)
    words = [f"w{i}" for i in range(400)]
    vecs = rng.standard_normal((400, 10)).astype(np.float32)
    questions = [tuple(words[i] for i in rng.choice(380, 4, replace=False)) for _ in range(300)]
    emb = KeyedVectors(words, vecs)
    predicted = _reference(emb, questions, 300, "add")
    questions = [q[:3] + (p,) if p is not None and k % 3 == 0 else q
                 for k, (q, p) in enumerate(zip(questions, predicted))]
    path = tmp_path / "q.txt"
    _write_questions(path, {"family": questions[:100], "gram3-comparative": questions[100:]})
    kv = gensim_models.KeyedVectors(vector_size=10)
    kv.add_vectors(words, vecs)
    score, sections = kv.evaluate_word_analogies(str(path), restrict_vocab=300)
    total = sections[-1]
    ours = evaluate_analogies(emb, path, restrict_vocab=300)
    assert ours["total"]["correct"] == len(total["correct"])
    assert ours["total"]["questions_answered"] == len(total["correct"]) + len(total["incorrect"])
    assert ours["total"]["accuracy"] == pytest.approx(score)


def test_analogy_case_variants_are_masked(tmp_path):
    # 'Woman' and 'woman' fold together: neither may answer a question that asks about 'woman'.
    # Unmasked, 'Woman' (cos 0.82 with the target) would beat 'queen' (0.71).
    words = ["man", "king", "woman", "Woman", "queen"]
    vecs = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 1], [0.05, 0, 1], [1, 0, 0.2]], dtype=np.float32)
    emb = KeyedVectors(words, vecs)
    path = tmp_path / "q.txt"
    _write_questions(path, {"family": [("man", "king", "woman", "queen")]})
    assert emb.analogy("man", "king", "woman", topn=2) == emb.analogy("man", "king", "woman", topn=5)
    assert emb.analogy("man", "king", "woman")[0][0] == "queen"
    assert evaluate_analogies(emb, path)["total"]["correct"] == 1


def test_evaluate_all_on_repo_data(toy):
    r = evaluate_all(toy)
    assert set(r) == {"wordsim353", "simlex999", "analogy_3cosadd", "analogy_3cosmul"}
    assert r["wordsim353"]["total"] == 353 and r["simlex999"]["total"] == 999
    assert r["analogy_3cosadd"]["total_questions"] == 19544
    assert r["analogy_3cosmul"]["semantic"]["questions"] + r["analogy_3cosmul"]["syntactic"]["questions"] == 19544


# --- command line -----------------------------------------------------------------------

def _cli(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_cli_json(tmp_path):
    emb_path = tmp_path / "toy.txt"
    save_word2vec_text(emb_path, list(TOY), np.array(list(TOY.values()), dtype=np.float32))
    questions = tmp_path / "q.txt"
    _write_questions(questions, {"family": [("man", "king", "woman", "queen")]})
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("king\tqueen\t8\nman\twoman\t6\napple\tgirl\t1\n", encoding="utf-8")
    proc = _cli(emb_path, "--json", "--wordsim", pairs, "--simlex", pairs, "--analogies", questions,
                "--neighbours", "woman", "nosuchword", "--analogy", "man", "king", "woman",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert (r["words"], r["dim"]) == (7, 4)
    assert r["wordsim353"]["pairs"] == 3
    assert r["analogy_3cosadd"]["total"]["correct"] == 1
    assert r["neighbours"]["woman"][0][0] == "girl" and r["neighbours"]["nosuchword"] is None
    assert r["analogy"]["answers"][0][0] == "queen"
    # Default eval files come from the repository's data/eval, whatever the working directory.
    table = _cli(emb_path, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "wordsim353" in table.stdout and "pairs 0/353" not in table.stdout
    assert "analogy 3CosMul" in table.stdout


def test_cli_errors_exit_2(tmp_path):
    proc = _cli(tmp_path / "missing.vec", cwd=tmp_path)
    assert proc.returncode == 2 and "missing.vec" in proc.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("2 3\nthe 1 2 3\ncat 1 2\n", encoding="utf-8")
    proc = _cli(bad, "--json", cwd=tmp_path)
    assert proc.returncode == 2 and "bad.txt:3" in proc.stderr and proc.stdout == ""
