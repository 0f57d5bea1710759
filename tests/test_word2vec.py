"""w2v.Word2Vec: option mapping and errors, same training as the command line, vocabulary
updates, save/load/continue, callbacks and frozen (locked) rows."""
import numpy as np
import pytest
from conftest import sample_head

from w2v import Word2Vec
from w2v.callbacks import CallbackAny2Vec
from w2v.config import ConfigError, build_config
from w2v.export import load_word2vec, save_word2vec_text
from w2v.sentences import SentencesError
from w2v.word2vec import RULE_DISCARD, RULE_KEEP, RULE_DEFAULT, effective_min_count

# Settings under which a run is deterministic (one thread, one worker), so runs can be compared.
EXACT = dict(workers=1, seed=3, epochs=1, quiet=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return sample_head(tmp_path_factory.mktemp("w2v") / "head.txt", 60_000)


@pytest.fixture(scope="module")
def sentences(corpus):
    return [line.split() for line in open(corpus, encoding="utf-8")]


def small(**kw):
    return dict(EXACT, vector_size=16, window=3, min_count=3, **kw)


# --- options ----------------------------------------------------------------------------------

def test_gensim_arguments_map_to_the_config():
    m = Word2Vec(vector_size=32, window=7, min_count=2, sample=1e-4, seed=9, workers=2, sg=1, negative=7,
                 ns_exponent=0.5, cbow_mean=0, alpha=0.03, min_alpha=0.001, epochs=4, max_vocab_size=5000)
    c = m.config
    assert (c.model.dim, c.model.window, c.vocab.min_count, c.model.sample) == (32, 7, 2, 1e-4)
    assert (c.train.seed, c.train.threads, c.model.arch, c.model.negative) == (9, 2, "skipgram", 7)
    assert (c.model.ns_exponent, c.model.cbow_mean, c.train.alpha, c.train.min_alpha) == (0.5, False, 0.03, 0.001)
    assert (c.train.epochs, c.vocab.max_distinct_words, c.model.loss) == (4, 5000, "ns")
    d = Word2Vec().config  # gensim's defaults: CBOW, 3 threads
    assert (d.model.arch, d.train.threads, d.model.dim, d.vocab.min_count) == ("cbow", 3, 100, 5)
    assert Word2Vec(hs=1, negative=0).config.model.loss == "hs"
    assert Word2Vec(min_count=0).config.vocab.min_count == 1  # gensim's 0 keeps every word, as 1 does


def test_w2v_options_by_yaml_name():
    c = Word2Vec(sampler="uniform", device="cpu", backend="torch", batch_size=64, lowercase=True,
                 **{"train.workers": 2, "model.shared_negatives": False}).config
    assert (c.model.sampler, c.train.device, c.train.backend, c.train.batch_size) == ("uniform", "cpu", "torch", 64)
    assert (c.corpus.lowercase, c.train.workers, c.model.shared_negatives) == (True, 2, False)
    assert Word2Vec().config.corpus.lowercase is False  # gensim does not fold case


@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(dim=10), TypeError, ["'dim'", "'vector_size'"]),
    (dict(size=10), TypeError, ["'size'", "vector_size"]),
    (dict(threads=2), TypeError, ["'workers'"]),
    (dict(**{"vocab.max_vocab_size": 10}), TypeError, ["max_final_vocab"]),
    (dict(**{"output.dir": "x"}), TypeError, ["output", "model.save"]),
    (dict(vectorsize=10), TypeError, ["did you mean 'vector_size'"]),
    (dict(shrink_windows=False), ValueError, ["shrink_windows=False"]),
    (dict(sorted_vocab=0), ValueError, ["sorted_vocab"]),
    (dict(hs=1), ValueError, ["hs=1 with negative=5", "negative=0"]),
    (dict(hs=0, negative=0), ValueError, ["trains nothing"]),
    (dict(sg=2), ValueError, ["'sg' must be 0 or 1"]),
    (dict(vector_size=0), ConfigError, ["'vector_size' (model.dim)", ">= 1"]),
    (dict(max_vocab_size=10), ConfigError, ["'max_vocab_size' (vocab.max_distinct_words)"]),
    (dict(min_alpha=0.5), ConfigError, ["'min_alpha' (train.min_alpha)"]),
    (dict(sampler="nope"), ConfigError, ["model.sampler"]),
])
def test_refused_arguments_name_themselves(kwargs, exc, words):
    with pytest.raises(exc) as e:
        Word2Vec(**kwargs)
    for w in words:
        assert w in str(e.value)


