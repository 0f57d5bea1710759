"""KeyedVectors against gensim 4 on vectors trained from the shipped sample; formats and conversions."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, sample_head
from w2v.keyedvectors import KeyedVectors

EVAL = ROOT / "data" / "eval"
QUERIES = ["war", "peace", "tax", "january", "congress"]
TOL = 1e-5


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Skip-gram, 32 dims, 3 epochs on the first ~300k tokens of the sample, through the CLI."""
    work = tmp_path_factory.mktemp("kv_trained")
    corpus = sample_head(work / "head.txt", 300_000)
    cfg = work / "cfg.yaml"
    cfg.write_text(f"corpus:\n  paths: [{corpus}]\nmodel:\n  dim: 32\n"
                   "train:\n  epochs: 3\n  alpha: 0.05\n  threads: 1\n  device: cpu\n  seed: 3\n"
                   f"output:\n  dir: {work / 'out'}\n  binary: true\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "w2v.train", "--config", str(cfg), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return work / "out"


@pytest.fixture(scope="session")
def kv(trained):
    return KeyedVectors.load_word2vec_format(trained / "word_embedding.bin", fvocab=trained / "vocab.txt")


@pytest.fixture(scope="session")
def gkv(trained):
    models = pytest.importorskip("gensim.models")
    return models.KeyedVectors.load_word2vec_format(str(trained / "word_embedding.bin"), binary=True)


def assert_same_neighbours(ours, theirs):
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=TOL)


def test_loaded_like_gensim(kv, gkv, trained):
    assert kv.index_to_key == gkv.index_to_key and len(kv) == len(gkv) > 1000
    assert kv.vector_size == gkv.vector_size == 32
    assert kv.key_to_index["war"] == gkv.key_to_index["war"]
    np.testing.assert_array_equal(kv.vectors, gkv.vectors)
    np.testing.assert_array_equal(kv["war"], gkv["war"])
    np.testing.assert_array_equal(kv[["war", "peace"]], gkv[["war", "peace"]])
    np.testing.assert_allclose(kv.get_vector("war", norm=True), gkv.get_vector("war", norm=True), atol=1e-7)
    counts = dict(line.split() for line in (trained / "vocab.txt").read_text().splitlines())
    assert kv.get_vecattr("war", "count") == int(counts["war"]) > 0
    assert "war" in kv and "zzzz" not in kv


@pytest.mark.parametrize("query", [
    dict(positive="war"),
    dict(positive=["war", "peace"]),
    dict(positive=["king", "woman"], negative=["man"]),
    dict(positive=[("tax", 2.0), "cut"], negative=[("spending", 0.5)]),
    dict(positive=["tax"], restrict_vocab=300),
    dict(negative=["war"], topn=7),
    dict(positive=["war"], topn=40),
])
def test_most_similar_matches_gensim(kv, gkv, query):
    assert_same_neighbours(kv.most_similar(**query), gkv.most_similar(**query))


def test_most_similar_by_vectors_matches_gensim(kv, gkv):
    rng = np.random.default_rng(5)
    vec = rng.standard_normal(32).astype(np.float32)
    assert_same_neighbours(kv.most_similar(positive=[vec]), gkv.most_similar(positive=[vec]))
    assert_same_neighbours(kv.most_similar(positive=["war", vec], negative=["peace"]),
                           gkv.most_similar(positive=["war", vec], negative=["peace"]))
    assert_same_neighbours(kv.similar_by_vector(vec, topn=5), gkv.similar_by_vector(vec, topn=5))
    assert_same_neighbours(kv.similar_by_word("peace", topn=5, restrict_vocab=500),
                           gkv.similar_by_word("peace", topn=5, restrict_vocab=500))
    # A vector query excludes nothing: the word's own vector finds the word first.
    assert kv.most_similar(positive=[kv["war"]], topn=1)[0][0] == "war"


