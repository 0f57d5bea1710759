"""The subword model on the command line: print_vectors, OOV queries, evaluate.py --oov, bad files."""

import importlib.util
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from w2v import print_vectors, query
from w2v.export import save_word2vec_text
from w2v.fasttext_bin import save_fasttext_bin
from w2v.fasttext_kv import FastTextKeyedVectors
from w2v.stats import spearman

WORDS = ["the", "cat", "cats", "dog", "dogs", "car", "cars", "king", "queen", "man", "woman", "été"]
DIM, BUCKET = 6, 41


@pytest.fixture
def kv():
    table = np.random.default_rng(7).standard_normal((len(WORDS) + BUCKET, DIM)).astype(np.float32)
    return FastTextKeyedVectors(WORDS, table, 3, 6, BUCKET, counts=np.arange(len(WORDS), 0, -1) * 10)


@pytest.fixture(params=["saved", "fasttext-bin"])
def model(request, kv, tmp_path):
    if request.param == "saved":
        path = tmp_path / "subword_model"
        kv.save(path)
    else:
        path = tmp_path / "model.bin"
        save_fasttext_bin(path, kv, np.zeros((len(WORDS), DIM), dtype=np.float32),
                          {"ws": 5, "epoch": 1, "min_count": 1, "neg": 5, "loss": 2, "model": 2, "t": 1e-4})
    return path


def _load_evaluate_script():
    spec = importlib.util.spec_from_file_location("evaluate_script", ROOT / "scripts" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAINS = {"print_vectors": print_vectors.main, "query": query.main, "evaluate": _load_evaluate_script().main}


class _Proc:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _run(tool, *args, stdin="", monkeypatch, capsys):
    """A command line's main() in this process (a subprocess would import torch again each time)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = MAINS[tool]([str(a) for a in args])
    out, err = capsys.readouterr()
    return _Proc(code, out, err)


def test_print_vectors_prints_every_word_in_order(model, kv):
    """The real command line, reading stdin."""
    words = ["cat", "catty", "été", "étés", "cat"]
    proc = subprocess.run([sys.executable, "-m", "w2v.print_vectors", str(model)], cwd=ROOT, capture_output=True,
                          input="cat catty\n été\n\nétés cat\n", text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == words
    printed = np.array([[float(x) for x in line.split(" ")[1:]] for line in lines])
    assert printed.shape == (5, DIM)
    np.testing.assert_allclose(printed, kv[words], rtol=1e-4, atol=1e-4)  # 5 significant digits


def test_print_vectors_of_a_word_model_prints_zeros_for_unknown_words(kv, tmp_path, monkeypatch, capsys):
    path = tmp_path / "v.txt"
    save_word2vec_text(path, kv.index_to_key, kv.vectors)
    proc = _run("print_vectors", path, "--precision", "9", stdin="dog catty\n", monkeypatch=monkeypatch,
                capsys=capsys)
    assert proc.returncode == 0
    dog, catty = proc.stdout.splitlines()
    np.testing.assert_allclose([float(x) for x in dog.split()[1:]], kv["dog"], rtol=1e-6)
    assert [float(x) for x in catty.split()[1:]] == [0.0] * DIM
    assert "catty" in proc.stderr


def test_query_answers_oov_words(model, kv, monkeypatch, capsys):
    proc = _run("query", model, "--neighbours", "catty", "--similarity", "catty", "dogs",
                "--analogy", "man", "king", "womanly", "--topn", "3", monkeypatch=monkeypatch, capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "neighbours of 'catty' (not in the vocabulary: from its n-grams):" in out
    best = kv.most_similar("catty", topn=3)
    assert f"  {best[0][0]:<{max(len(w) for w, _ in best)}}  {best[0][1]:.4f}" in out
    assert f"similarity(catty, dogs)\n  {kv.similarity('catty', 'dogs'):.4f}" in out
    answer = kv.most_similar(positive=["king", "womanly"], negative=["man"], topn=3)[0][0]
    assert f"man : king :: womanly : ?\n  {answer}" in out


def test_evaluate_oov_scores_every_pair(model, kv, tmp_path, monkeypatch, capsys):
    pairs = [("cat", "dog", 7.0), ("cats", "catty", 8.5), ("car", "automobile", 9.0), ("king", "queen", 8.0),
             ("man", "mankind", 5.0), ("dog", "cars", 1.0), ("woman", "queen", 6.5)]
    ws = tmp_path / "ws.tsv"
    ws.write_text("".join(f"{a}\t{b}\t{s}\n" for a, b, s in pairs))
    questions = tmp_path / "q.txt"
    questions.write_text(": family\nman woman king queen\n")
    proc = _run("evaluate", model, "--oov", "--json", "--wordsim", ws, "--simlex", ws, "--analogies", questions,
                monkeypatch=monkeypatch, capsys=capsys)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["wordsim353"]["pairs"] == 4 and r["wordsim353"]["oov"] == 3
    full = r["wordsim353_oov"]
    assert full["pairs"] == full["total"] == len(pairs) and full["oov"] == 3
    want = spearman([kv.similarity(a, b) for a, b, _ in pairs], [s for _, _, s in pairs])
    assert full["spearman"] == pytest.approx(want, abs=1e-6)
    table = _run("evaluate", model, "--oov", "--wordsim", ws, "--simlex", ws, "--analogies", questions,
                 monkeypatch=monkeypatch, capsys=capsys)
    assert "wordsim353 +oov" in table.stdout and "7/7" in table.stdout


def test_bad_files_exit_2_naming_them(kv, tmp_path, monkeypatch, capsys):
    path = tmp_path / "v.txt"
    save_word2vec_text(path, kv.index_to_key, kv.vectors)
    proc = _run("evaluate", path, "--oov", monkeypatch=monkeypatch, capsys=capsys)
    assert proc.returncode == 2 and "--oov needs a subword model" in proc.stderr and str(path) in proc.stderr
    broken = tmp_path / "broken.bin"
    kv.save(tmp_path / "m")
    save_fasttext_bin(broken, kv, np.zeros((len(WORDS), DIM), dtype=np.float32), {"t": 1e-4})
    broken.write_bytes(broken.read_bytes()[:200])
    (tmp_path / "m.input.npy").write_bytes(b"junk")
    for tool in MAINS:
        for bad in (broken, tmp_path / "m", tmp_path / "missing"):
            proc = _run(tool, bad, stdin="cat\n", monkeypatch=monkeypatch, capsys=capsys)
            assert proc.returncode == 2, (tool, bad, proc.stderr)
            assert bad.name in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