def test_bad_sentences_name_the_sentence(tmp_path):
    good = [["a", "b"]] * 5
    cases = [(good + ["a sentence as a str"], "sentence 5 is a str"),
             (good + [["ok", "two words"]], "sentence 5: token 'two words'"),
             (good + [["ok", ""]], "sentence 5: token ''"),
             (good + [["ok", 3]], "sentence 5: token 3 is a int"),
             (good + [7], "sentence 5 is a int")]
    for bad, message in cases:
        with pytest.raises(SentencesError, match=message):
            Word2Vec(bad, min_count=1, quiet=True)
    with pytest.raises(SentencesError, match="generator"):
        Word2Vec((s for s in good), min_count=1, quiet=True)
    with pytest.raises(TypeError, match="exactly one of"):
        Word2Vec().build_vocab()


def test_missing_corpus_file_is_named(tmp_path):
    from w2v.reader import CorpusError
    with pytest.raises(CorpusError, match="nope.txt"):
        Word2Vec(corpus_file=str(tmp_path / "nope.txt"))


# --- vocabulary -------------------------------------------------------------------------------

def test_max_final_vocab_picks_a_min_count_as_gensim():
    counts = {"a": 9, "b": 7, "c": 7, "d": 5, "e": 1}
    assert effective_min_count(counts, 1, 2) == 8   # 'b' and 'c' tie at the cut: both go
    assert effective_min_count(counts, 1, 3) == 6
    assert effective_min_count(counts, 1, 4) == 2
    assert effective_min_count(counts, 6, 4) == 6   # the larger of the two
    assert effective_min_count(counts, 2, None) == 2
    assert effective_min_count(counts, 1, 10) == 1


def test_trim_rule_and_max_final_vocab(sentences):
    def rule(word, count, min_count):
        if word == "the":
            return RULE_DISCARD
        if word == "afghan":
            return RULE_KEEP
        return RULE_DEFAULT
    m = Word2Vec(min_count=1000, trim_rule=rule, quiet=True)
    m.build_vocab(sentences, trim_rule=rule)
    raw = {}
    for s in sentences:
        for w in s:
            raw[w] = raw.get(w, 0) + 1
    expected = {w for w, c in raw.items() if c >= 1000 and w != "the"} | {"afghan"}
    assert set(m.wv.index_to_key) == expected
    capped = Word2Vec(min_count=1, max_final_vocab=50, quiet=True)
    capped.build_vocab(sentences)
    cut = sorted(raw.values(), reverse=True)[50]
    assert set(capped.wv.index_to_key) == {w for w, c in raw.items() if c > cut}


def test_update_adds_fresh_rows_and_keeps_trained_ones(sentences):
    half = len(sentences) // 2
    m = Word2Vec(sentences[:half], **small())
    old_words, old_in, old_out = list(m.wv.index_to_key), m.wv.vectors.copy(), m.syn1neg.copy()
    old_counts = np.array([m.wv.get_vecattr(w, "count") for w in old_words])
    m.build_vocab(sentences[half:], update=True)
    V = len(old_words)
    assert m.wv.index_to_key[:V] == old_words and len(m.wv) > V
    assert np.array_equal(m.wv.vectors[:V], old_in) and np.array_equal(m.syn1neg[:V], old_out)
    new_in = m.wv.vectors[V:]
    assert np.all(np.abs(new_in) <= 0.5 / 16) and np.all(new_in.std(axis=1) > 0.05 / 16)
    assert np.all(m.syn1neg[V:] == 0)
    second = {}
    for s in sentences[half:]:
        for w in s:
            second[w] = second.get(w, 0) + 1
    counts = np.array([m.wv.get_vecattr(w, "count") for w in old_words])
    assert np.array_equal(counts, old_counts + np.array([second.get(w, 0) for w in old_words]))
    new_words = m.wv.index_to_key[V:]
    assert all(second[w] >= 3 and w not in old_words for w in new_words)
    assert {w for w, c in second.items() if c >= 3} - set(old_words) == set(new_words)
    m.train(sentences[half:], total_examples=m.corpus_count, epochs=1)
    assert not np.array_equal(m.wv.vectors[V:], new_in)  # the new rows train