def test_most_similar_topn_none_and_zero(kv, gkv):
    ours = kv.most_similar(positive=["war"], negative=["peace"], topn=None)
    theirs = gkv.most_similar(positive=["war"], negative=["peace"], topn=None)
    assert ours.shape == (len(kv),)
    np.testing.assert_allclose(ours, theirs, atol=TOL)
    assert len(kv.most_similar("war", topn=None, restrict_vocab=100)) == 100
    assert kv.most_similar("war", topn=0) == [] == gkv.most_similar("war", topn=0)


@pytest.mark.parametrize("query", [
    dict(positive=["king", "woman"], negative=["man"]),
    dict(positive="war"),
    dict(positive=["tax", "cut", "jobs"], negative=["spending", "debt"], topn=20),
])
def test_most_similar_cosmul_matches_gensim(kv, gkv, query):
    assert_same_neighbours(kv.most_similar_cosmul(**query), gkv.most_similar_cosmul(**query))
    np.testing.assert_allclose(kv.most_similar_cosmul(**{**query, "topn": None}),
                               gkv.most_similar_cosmul(**{**query, "topn": None}), rtol=TOL)


def test_cosmul_restrict_vocab_limits_candidates(kv, gkv):
    # gensim 4.4 ignores restrict_vocab here; w2v searches the first 200 words only.
    full = gkv.most_similar_cosmul(positive=["war", "peace"], negative=["tax"], topn=None)[:200]
    theirs = [(gkv.index_to_key[i], float(full[i])) for i in np.argsort(-full, kind="stable")
              if gkv.index_to_key[i] not in ("war", "peace", "tax")][:10]
    assert_same_neighbours(kv.most_similar_cosmul(positive=["war", "peace"], negative=["tax"],
                                                  restrict_vocab=200), theirs)


def test_pairwise_queries_match_gensim(kv, gkv):
    for a, b in [("war", "peace"), ("tax", "taxes"), ("january", "congress")]:
        assert kv.similarity(a, b) == pytest.approx(float(gkv.similarity(a, b)), abs=TOL)
        assert kv.distance(a, b) == pytest.approx(float(gkv.distance(a, b)), abs=TOL)
        assert kv.rank(a, b) == gkv.rank(a, b)
        assert kv.closer_than(a, b) == gkv.closer_than(a, b)
        assert kv.words_closer_than(a, b) == kv.closer_than(a, b)
    ws1, ws2 = ["war", "army", "navy"], ["peace", "treaty"]
    assert kv.n_similarity(ws1, ws2) == pytest.approx(float(gkv.n_similarity(ws1, ws2)), abs=TOL)
    np.testing.assert_allclose(kv.distances("war"), gkv.distances("war"), atol=TOL)
    np.testing.assert_allclose(kv.distances("war", ["peace", "tax"]), gkv.distances("war", ["peace", "tax"]), atol=TOL)
    vec = kv["congress"] + kv["senate"]
    np.testing.assert_allclose(kv.distances(vec, QUERIES), gkv.distances(vec, QUERIES), atol=TOL)
    for words in (["war", "army", "navy", "january"], ["january", "february", "march", "tax"],
                  ["war", "peace", "tax", "taxes", "senate"]):
        assert kv.doesnt_match(words) == gkv.doesnt_match(words)
        ours, theirs = kv.rank_by_centrality(words), gkv.rank_by_centrality(words)
        assert [w for _, w in ours] == [w for _, w in theirs]
        np.testing.assert_allclose([c for c, _ in ours], [c for c, _ in theirs], atol=TOL)
    for options in ({}, dict(pre_normalize=False), dict(post_normalize=True), dict(weights=[2.0, -1.0, 0.5])):
        keys = ["war", "peace", kv["tax"]]
        np.testing.assert_allclose(kv.get_mean_vector(keys, **options), gkv.get_mean_vector(keys, **options),
                                   atol=1e-6)
    assert np.array_equal(kv.get_mean_vector(["war", "zzzz"]), kv.get_mean_vector(["war"]))  # skipped
    with pytest.raises(KeyError, match="'zzzz'"):
        kv.get_mean_vector(["war", "zzzz"], ignore_missing=False)


