"""FastTextKeyedVectors against gensim's FastTextKeyedVectors built from the same tables."""

import numpy as np
import pytest

from w2v.fasttext_kv import FastTextKeyedVectors
from w2v.keyedvectors import KeyedVectors

gensim_ft = pytest.importorskip("gensim.models.fasttext")

WORDS = ["the", "cat", "sat", "on", "mat", "cats", "dog", "dogs", "été", "naïve", "日本語", "straße",
         "running", "runner", "a", "x1", "über", "café", "mañana", "zoo"]
OOV = ["catty", "dogged", "étés", "naïveté", "日本", "strasse", "runs", "b", "überall", "zzz", "Café", "the"]
DIM, BUCKET = 8, 97


def _table(n_words, bucket, seed=0):
    return np.random.default_rng(seed).standard_normal((n_words + bucket, DIM)).astype(np.float32)


def _gensim(words, table, min_n, max_n, bucket):
    """gensim's object from the same tables, the way its loader of fastText's .bin builds it."""
    g = gensim_ft.FastTextKeyedVectors(DIM, min_n, max_n, bucket)
    g.add_vectors(list(words), np.zeros((len(words), DIM), dtype=np.float32))
    g.init_post_load(table)
    return g


@pytest.fixture
def pair():
    table = _table(len(WORDS), BUCKET)
    ours = FastTextKeyedVectors(WORDS, table, 3, 6, BUCKET, counts=np.arange(len(WORDS), 0, -1))
    return ours, _gensim(WORDS, table, 3, 6, BUCKET)