def test_update_refused_with_hierarchical_softmax(sentences):
    m = Word2Vec(sentences[:20], hs=1, negative=0, **small())
    with pytest.raises(ValueError, match="update=True.*hs=1"):
        m.build_vocab(sentences[20:], update=True)
    with pytest.raises(RuntimeError, match="no vocabulary yet"):
        Word2Vec().build_vocab(sentences, update=True)


# --- training ---------------------------------------------------------------------------------

def test_sentences_and_corpus_file_train_the_same_vectors(corpus, sentences):
    a = Word2Vec(sentences, **small())
    b = Word2Vec(corpus_file=str(corpus), **small())
    assert a.wv.index_to_key == b.wv.index_to_key
    assert np.array_equal(a.wv.vectors, b.wv.vectors) and np.array_equal(a.syn1neg, b.syn1neg)
    assert a.corpus_count == len(sentences) and a.corpus_total_words == sum(map(len, sentences))


def test_native_text_passes_equal_the_python_reference(tmp_path, monkeypatch):
    # build_vocab counts and train encodes in C (pipeline.count_corpus, pipeline.prepare); with the
    # C scanner unavailable both run in Python. Same words, counts, sentences, tokens and vectors,
    # on text with CRLF, tabs, Unicode case and spaces, long lines (max_sentence_length cuts),
    # empty lines and no final newline, and a trim_rule that keeps words under min_count.
    from w2v import scan
    from w2v.native import NativeUnavailable
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(300)] + ["Ünïcode", "ÜNÏCODE", "straße", "ΣΑΣ", "x\u00a0y"]
    lines = []
    for i in range(400):
        k = int(rng.integers(0, 40 if i % 50 else 2500))
        lines.append(["\t", " ", "  "][i % 3].join(rng.choice(words, k)) + ("\r" if i % 7 == 0 else ""))
    f = tmp_path / "text.txt"
    f.write_text("\n".join(lines))   # no final newline
    rule = (lambda w, c, m: RULE_KEEP if w.startswith("w1") else RULE_DEFAULT)
    kw = dict(small(), min_count=4, lowercase=True, max_sentence_length=100, cache_dir=str(tmp_path / "c"))

    def fit():
        m = Word2Vec(**kw)
        m.build_vocab(corpus_file=str(f), trim_rule=rule)
        m.train(corpus_file=str(f), total_examples=m.corpus_count, epochs=1)
        return m
    from w2v import pipeline
    passes = []
    real = pipeline._native
    with monkeypatch.context() as mp:
        mp.setattr(pipeline, "_native", lambda *a, **k: passes.append(1) or real(*a, **k))
        native = fit()
    assert passes == [1]   # train() encoded natively (build_vocab counted without the cache)
    with monkeypatch.context() as mp:
        mp.setattr(scan, "load", lambda: (_ for _ in ()).throw(NativeUnavailable("off for the test")))
        reference = fit()
    assert native.wv.index_to_key == reference.wv.index_to_key and len(native.wv) > 100
    assert [native.wv.get_vecattr(w, "count") for w in native.wv.index_to_key] == \
        [reference.wv.get_vecattr(w, "count") for w in reference.wv.index_to_key]
    assert (native.corpus_count, native.corpus_total_words) == (reference.corpus_count, reference.corpus_total_words)
    assert native.corpus_count > 400   # the long lines were cut
    assert np.array_equal(native.wv.vectors, reference.wv.vectors)


@pytest.mark.parametrize("sg", [0, 1])
def test_same_vectors_as_the_command_line(corpus, tmp_path, sg):
    from w2v.trainer import train
    cfg = build_config({"corpus": {"paths": [str(corpus)]}, "vocab": {"min_count": 3},
                        "model": {"arch": "skipgram" if sg else "cbow", "dim": 16, "window": 3},
                        "train": {"epochs": 2, "seed": 3, "threads": 1},
                        "output": {"dir": str(tmp_path / "run"), "binary": False}})
    train(cfg, quiet=True)
    words, vectors = load_word2vec(tmp_path / "run" / "word_embedding.txt")
    m = Word2Vec(corpus_file=str(corpus), lowercase=True, sg=sg, alpha=0.025, **dict(small(), epochs=2))
    assert m.wv.index_to_key == words
    assert np.array_equal(m.wv.vectors, vectors)