def test_rank_is_one_plus_words_closer(kv):
    d = kv.distances("war")
    assert kv.rank("war", "peace") == 1 + int(np.sum(d < d[kv.get_index("peace")])) - 1  # 'war' itself
    top = kv.most_similar("war", topn=1)[0][0]
    assert kv.rank("war", top) == 1


@pytest.mark.parametrize("options", [
    {}, dict(restrict_vocab=1000), dict(case_insensitive=False), dict(dummy4unknown=True),
])
@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
def test_evaluate_word_pairs_matches_gensim(kv, gkv, name, options):
    ours, theirs = kv.evaluate_word_pairs(EVAL / name, **options), gkv.evaluate_word_pairs(str(EVAL / name), **options)
    for mine, ref in zip(ours[:2], theirs[:2]):
        assert mine[0] == pytest.approx(ref[0], abs=TOL)
        assert mine.pvalue == pytest.approx(ref.pvalue, rel=1e-4, abs=1e-12)
    assert ours[2] == pytest.approx(theirs[2], abs=1e-9)
    assert 0 < ours[2] < 100


@pytest.mark.parametrize("options", [{}, dict(restrict_vocab=2000), dict(case_insensitive=False)])
def test_evaluate_word_analogies_matches_gensim(kv, gkv, options):
    path = EVAL / "questions-words.txt"
    score, sections = kv.evaluate_word_analogies(path, **options)
    gscore, gsections = gkv.evaluate_word_analogies(str(path), **options)
    assert [s["section"] for s in sections] == [s["section"] for s in gsections]
    assert sections[-1]["section"] == "Total accuracy"
    for mine, ref in zip(sections, gsections):
        assert mine["correct"] == ref["correct"] and mine["incorrect"] == ref["incorrect"], mine["section"]
    # Enough answers right that the comparison says something: 7-12 of the restricted set's
    # questions, depending on the seed's draws, for these small vectors.
    assert score == pytest.approx(gscore) and len(sections[-1]["correct"]) > 5


def test_analogies_dummy4unknown_counts_oov_as_incorrect(kv, gkv):
    path = EVAL / "questions-words.txt"
    score, sections = kv.evaluate_word_analogies(path, restrict_vocab=500, dummy4unknown=True)
    gscore, gsections = gkv.evaluate_word_analogies(str(path), restrict_vocab=500, dummy4unknown=True)
    assert score == pytest.approx(gscore)
    assert len(sections[-1]["incorrect"]) == len(gsections[-1]["incorrect"]) > 19000


def test_missing_word_raises_key_error_naming_it(kv):
    assert "war" in kv and "War" not in kv  # no case folding
    for call in (lambda: kv["War"], lambda: kv.get_vector("War"), lambda: kv.most_similar("War"),
                 lambda: kv.most_similar(positive=["war"], negative=["War"]), lambda: kv.similarity("war", "War"),
                 lambda: kv.most_similar_cosmul(["War"]), lambda: kv.n_similarity(["war"], ["War"]),
                 lambda: kv.rank("war", "War"), lambda: kv[["war", "War"]]):
        with pytest.raises(KeyError, match="'War'"):
            call()


def test_save_load_round_trip(kv, tmp_path):
    path = tmp_path / "vectors.kv"
    kv.save(path)
    for mmap in (None, "r"):
        back = KeyedVectors.load(path, mmap=mmap)
        assert back.index_to_key == kv.index_to_key
        np.testing.assert_array_equal(back.vectors, kv.vectors)
        np.testing.assert_array_equal(back.counts, kv.counts)
        assert back.most_similar("war", topn=5) == kv.most_similar("war", topn=5)
    mapped = KeyedVectors.load(path, mmap="r")
    assert isinstance(mapped.vectors, np.memmap) and not mapped.vectors.flags.writeable
    assert isinstance(KeyedVectors.load(path).vectors, np.ndarray)