def test_composed_vectors_equal_gensims(pair):
    ours, theirs = pair
    np.testing.assert_allclose(ours.vectors, theirs.vectors, rtol=1e-5, atol=1e-6)
    # The composed vector is the mean of the word's own row and its n-gram rows.
    i = ours.key_to_index["naïve"]
    rows = ours.index.rows[ours.index.offsets[i]:ours.index.offsets[i + 1]].numpy()
    assert rows[0] == i and len(rows) > 1
    np.testing.assert_allclose(ours["naïve"], ours.input_table[rows].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_oov_vectors_equal_gensims_one_by_one_and_batched(pair):
    ours, theirs = pair
    batch = ours[OOV]
    for word, row in zip(OOV, batch):
        np.testing.assert_allclose(ours[word], theirs[word], rtol=1e-5, atol=1e-6, err_msg=word)
        np.testing.assert_allclose(row, theirs[word], rtol=1e-5, atol=1e-6, err_msg=word)
        np.testing.assert_allclose(ours.get_vector(word, norm=True), theirs.get_vector(word, norm=True),
                                   rtol=1e-5, atol=1e-6, err_msg=word)
    # An OOV vector is the mean of the word's n-gram rows only (no own row).
    offsets, rows = ours.ngram_rows(["catty"])
    np.testing.assert_allclose(ours["catty"], ours.input_table[rows].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert (rows >= len(WORDS)).all()


def test_contains_and_vocabulary_follow_gensim(pair):
    ours, theirs = pair
    for word in OOV + WORDS:
        assert (word in ours) == (word in theirs)
        assert (word in ours.key_to_index) == (word in theirs.key_to_index)
    assert "catty" in ours and "catty" not in ours.key_to_index
    with pytest.raises(KeyError):
        ours.get_index("catty")


def test_no_ngrams_in_range_gives_the_origin_as_gensim():
    words = ["alpha", "beta"]
    table = _table(2, BUCKET, seed=3)
    ours = FastTextKeyedVectors(words, table, 5, 6, BUCKET)
    theirs = _gensim(words, table, 5, 6, BUCKET)
    # "<ab>" has 4 characters: no n-gram of 5..6.
    np.testing.assert_array_equal(ours["ab"], np.zeros(DIM, dtype=np.float32))
    np.testing.assert_array_equal(theirs["ab"], ours["ab"])
    assert "ab" in ours


def test_without_buckets_an_oov_word_is_a_key_error_as_in_gensim():
    table = _table(len(WORDS), 0, seed=4)
    ours = FastTextKeyedVectors(WORDS, table, 3, 6, 0)
    theirs = _gensim(WORDS, table, 3, 6, 0)
    np.testing.assert_allclose(ours.vectors, table)
    assert "catty" not in ours and "catty" not in theirs
    with pytest.raises(KeyError):
        theirs["catty"]
    with pytest.raises(KeyError, match="catty"):
        ours["catty"]
    with pytest.raises(KeyError):
        ours[["cat", "catty"]]


def test_most_similar_and_similarity_with_oov_queries_equal_gensims(pair):
    ours, theirs = pair
    for query in (["catty"], ["dogged", "cat"], ["日本"]):
        got = ours.most_similar(positive=query, topn=5)
        want = theirs.most_similar(positive=query, topn=5)
        assert [w for w, _ in got] == [w for w, _ in want], query
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-4, atol=1e-5)
    got = ours.most_similar(positive=["runner", "catty"], negative=["runs"], topn=4)
    want = theirs.most_similar(positive=["runner", "catty"], negative=["runs"], topn=4)
    assert [w for w, _ in got] == [w for w, _ in want]
    # A vocabulary word in the query is not an answer; an OOV one has no row to leave out.
    assert "cat" not in [w for w, _ in ours.most_similar(positive=["dogged", "cat"], topn=len(WORDS))]
    for a, b in (("catty", "dogged"), ("cat", "catty"), ("runs", "running")):
        assert ours.similarity(a, b) == pytest.approx(float(theirs.similarity(a, b)), abs=1e-5)
    assert ours.most_similar_cosmul(positive=["catty"], topn=3)[0][0] == \
        theirs.most_similar_cosmul(positive=["catty"], topn=3)[0][0]


def test_round_trip_keeps_everything_and_maps_the_tables(pair, tmp_path):
    ours, _ = pair
    output = np.random.default_rng(5).standard_normal((len(WORDS), DIM)).astype(np.float32)
    path = tmp_path / "model"
    ours.save(path, output=output)
    back = FastTextKeyedVectors.load(path, mmap="r")
    assert isinstance(back.input_table, np.memmap)
    assert back.index_to_key == ours.index_to_key
    assert (back.min_n, back.max_n, back.bucket) == (3, 6, BUCKET)
    np.testing.assert_array_equal(back.counts, ours.counts)
    np.testing.assert_array_equal(back.vectors, ours.vectors)
    np.testing.assert_array_equal(back[OOV], ours[OOV])
    np.testing.assert_array_equal(FastTextKeyedVectors.load_output(path), output)
    # The vocabulary file is a plain KeyedVectors file too (the composed vectors).
    plain = KeyedVectors.load(path)
    np.testing.assert_array_equal(plain.vectors, ours.vectors)
    # Saved again without an output table, the old one goes.
    ours.save(path)
    assert FastTextKeyedVectors.load_output(path) is None


def test_load_names_a_damaged_table(pair, tmp_path):
    ours, _ = pair
    path = tmp_path / "model"
    ours.save(path)
    np.save(tmp_path / "model.input.npy", np.zeros((3, DIM), dtype=np.float32))
    with pytest.raises(ValueError, match="model.input.npy"):
        FastTextKeyedVectors.load(path)
    with pytest.raises(ValueError, match="subwords.json"):
        FastTextKeyedVectors.load(tmp_path / "missing")


def test_gensim_conversions_round_trip(pair):
    ours, theirs = pair
    back = FastTextKeyedVectors.from_gensim(theirs)
    np.testing.assert_allclose(back.input_table, ours.input_table)
    np.testing.assert_allclose(back[OOV], ours[OOV], rtol=1e-6)
    g = ours.to_gensim()
    np.testing.assert_allclose(g["catty"], theirs["catty"], rtol=1e-6)
    assert g.get_vecattr("the", "count") == ours.get_vecattr("the", "count")


def test_the_python_apis_fasttext_gives_oov_vectors_as_gensim_would(tmp_path):
    """w2v.FastText(...).wv is a FastTextKeyedVectors over the trained table: OOV vectors and
    neighbours equal those of gensim's object built from the same table."""
    from w2v.word2vec import FastText
    corpus = tmp_path / "c.txt"
    rng = np.random.default_rng(2)
    corpus.write_text("\n".join(" ".join(rng.choice(WORDS, 10)) for _ in range(300)) + "\n", encoding="utf-8")
    ft = FastText(corpus_file=str(corpus), min_n=3, max_n=5, bucket=BUCKET, sg=1, vector_size=DIM, min_count=1,
                  epochs=1, workers=1, quiet=True)
    assert isinstance(ft.wv, FastTextKeyedVectors) and ft.wv.bucket == BUCKET
    theirs = gensim_ft.FastTextKeyedVectors(DIM, 3, 5, BUCKET)
    theirs.add_vectors(list(ft.wv.index_to_key), np.zeros((len(ft.wv), DIM), dtype=np.float32))
    theirs.init_post_load(np.array(ft.wv.input_table))
    np.testing.assert_allclose(ft.wv.vectors, theirs.vectors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ft.wv[OOV], np.stack([theirs[w] for w in OOV]), rtol=1e-5, atol=1e-6)
    assert [w for w, _ in ft.wv.most_similar("catty", topn=3)] == [w for w, _ in theirs.most_similar("catty", topn=3)]