def test_loss_and_learning_rate_per_train_call(sentences):
    m = Word2Vec(sentences, **small())
    first = m.get_latest_training_loss()
    assert isinstance(first, float) and first == pytest.approx(
        sum(r["loss"] * r["examples"] for r in m.training_metrics), rel=1e-12)
    m.train(sentences, total_examples=m.corpus_count, epochs=2, start_alpha=0.01, end_alpha=0.005)
    # The loss is that of this call only (not cumulative), and the rate restarted at start_alpha.
    assert len(m.training_metrics) == 2 and m.train_count == 2 and m.epochs_trained == 3
    assert m.get_latest_training_loss() == pytest.approx(
        sum(r["loss"] * r["examples"] for r in m.training_metrics), rel=1e-12)
    assert (m.alpha, m.min_alpha, m.epochs) == (0.01, 0.005, 2)
    assert m.training_metrics[-1]["final_lr"] == pytest.approx(0.005, rel=1e-3)
    assert m.words_trained == 3 * m.training_metrics[0]["words"]


def test_callbacks_get_the_model_in_order(sentences):
    calls = []

    class Recorder(CallbackAny2Vec):
        def on_train_begin(self, model):
            calls.append(("train_begin", model is m_ref[0] if m_ref else None))

        def on_epoch_begin(self, model):
            calls.append(("epoch_begin", len(model.wv)))

        def on_epoch_end(self, model):
            calls.append(("epoch_end", round(model.get_latest_training_loss(), 6)))
            vectors.append(model.wv.vectors.copy())

        def on_train_end(self, model):
            calls.append(("train_end", None))

    m_ref, vectors = [], []
    m = Word2Vec(**small(epochs=2))
    m_ref.append(m)
    m.build_vocab(sentences)
    m.train(sentences, total_examples=m.corpus_count, epochs=2, callbacks=[Recorder()])
    names = [c[0] for c in calls]
    assert names == ["train_begin", "epoch_begin", "epoch_end", "epoch_begin", "epoch_end", "train_end"]
    assert calls[0][1] is True and calls[1][1] == len(m.wv)
    per_epoch = [r["loss"] * r["examples"] for r in m.training_metrics]
    assert calls[2][1] == pytest.approx(per_epoch[0], rel=1e-6)
    assert calls[4][1] == pytest.approx(sum(per_epoch), rel=1e-6)
    assert not np.array_equal(vectors[0], vectors[1])  # model.wv is the live table at each epoch end
    assert np.array_equal(vectors[1], m.wv.vectors)


def test_save_load_continue_is_the_same_as_not_stopping(sentences, tmp_path):
    a = Word2Vec(sentences, **small(sample=1e-3))
    a.save(tmp_path / "m.w2v")
    b = Word2Vec.load(tmp_path / "m.w2v")
    assert b.wv.index_to_key == a.wv.index_to_key and np.array_equal(b.wv.vectors, a.wv.vectors)
    assert np.array_equal(b.syn1neg, a.syn1neg)
    assert [b.wv.get_vecattr(w, "count") for w in b.wv.index_to_key] == \
        [a.wv.get_vecattr(w, "count") for w in a.wv.index_to_key]
    assert b.config == a.config and (b.train_count, b.corpus_count, b.epochs_trained) == (1, a.corpus_count, 1)
    assert b.get_latest_training_loss() == a.get_latest_training_loss()
    a.train(sentences, total_examples=a.corpus_count, epochs=1)
    b.train(sentences, total_examples=b.corpus_count, epochs=1)
    assert np.array_equal(a.wv.vectors, b.wv.vectors) and np.array_equal(a.syn1neg, b.syn1neg)
    with pytest.raises(ValueError, match="not a model"):
        (tmp_path / "junk").write_bytes(b"junk")
        Word2Vec.load(tmp_path / "junk")


