"""gensim's Word2Vec tutorial and docstring examples, run as written with only the imports changed.

Each test follows a section of gensim's "Word2Vec Model" tutorial (or the examples of
gensim.models.word2vec's docstrings) on the head of the shipped sample instead of the Lee corpus;
`datapath` stands in for gensim.test.utils.datapath and points at the shipped evaluation sets."""
import math

import numpy as np
import pytest
from conftest import ROOT, sample_head

# gensim: from gensim.models import Word2Vec, KeyedVectors
from w2v import KeyedVectors, Word2Vec
# gensim: from gensim.models.callbacks import CallbackAny2Vec
from w2v.callbacks import CallbackAny2Vec


def datapath(name):
    return str(ROOT / "data" / "eval" / name)


class MyCorpus:
    """An iterator that yields sentences (lists of str)."""

    def __init__(self, path):
        self.path = path

    def __iter__(self):
        for line in open(self.path, encoding="utf-8"):
            # assume there's one document per line, tokens separated by whitespace
            yield line.split()


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory):
    return str(sample_head(tmp_path_factory.mktemp("tutorial") / "head.txt", 200_000))


@pytest.fixture(scope="module")
def model(corpus_path):
    sentences = MyCorpus(corpus_path)
    # Skip-gram: on a corpus this small, CBOW's vectors are all alike (gensim's as much as w2v's).
    return Word2Vec(sentences=sentences, sg=1, workers=2, quiet=True)


def test_train_and_query(model):
    wv = model.wv
    vec_america = wv["america"]
    assert vec_america.shape == (100,) and vec_america.dtype == np.float32
    for index, word in enumerate(wv.index_to_key):
        if index == 10:
            break
        assert wv.key_to_index[word] == index
    # The most frequent words come first, as in gensim's sorted vocabulary.
    counts = [wv.get_vecattr(w, "count") for w in wv.index_to_key[:50]]
    assert counts == sorted(counts, reverse=True)
    with pytest.raises(KeyError):
        wv["cameroon-not-a-word"]

    pairs = [("iraq", "afghanistan"), ("iraq", "taxes"), ("jobs", "workers"), ("jobs", "afghanistan")]
    sims = {pair: wv.similarity(*pair) for pair in pairs}
    # Trained vectors put related words closer than unrelated ones.
    assert sims[("iraq", "afghanistan")] > sims[("iraq", "taxes")] + 0.05
    assert sims[("jobs", "workers")] > sims[("jobs", "afghanistan")] + 0.05

    similar = wv.most_similar(positive=["iraq", "afghanistan"], topn=5)
    assert len(similar) == 5 and all(isinstance(w, str) and -1 <= s <= 1 for w, s in similar)
    assert [s for _, s in similar] == sorted((s for _, s in similar), reverse=True)
    assert not {"iraq", "afghanistan"} & {w for w, _ in similar}
    with_negative = wv.most_similar(positive=["jobs", "iraq"], negative=["afghanistan"], topn=5)
    assert [w for w, _ in with_negative] != [w for w, _ in wv.most_similar(positive=["jobs", "iraq"], topn=5)]
    assert wv.doesnt_match(["iraq", "afghanistan", "iran", "taxes"]) == "taxes"


def test_corpus_file_gives_the_same_vocabulary(model, corpus_path):
    from_file = Word2Vec(corpus_file=corpus_path, sg=1, workers=2, epochs=1, quiet=True)
    assert from_file.wv.index_to_key == model.wv.index_to_key
    assert from_file.corpus_total_words == model.corpus_total_words
    assert [from_file.wv.get_vecattr(w, "count") for w in from_file.wv.index_to_key[:100]] == \
        [model.wv.get_vecattr(w, "count") for w in model.wv.index_to_key[:100]]


def test_evaluate(model):
    score, sections = model.wv.evaluate_word_analogies(datapath("questions-words.txt"))
    assert 0.0 <= score <= 1.0
    assert sections[-1]["section"] == "Total accuracy"
    assert len(sections[-1]["correct"]) + len(sections[-1]["incorrect"]) > 0
    pearson, spearman, oov_ratio = model.wv.evaluate_word_pairs(datapath("wordsim353.tsv"))
    assert -1 <= pearson[0] <= 1 and -1 <= spearman[0] <= 1
    assert 0 < oov_ratio < 100


