"""fastText's .bin format: gensim's load_facebook_* read what we write, and we read what gensim writes."""

import struct

import numpy as np
import pytest

from w2v.fasttext_bin import MAGIC, load_fasttext_bin, save_fasttext_bin
from w2v.fasttext_kv import FastTextKeyedVectors

gensim_ft = pytest.importorskip("gensim.models.fasttext")

WORDS = ["the", "of", "cat", "cats", "dog", "été", "naïve", "日本語", "straße", "running"]
OOV = ["catty", "dogs", "étés", "日本", "strasse", "runs", "b"]
DIM, BUCKET = 6, 53
ARGS = {"ws": 5, "epoch": 5, "min_count": 5, "neg": 5, "loss": 2, "model": 2, "t": 1e-4, "ntokens": 12345}


def _model(seed=0, bucket=BUCKET, max_n=6):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((len(WORDS) + (bucket if max_n else 0), DIM)).astype(np.float32)
    counts = np.arange(100, 100 - len(WORDS), -1)
    kv = FastTextKeyedVectors(WORDS, table, 3, max_n, bucket, counts)
    output = rng.standard_normal((len(WORDS), DIM)).astype(np.float32)
    return kv, output


def test_gensim_reads_our_bin_with_the_same_vectors(tmp_path):
    kv, output = _model()
    path = tmp_path / "model.bin"
    save_fasttext_bin(path, kv, output, ARGS)
    model = gensim_ft.load_facebook_model(str(path))
    assert list(model.wv.index_to_key) == WORDS
    assert (model.wv.min_n, model.wv.max_n, model.wv.bucket) == (3, 6, BUCKET)
    assert (model.sg, model.negative, model.window, model.vector_size) == (1, 5, 5, DIM)
    assert model.sample == pytest.approx(1e-4) and model.corpus_total_words == 12345
    assert model.wv.get_vecattr("cat", "count") == 98
    np.testing.assert_allclose(model.wv.vectors, kv.vectors, rtol=1e-5, atol=1e-6)
    for word in OOV:
        np.testing.assert_allclose(model.wv[word], kv[word], rtol=1e-5, atol=1e-6, err_msg=word)
    np.testing.assert_array_equal(model.syn1neg, output)
    vectors = gensim_ft.load_facebook_vectors(str(path))
    np.testing.assert_allclose(vectors["catty"], kv["catty"], rtol=1e-5, atol=1e-6)


def test_we_read_gensims_bin_and_our_own(tmp_path):
    sentences = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "ran", "über", "the", "mat"]] * 20
    g = gensim_ft.FastText(sentences, vector_size=DIM, min_count=1, bucket=BUCKET, epochs=1, seed=1, workers=1)
    path = tmp_path / "gensim.bin"
    gensim_ft.save_facebook_model(g, str(path))
    kv, output, args = load_fasttext_bin(path)
    assert kv.index_to_key == list(g.wv.index_to_key)
    np.testing.assert_allclose(kv.vectors, g.wv.vectors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kv["catty"], g.wv["catty"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(output, g.syn1neg)
    assert args["model"] == 1 and args["dim"] == DIM  # gensim's default is CBOW

    ours, out = _model(seed=2)
    save_fasttext_bin(tmp_path / "ours.bin", ours, out, ARGS)
    back, back_out, back_args = load_fasttext_bin(tmp_path / "ours.bin", mmap_tables=True)
    np.testing.assert_array_equal(back.input_table, ours.input_table)
    np.testing.assert_array_equal(back[OOV], ours[OOV])
    np.testing.assert_array_equal(back_out, out)
    np.testing.assert_array_equal(back.counts, ours.counts)
    assert back_args["ntokens"] == 12345 and back_args["t"] == pytest.approx(1e-4)


def test_hs_output_gets_fasttexts_row_count_and_no_ngrams_writes_no_buckets(tmp_path):
    kv, output = _model(max_n=0)
    path = tmp_path / "hs.bin"
    save_fasttext_bin(path, kv, output[:-1], {**ARGS, "loss": 1, "neg": 0})
    model = gensim_ft.load_facebook_model(str(path))
    assert model.hs == 1 and model.wv.bucket == 0
    assert model.syn1.shape == (len(WORDS), DIM)
    np.testing.assert_array_equal(model.syn1[:-1], output[:-1])
    np.testing.assert_array_equal(model.syn1[-1], 0)
    np.testing.assert_allclose(model.wv.vectors, kv.vectors)


def test_bad_files_are_named(tmp_path):
    kv, output = _model()
    good = tmp_path / "good.bin"
    save_fasttext_bin(good, kv, output, ARGS)
    data = good.read_bytes()
    cases = {"empty.bin": (b"", "empty file"),
             "magic.bin": (struct.pack("=ii", 1234, 12) + data[8:], "not a fastText .bin"),
             "short.bin": (data[:len(data) // 2], "does not fit|ends early"),
             "version.bin": (struct.pack("=ii", MAGIC, 99) + data[8:], "version 99"),
             "tail.bin": (data + b"xx", "bytes after")}
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=message) as e:
            load_fasttext_bin(tmp_path / name)
        assert name in str(e.value)
    with pytest.raises(ValueError, match="output table"):
        save_fasttext_bin(tmp_path / "x.bin", kv, output[:, :2], ARGS)
    assert not (tmp_path / "x.bin").exists()


def test_fasttext_reads_our_bin_with_the_same_vectors(tmp_path):
    """fastText itself (the fasttext package, when installed) loads the file and computes our vectors."""
    fasttext = pytest.importorskip("fasttext")
    kv, output = _model(seed=4)
    path = tmp_path / "model.bin"
    save_fasttext_bin(path, kv, output, ARGS)
    model = fasttext.load_model(str(path))
    assert model.get_words() == WORDS and model.get_dimension() == DIM
    for word in WORDS + OOV:
        np.testing.assert_allclose(model.get_word_vector(word), kv[word], rtol=1e-5, atol=1e-6, err_msg=word)
    np.testing.assert_array_equal(model.get_output_matrix(), output)
    # And we read a model fastText itself wrote.
    model.save_model(str(tmp_path / "again.bin"))
    back, back_out, _ = load_fasttext_bin(tmp_path / "again.bin")
    np.testing.assert_array_equal(back.input_table, kv.input_table)
    np.testing.assert_allclose(back[OOV], kv[OOV], rtol=1e-6)



def test_fasttexts_end_of_sentence_word_has_no_ngrams_as_in_fasttext(tmp_path):
    """A model fastText trained starts its dictionary with </s>, for which fastText computes no
    n-grams: its vector (composed here, on reading) is its own row, as fastText computes it."""
    fasttext = pytest.importorskip("fasttext")
    words = ["</s>"] + WORDS
    rng = np.random.default_rng(6)
    table = rng.standard_normal((len(words) + BUCKET, DIM)).astype(np.float32)
    kv = FastTextKeyedVectors(words, table, 3, 6, BUCKET, np.arange(200, 200 - len(words), -1))
    assert np.array_equal(kv["</s>"], table[0])
    path = tmp_path / "eos.bin"
    save_fasttext_bin(path, kv, table[:len(words)], ARGS)
    model = fasttext.load_model(str(path))
    back, _, _ = load_fasttext_bin(path)
    for word in words + OOV:
        np.testing.assert_allclose(back[word], model.get_word_vector(word), rtol=1e-5, atol=1e-6, err_msg=word)
