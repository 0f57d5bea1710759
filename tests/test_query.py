"""python -m w2v.query through the real command line: every query form, the prompt, unknown words."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from w2v.export import save_word2vec_binary, save_word2vec_text
from w2v.keyedvectors import KeyedVectors

# Axes: base, gender (+male), royal, fruit (as in test_evaluate's toy vectors).
TOY = {
    "the": [0.5, 0.5, 0.5, 0.5],
    "king": [0, 1, 1, 0],
    "queen": [0, -1, 1, 0.1],
    "man": [1, 1, 0, 0],
    "woman": [1, -1, 0, 0],
    "apple": [0, 0, 0.1, 1],
    "girl": [1, -1, 0, 0.2],
}


@pytest.fixture
def kv():
    return KeyedVectors(list(TOY), np.array(list(TOY.values()), dtype=np.float32), counts=[70, 60, 50, 40, 30, 20, 10])


# Each test runs a process or two per format; the text one runs by default, the other two
# formats (their loading is tested in process elsewhere) with the slow tests.
@pytest.fixture(params=["text", pytest.param("binary", marks=pytest.mark.slow),
                        pytest.param("saved", marks=pytest.mark.slow)])
def vectors(request, kv, tmp_path):
    """The toy vectors in each format the tool reads."""
    if request.param == "text":
        path = tmp_path / "v.txt"
        save_word2vec_text(path, kv.index_to_key, kv.vectors)
    elif request.param == "binary":
        path = tmp_path / "v.bin"
        save_word2vec_binary(path, kv.index_to_key, kv.vectors)
    else:
        path = tmp_path / "v.kv"
        kv.save(path)
    return path


def _query(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "w2v.query", *map(str, args)], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def _block(title, pairs):
    width = max(len(w) for w, _ in pairs)
    return "\n".join([title] + [f"  {w:<{width}}  {s:.4f}" for w, s in pairs])


def test_every_query_form_is_answered_and_options_repeat(vectors, kv):
    proc = _query(vectors, "--neighbours", "woman", "man", "--neighbours", "apple",
                  "--analogy", "man", "king", "woman", "--analogy", "king", "man", "queen",
                  "--similarity", "king", "queen", "--similarity", "man", "woman", "--topn", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    expected = "\n".join([
        _block("neighbours of 'woman':", kv.most_similar("woman", topn=2)),
        _block("neighbours of 'man':", kv.most_similar("man", topn=2)),
        _block("neighbours of 'apple':", kv.most_similar("apple", topn=2)),
        _block("man : king :: woman : ?", kv.most_similar(positive=["king", "woman"], negative=["man"], topn=2)),
        _block("king : man :: queen : ?", kv.most_similar(positive=["man", "queen"], negative=["king"], topn=2)),
        f"similarity(king, queen)\n  {kv.similarity('king', 'queen'):.4f}",
        f"similarity(man, woman)\n  {kv.similarity('man', 'woman'):.4f}",
    ]) + "\n"
    assert proc.stdout == expected
    # The toy's geometry: the analogy is solved, the nearest to 'woman' is 'girl'.
    assert "man : king :: woman : ?\n  queen" in proc.stdout
    assert "neighbours of 'woman':\n  girl" in proc.stdout


def test_prompt_fed_from_stdin(vectors, kv):
    proc = _query(vectors, "--topn", "3", stdin="woman\nking queen\n  man king   woman \n\napple\n")
    assert proc.returncode == 0, proc.stderr
    expected = "\n".join([
        _block("neighbours of 'woman':", kv.most_similar("woman", topn=3)),
        f"similarity(king, queen)\n  {kv.similarity('king', 'queen'):.4f}",
        _block("man : king :: woman : ?", kv.most_similar(positive=["king", "woman"], negative=["man"], topn=3)),
    ]) + "\n"
    assert proc.stdout == expected  # the empty line ended the session: 'apple' was not asked
    # End of input ends it too; no prompt text is written when stdin is not a terminal.
    proc = _query(vectors, stdin="apple")
    assert proc.returncode == 0 and proc.stdout.startswith("neighbours of 'apple':\n") and proc.stderr == ""


def test_unknown_words_are_named_and_exit_1_when_all_fail(vectors):
    proc = _query(vectors, "--neighbours", "zzz", "--analogy", "man", "zzz", "yyy", "--similarity", "King", "queen")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "neighbours of 'zzz': not in the vocabulary: 'zzz'" in proc.stderr
    assert "man : zzz :: yyy : ? not in the vocabulary: 'zzz', 'yyy'" in proc.stderr
    assert "not in the vocabulary: 'King'" in proc.stderr  # no case folding
    # One answered query is enough for exit 0; the failed one is still named.
    proc = _query(vectors, "--neighbours", "zzz", "woman")
    assert proc.returncode == 0 and "neighbours of 'woman':" in proc.stdout and "'zzz'" in proc.stderr
    proc = _query(vectors, stdin="zzz\na b c d\n")
    assert proc.returncode == 1 and "'zzz'" in proc.stderr and "expected 1, 2 or 3 words, got 4" in proc.stderr


def test_unreadable_vectors_exit_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("2 3\nthe 1 2 3\ncat 1 2\n", encoding="utf-8")
    for path, where in ((bad, "bad.txt:3"), (tmp_path / "missing.txt", "missing.txt")):
        proc = _query(path, "--neighbours", "the")
        assert proc.returncode == 2 and where in proc.stderr and "Traceback" not in proc.stderr