def test_save_load_and_resume_training(model, corpus_path, tmp_path):
    path = str(tmp_path / "word2vec.model")
    model.save(path)
    new_model = Word2Vec.load(path)
    assert np.array_equal(new_model.wv["america"], model.wv["america"])
    more_sentences = [["advanced", "users", "can", "load", "a", "model", "and", "continue", "training", "it",
                       "with", "more", "sentences", "gensimish"]] * 5
    can = new_model.wv.get_vecattr("can", "count")
    new_model.build_vocab(more_sentences, update=True)
    new_model.train(more_sentences, total_examples=new_model.corpus_count, epochs=new_model.epochs)
    assert "gensimish" in new_model.wv and new_model.wv.get_vecattr("can", "count") == can + 5
    assert not np.array_equal(new_model.wv["can"], model.wv["can"])


def test_online_training(corpus_path):
    sentences = MyCorpus(corpus_path)
    lines = list(sentences)
    first, more = lines[: len(lines) // 2], lines[len(lines) // 2:]
    model = Word2Vec(min_count=1, workers=2, quiet=True)
    model.build_vocab(first)
    model.train(first, total_examples=model.corpus_count, epochs=model.epochs)
    size_before = len(model.wv)
    count_before = model.wv.get_vecattr("the", "count")
    model.build_vocab(more, update=True)
    model.train(more, total_examples=model.corpus_count, epochs=model.epochs)
    assert len(model.wv) > size_before
    assert model.wv.get_vecattr("the", "count") > count_before


def test_training_loss(corpus_path):
    sentences = MyCorpus(corpus_path)
    model_with_loss = Word2Vec(sentences, min_count=1, compute_loss=True, hs=0, sg=1, seed=42, workers=2,
                               epochs=2, quiet=True)
    training_loss = model_with_loss.get_latest_training_loss()
    assert isinstance(training_loss, float) and math.isfinite(training_loss)
    # Summed over the examples (gensim's definition): each starts at (1 + negative) * log(2) with
    # the output layer at zero and falls from there, but not to nothing on a corpus this small.
    examples = sum(r["examples"] for r in model_with_loss.training_metrics)
    assert 0.1 * examples < training_loss < 6 * math.log(2) * examples


def test_hierarchical_softmax(tmp_path):
    # Hierarchical softmax trains with the PyTorch step only, which is slower: a smaller text.
    sentences = MyCorpus(sample_head(tmp_path / "small.txt", 30_000))
    model = Word2Vec(sentences, hs=1, negative=0, workers=2, epochs=1, quiet=True)
    assert model.syn1.shape == (len(model.wv) - 1, 100) and np.abs(model.syn1).max() > 0
    assert model.training_metrics[0]["loss"] > 0


class EpochLogger(CallbackAny2Vec):
    """Callback to log information about training."""

    def __init__(self):
        self.epoch = 0
        self.seen = []

    def on_epoch_begin(self, model):
        self.seen.append(f"Epoch #{self.epoch} start")

    def on_epoch_end(self, model):
        self.seen.append(f"Epoch #{self.epoch} end")
        self.epoch += 1


class LossLogger(CallbackAny2Vec):
    """The per-epoch loss, from the running sum as gensim users compute it."""

    def __init__(self):
        self.losses = []
        self.previous = 0.0

    def on_epoch_end(self, model):
        loss = model.get_latest_training_loss()
        self.losses.append(loss - self.previous)
        self.previous = loss


def test_callbacks(corpus_path):
    epoch_logger, loss_logger = EpochLogger(), LossLogger()
    model = Word2Vec(MyCorpus(corpus_path), sg=1, epochs=3, workers=2, callbacks=[epoch_logger, loss_logger],
                     quiet=True)
    assert epoch_logger.seen == ["Epoch #0 start", "Epoch #0 end", "Epoch #1 start", "Epoch #1 end",
                                 "Epoch #2 start", "Epoch #2 end"]
    expected = [r["loss"] * r["examples"] for r in model.training_metrics]
    assert np.allclose(loss_logger.losses, expected, rtol=1e-9)
    assert loss_logger.losses[-1] < loss_logger.losses[0]  # the loss falls as training goes on


def test_keyedvectors_round_trip(model, tmp_path):
    path = str(tmp_path / "vectors.txt")
    model.wv.save_word2vec_format(path)
    wv = KeyedVectors.load_word2vec_format(path, binary=False)
    assert wv.index_to_key == model.wv.index_to_key
    assert np.allclose(wv["america"], model.wv["america"])