# --- frozen rows ------------------------------------------------------------------------------

def _pretrained(tmp_path, m, words):
    rng = np.random.default_rng(5)
    path = tmp_path / "pretrained.txt"
    vectors = rng.normal(size=(len(words) + 1, m.vector_size)).astype(np.float32) * 0.1
    save_word2vec_text(path, list(words) + ["not-in-the-vocabulary"], vectors)
    return path, vectors


@pytest.mark.parametrize("mode", [dict(sg=0), dict(sg=1), dict(sg=1, shared_negatives=False)],
                         ids=["cbow", "skipgram", "skipgram-pairs"])
def test_locked_rows_do_not_move_and_others_do(sentences, tmp_path, mode):
    m = Word2Vec(**small(epochs=2, **mode))
    m.build_vocab(sentences)
    frozen = m.wv.index_to_key[5:25]
    path, vectors = _pretrained(tmp_path, m, frozen)
    assert m.intersect_word2vec_format(str(path), lockf=0.0) == len(frozen)
    rows = [m.wv.key_to_index[w] for w in frozen]
    assert np.array_equal(m.wv.vectors[rows], vectors[:-1])
    before = m.wv.vectors.copy()
    m.train(sentences, total_examples=m.corpus_count, epochs=2)
    assert np.array_equal(m.wv.vectors[rows], vectors[:-1])
    free = np.setdiff1d(np.arange(len(m.wv)), rows)
    assert np.all(np.abs(m.wv.vectors[free] - before[free]).max(axis=1) > 0)
    assert np.any(m.syn1neg[rows] != 0)  # the output layer of a frozen word still trains


def test_locked_rows_refuse_the_fused_backend(sentences, tmp_path):
    m = Word2Vec(backend="fused", **small())
    m.build_vocab(sentences)
    path, _ = _pretrained(tmp_path, m, m.wv.index_to_key[:3])
    m.intersect_word2vec_format(str(path))
    with pytest.raises(ConfigError, match="lock"):
        m.train(sentences, total_examples=m.corpus_count, epochs=1)


def test_init_vectors_config_key_freezes_rows_on_the_command_line(corpus, tmp_path):
    from w2v.trainer import train
    base = {"corpus": {"paths": [str(corpus)]}, "vocab": {"min_count": 3}, "model": {"dim": 16, "window": 3},
            "train": {"epochs": 1, "seed": 3, "threads": 1}, "output": {"binary": False}}
    cfg = build_config({**base, "output": {"dir": str(tmp_path / "a"), "binary": False}})
    train(cfg, quiet=True)
    words, _ = load_word2vec(tmp_path / "a" / "word_embedding.txt")
    rng = np.random.default_rng(1)
    pre = rng.normal(size=(10, 16)).astype(np.float32)
    save_word2vec_text(tmp_path / "pre.txt", words[3:13], pre)
    train_cfg = {**base["train"], "init_vectors": str(tmp_path / "pre.txt"), "init_lockf": 0.0}
    cfg = build_config({**base, "train": train_cfg, "output": {"dir": str(tmp_path / "b"), "binary": False}})
    train(cfg, quiet=True)
    words_b, vectors_b = load_word2vec(tmp_path / "b" / "word_embedding.txt")
    assert words_b == words and np.array_equal(vectors_b[3:13], pre)
    # With lock factor 1 the same rows start from the file and train.
    train_cfg["init_lockf"] = 1.0
    cfg = build_config({**base, "train": train_cfg, "output": {"dir": str(tmp_path / "c"), "binary": False}})
    train(cfg, quiet=True)
    _, vectors_c = load_word2vec(tmp_path / "c" / "word_embedding.txt")
    assert np.all(np.abs(vectors_c[3:13] - pre).max(axis=1) > 0)
    with pytest.raises(ConfigError, match="train.init_lockf"):
        build_config({"train": {"init_lockf": 2.0}})


def test_progress_bar_unless_quiet(sentences, capsys):
    Word2Vec(sentences[:20], **dict(small(), quiet=False))
    assert "train" in capsys.readouterr().err  # tqdm's bar, on stderr
    Word2Vec(sentences[:20], **small())
    assert "train" not in capsys.readouterr().err