def test_save_load_without_counts_and_damaged_files(tmp_path):
    words = ["a", "b", "c"]
    kv = KeyedVectors(words, np.arange(6, dtype=np.float32).reshape(3, 2))
    kv.save(tmp_path / "v")
    back = KeyedVectors.load(tmp_path / "v")
    assert back.counts is None and back.index_to_key == words
    with pytest.raises(KeyError, match="no counts"):
        back.get_vecattr("a", "count")
    # Vectors of another shape beside the vocabulary are refused.
    KeyedVectors(words[:2], np.ones((2, 2), dtype=np.float32)).save(tmp_path / "w")
    (tmp_path / "w.vectors.npy").replace(tmp_path / "v.vectors.npy")
    with pytest.raises(ValueError, match="do not match"):
        KeyedVectors.load(tmp_path / "v")
    (tmp_path / "x").write_text("3 2\na 1 2\n")
    with pytest.raises(ValueError, match="not a w2v KeyedVectors file"):
        KeyedVectors.load(tmp_path / "x")


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_format_round_trip_through_gensim(kv, binary, tmp_path):
    models = pytest.importorskip("gensim.models")
    path, vocab = tmp_path / "v.out", tmp_path / "vocab.txt"
    kv.save_word2vec_format(path, fvocab=vocab, binary=binary)
    theirs = models.KeyedVectors.load_word2vec_format(str(path), fvocab=str(vocab), binary=binary)
    np.testing.assert_array_equal(theirs.vectors, kv.vectors)
    assert theirs.get_vecattr("war", "count") == kv.get_vecattr("war", "count")
    back = KeyedVectors.load_word2vec_format(path, fvocab=vocab)  # format detected
    np.testing.assert_array_equal(back.counts, kv.counts)


def test_load_limit_matches_gensim(trained, gkv):
    models = pytest.importorskip("gensim.models")
    ours = KeyedVectors.load_word2vec_format(trained / "word_embedding.txt", limit=50)
    theirs = models.KeyedVectors.load_word2vec_format(str(trained / "word_embedding.txt"), limit=50)
    assert ours.index_to_key == theirs.index_to_key and len(ours) == 50
    np.testing.assert_allclose(ours.vectors, theirs.vectors, atol=1e-7)


def test_to_gensim_and_back(kv):
    pytest.importorskip("gensim.models")
    g = kv.to_gensim()
    assert type(g).__module__.startswith("gensim.")
    assert g.index_to_key == kv.index_to_key and g.get_vecattr("war", "count") == kv.get_vecattr("war", "count")
    assert_same_neighbours(g.most_similar("war"), kv.most_similar("war"))
    back = KeyedVectors.from_gensim(g)
    np.testing.assert_array_equal(back.vectors, kv.vectors)
    np.testing.assert_array_equal(back.counts, kv.counts)


def test_to_gensim_without_gensim_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gensim", None)
    monkeypatch.setitem(sys.modules, "gensim.models", None)
    with pytest.raises(ImportError, match="pip install gensim"):
        KeyedVectors(["a"], np.ones((1, 2))).to_gensim()


def test_projector_files(kv, tmp_path):
    vectors_tsv, metadata_tsv = kv.save_projector(tmp_path / "proj", limit=300)
    rows = [line.split("\t") for line in vectors_tsv.read_text().splitlines()]
    labels = metadata_tsv.read_text().splitlines()
    assert len(rows) == len(labels) == 300 and {len(r) for r in rows} == {32}
    order = np.argsort(-kv.counts, kind="stable")[:300]
    assert labels == [kv.index_to_key[i] for i in order]  # no header row: one column of labels
    np.testing.assert_allclose(np.array(rows, dtype=np.float32)[7], kv[labels[7]], rtol=1e-5)


def test_constructor_checks(tmp_path):
    with pytest.raises(ValueError, match="appears twice"):
        KeyedVectors(["a", "a"], np.ones((2, 2)))
    with pytest.raises(ValueError, match="one row per word"):
        KeyedVectors(["a"], np.ones((2, 2)))
    kv = KeyedVectors(["a", "b"], np.array([[1, 0], [0, 0]], dtype=np.float64), counts=[5, 3])
    assert kv.vectors.dtype == np.float32 and kv.get_vecattr("b", "count") == 3
    assert kv.similarity("a", "b") == 0.0  # a zero vector is similar to nothing, not NaN
