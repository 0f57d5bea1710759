"""The trainer's output set with subwords: the whole model and fastText's .bin, read back by w2v and gensim."""

import shutil

import numpy as np
import pytest

from conftest import sample_head
from w2v import outputset, subword_export
from w2v.config import build_config
from w2v.fasttext_bin import load_fasttext_bin
from w2v.fasttext_kv import FastTextKeyedVectors
from w2v.keyedvectors import KeyedVectors
from w2v.trainer import train

BUCKETS = 5000
OOV = ["presidentially", "congressmen", "taxable", "américain", "zzq"]


def _config(corpus, out, **model):
    return build_config({"corpus": {"paths": [str(corpus)]}, "output": {"dir": str(out)},
                         "vocab": {"min_count": 5},
                         "model": {"dim": 16, "negative": 3, **model},
                         "train": {"threads": 1, "device": "cpu", "seed": 3, "epochs": 1, "backend": "torch"}})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ftout")
    corpus = sample_head(tmp / "small.txt", 20_000)
    out = tmp / "out"
    train(_config(corpus, out, subwords=True, minn=3, maxn=5, buckets=BUCKETS), quiet=True)
    return corpus, out


def test_the_set_holds_the_subword_files_and_is_complete(trained):
    _, out = trained
    for name in subword_export.NAMES:
        assert (out / name).is_file(), name
        assert name in outputset.SET_NAMES
    assert outputset.check(out) == []


def test_the_whole_model_reloads_with_the_vec_files_vectors(trained):
    _, out = trained
    kv = FastTextKeyedVectors.load(out / subword_export.MODEL_NAME, mmap="r")
    vec = KeyedVectors.load_word2vec_format(out / "word_embedding.txt")
    assert kv.index_to_key == vec.index_to_key
    assert (kv.min_n, kv.max_n, kv.bucket) == (3, 5, BUCKETS)
    np.testing.assert_allclose(kv.vectors, vec.vectors, rtol=1e-6, atol=1e-7)
    # The composed vectors the trainer handed over are the means of the rows, recomputed here.
    again = FastTextKeyedVectors(kv.index_to_key, np.array(kv.input_table), 3, 5, BUCKETS)
    np.testing.assert_allclose(again.vectors, kv.vectors, rtol=1e-5, atol=1e-6)
    output = FastTextKeyedVectors.load_output(out / subword_export.MODEL_NAME)
    assert output.shape == (len(kv), 16) and np.abs(output).sum() > 0  # trained, not the zero init
    assert kv.counts is not None and kv.counts[0] >= kv.counts[-1]


def test_gensim_reads_the_fasttext_bin_with_our_oov_vectors(trained):
    gensim_ft = pytest.importorskip("gensim.models.fasttext")
    _, out = trained
    kv = FastTextKeyedVectors.load(out / subword_export.MODEL_NAME)
    model = gensim_ft.load_facebook_model(str(out / subword_export.FASTTEXT_BIN))
    assert list(model.wv.index_to_key) == kv.index_to_key
    assert (model.sg, model.window, model.negative, model.wv.min_n, model.wv.max_n) == (1, 5, 3, 3, 5)
    np.testing.assert_allclose(model.wv.vectors, kv.vectors, rtol=1e-5, atol=1e-6)
    for word in OOV:
        np.testing.assert_allclose(model.wv[word], kv[word], rtol=1e-5, atol=1e-6, err_msg=word)
    back, output, _ = load_fasttext_bin(out / subword_export.FASTTEXT_BIN)
    np.testing.assert_array_equal(output, FastTextKeyedVectors.load_output(out / subword_export.MODEL_NAME))


def test_a_word_model_run_removes_the_subword_files(trained, tmp_path):
    corpus, out = trained
    again = tmp_path / "again"
    shutil.copytree(out, again)
    train(_config(corpus, again), quiet=True)
    assert not any((again / name).exists() for name in subword_export.NAMES)
    assert outputset.check(again) == []
