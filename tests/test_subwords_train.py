"""Training a subword model end to end: config, core, exports, resume, memory estimate, Python API."""
import logging

import numpy as np
import pytest
import torch

from conftest import sample_head
from w2v import memory
from w2v.backends import CKernel, TritonKernel, _triton_missing, build_backend, unavailable_reason
from w2v.config import SAMPLERS, ConfigError, build_config
from w2v.core import build_model, subword_index, train_tables
from w2v.errors import TrainingError
from w2v.export import load_word2vec
from w2v.memory import check_memory, estimate_memory
from w2v.pipeline import prepare_corpus
from w2v.samplers import build_sampler
from w2v.subwords import SubwordIndex
from w2v.trainer import train

BUCKETS = 3000


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    return sample_head(tmp_path_factory.mktemp("subwords") / "c.txt", 12_000)


def _cfg(corpus_file, out, model=None, **train_over):
    return build_config({"corpus": {"paths": [str(corpus_file)]}, "output": {"dir": str(out)},
                         "model": {"dim": 12, "subwords": True, "minn": 3, "maxn": 5, "buckets": BUCKETS,
                                   **(model or {})},
                         "train": {"epochs": 1, "threads": 1, "device": "cpu", "seed": 3,
                                   "chunk_tokens": 4096, **train_over}})


def _ngram_rows_moved(result, cfg, corpus_vocab):
    """How many bucket rows training changed, against the initial table of the same seed."""
    model = build_model(cfg, len(corpus_vocab), torch.Generator().manual_seed(cfg.train.seed),
                        subwords=subword_index(cfg.model, corpus_vocab.words))
    start = model.in_embed.weight.detach()
    V = len(corpus_vocab)
    return int((result.input[V:] != start[V:]).any(1).sum())


class _EpochVectors:
    def on_epoch_end(self, state):
        self.vectors = state.vectors(copy=True)


def test_trains_the_ngram_rows_and_exports_the_words_mean_vectors(corpus_file, tmp_path):
    cfg = _cfg(corpus_file, tmp_path / "out")
    vocab, corpus = prepare_corpus(cfg, tmp_path / "cache")
    seen = _EpochVectors()
    result = train_tables(cfg, vocab, corpus, quiet=True, callbacks=[seen])
    V = len(vocab)
    assert result.input.shape == (V + BUCKETS, 12) and result.vectors.shape == (V, 12)
    assert np.array_equal(seen.vectors, result.vectors.numpy())         # callbacks see the words' vectors
    assert isinstance(result.subwords, SubwordIndex) and result.subwords.n_rows == V + BUCKETS
    off, rows = result.subwords.offsets, result.subwords.rows
    for w in (0, V // 2, V - 1):
        assert torch.allclose(result.vectors[w], result.input[rows[off[w]:off[w + 1]].long()].mean(0), atol=1e-6)
    assert _ngram_rows_moved(result, cfg, vocab) > BUCKETS // 4
    assert np.isfinite(result.metrics[0]["loss"])
    # The command line writes the words' mean vectors, as fastText's .vec, bit for bit the core's.
    train(cfg, quiet=True)
    words, vectors = load_word2vec(tmp_path / "out" / "word_embedding.bin")
    assert words == vocab.words and np.array_equal(vectors, result.vectors.numpy())


@pytest.mark.skipif(unavailable_reason(torch.device("cpu")) is not None, reason="no C kernel here")
def test_the_kernels_train_subwords_so_auto_takes_the_c_kernel(corpus_file, tmp_path):
    """Both kernels read subword rows (tests/test_subword_kernels.py): nothing about a subword
    model sends `auto` to the torch step on its own; a setting the kernels lack still does."""
    cfg = _cfg(corpus_file, tmp_path / "o")
    index = SubwordIndex(["ab", "cd"], 3, 5, 10)
    model = build_model(cfg, 2, torch.Generator().manual_seed(0), subwords=index)
    sampler = build_sampler(cfg.model, torch.tensor([5, 3]), torch.ones(2), 16)
    assert CKernel(1).unsupported_reason(model, sampler) is None
    assert TritonKernel(1).unsupported_reason(model, sampler) in (None, _triton_missing())
    assert build_backend(cfg.train, torch.device("cpu"), model, sampler, 1).name == "fused"
    dns = _cfg(corpus_file, tmp_path / "o", backend="fused", model={"sampler": "dns"})
    with pytest.raises(ConfigError, match="model.sampler"):
        build_backend(dns.train, torch.device("cpu"), model,
                      build_sampler(dns.model, torch.tensor([5, 3]), torch.ones(2), 16), 1)


@pytest.mark.parametrize("model", [{"sampler": s} for s in SAMPLERS] +
                         [{"arch": "cbow"}, {"arch": "cbow", "cbow_mean": False}, {"loss": "hs"},
                          {"shared_negatives": False}, {"logq_correction": True}])
def test_every_setting_of_the_torch_step_trains_a_subword_model(corpus_file, tmp_path, model):
    cfg = _cfg(corpus_file, tmp_path / "o", model={"dim": 8, **model})
    vocab, corpus = prepare_corpus(cfg, tmp_path / "cache")
    result = train_tables(cfg, vocab, corpus, quiet=True)
    assert np.isfinite(result.metrics[0]["loss"]) and torch.isfinite(result.input).all()
    assert _ngram_rows_moved(result, cfg, vocab) > BUCKETS // 4


def test_maxn_zero_is_exactly_the_word_model(corpus_file, tmp_path):
    word = _cfg(corpus_file, tmp_path / "o", model={"subwords": False})
    none = _cfg(corpus_file, tmp_path / "o", model={"maxn": 0})
    vocab, corpus = prepare_corpus(word, tmp_path / "cache")
    a, b = train_tables(word, vocab, corpus, quiet=True), train_tables(none, vocab, corpus, quiet=True)
    assert b.subwords is None and torch.equal(a.input, b.input) and torch.equal(b.vectors, b.input)


class _StopAfterFirstEpoch:
    def on_epoch_end(self, state):
        if state.epoch == 0:
            raise KeyboardInterrupt


def test_resume_continues_the_whole_input_table_bit_for_bit(corpus_file, tmp_path):
    cfg = _cfg(corpus_file, tmp_path / "o", epochs=2, backend="torch")
    vocab, corpus = prepare_corpus(cfg, tmp_path / "cache")
    whole = train_tables(cfg, vocab, corpus, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        train_tables(cfg, vocab, corpus, quiet=True, out_dir=tmp_path / "ck", callbacks=[_StopAfterFirstEpoch()])
    resumed = train_tables(cfg, vocab, corpus, quiet=True, out_dir=tmp_path / "ck", resume=True)
    assert torch.equal(resumed.input, whole.input) and torch.equal(resumed.output, whole.output)
    # A word-model run cannot resume a subword checkpoint: the fingerprint says which setting differs.
    word = _cfg(corpus_file, tmp_path / "o", epochs=2, backend="torch", model={"subwords": False})
    with pytest.raises(Exception, match="subwords: checkpoint has 'minn 3, maxn 5, buckets 3000'"):
        train_tables(word, vocab, corpus, quiet=True, out_dir=tmp_path / "ck", resume=True)


def test_config_refusals_name_the_key():
    with pytest.raises(ConfigError, match="'model.minn' must be <= model.maxn"):
        build_config({"model": {"minn": 5, "maxn": 4}})
    build_config({"model": {"minn": 5, "maxn": 0}})                      # maxn 0: no n-grams at all
    with pytest.raises(ConfigError, match="'model.buckets' must be >= 1"):
        build_config({"model": {"subwords": True, "buckets": 0}})
    with pytest.raises(ConfigError, match="'model.maxn' must be >= 0"):
        build_config({"model": {"maxn": -1}})
    with pytest.raises(TrainingError, match="model.buckets"):
        subword_index(build_config({"model": {"subwords": True, "buckets": 2**31 - 1}}).model, ["a", "b"])


def test_memory_estimate_counts_the_buckets_and_names_the_knob(monkeypatch, caplog):
    cfg = build_config({"model": {"subwords": True, "dim": 100}})
    word = build_config({"model": {"dim": 100}})
    est, base = estimate_memory(cfg, 70_000), estimate_memory(word, 70_000)
    assert est["tables"] == (2 * 70_000 + 2_000_000) * 100 * 4 and base["tables"] == 2 * 70_000 * 100 * 4
    assert est["examples"] > base["examples"] and est["subword_index"] > 0
    assert estimate_memory(build_config({"model": {"subwords": True, "maxn": 0}}), 70_000)["tables"] == \
        base["tables"]
    with caplog.at_level(logging.INFO, logger="w2v"):
        check_memory(cfg, 70_000, torch.device("cpu"))
    assert "2,000,000 n-gram buckets" in caplog.text and "model.buckets is the knob" in caplog.text
    monkeypatch.setattr(memory, "available_bytes", lambda device: 500 << 20)
    with pytest.raises(TrainingError, match=r"tables need .* 2,000,000 n-gram buckets.*lower model.buckets"):
        check_memory(cfg, 70_000, torch.device("cpu"))


def test_fasttext_api_trains_saves_and_extends(corpus_file, tmp_path):
    from w2v import FastText, Word2Vec
    kw = dict(vector_size=10, min_count=3, epochs=1, workers=1, seed=2, quiet=True, backend="torch")
    ft = FastText(corpus_file=str(corpus_file), min_n=2, max_n=4, bucket=500, sg=1, **kw)
    V = len(ft.wv)
    assert ft._input.shape == (V + 500, 10) and ft.subwords.minn == 2
    assert np.allclose(ft.wv.vectors, ft.subwords.word_vectors(torch.from_numpy(ft._input)).numpy())
    same = Word2Vec(corpus_file=str(corpus_file), subwords=True, minn=2, maxn=4, buckets=500, sg=1, **kw)
    assert np.array_equal(same.wv.vectors, ft.wv.vectors)               # FastText is Word2Vec with subwords
    ft.save(tmp_path / "m.npz")
    back = FastText.load(tmp_path / "m.npz")
    assert isinstance(back, FastText) and back.bucket == 500
    assert np.array_equal(back._input, ft._input) and np.array_equal(back.wv.vectors, ft.wv.vectors)
    back.train(corpus_file=str(corpus_file), epochs=1)
    assert not np.array_equal(back._input[V:], ft._input[V:])            # training continues the buckets
    extra = tmp_path / "new.txt"
    extra.write_text("zyzzyva zyzzyvas zyzzyva zyzzyvas zyzzyva zyzzyvas\n")
    buckets_before = back._input[V:].copy()
    back.build_vocab(corpus_file=str(extra), update=True)
    assert len(back.wv) == V + 2 and back._input.shape == (V + 2 + 500, 10)
    assert np.array_equal(back._input[V + 2:], buckets_before)           # bucket rows keep their values
    with pytest.raises(ConfigError, match="'min_n' \\(model.minn\\)"):
        FastText(min_n=5, max_n=4)
    with pytest.raises(TypeError, match="min_n, max_n and bucket"):
        FastText(minn=2)
    with pytest.raises(ValueError, match="word_ngrams"):
        FastText(word_ngrams=2)


def test_touched_sync_marks_every_ngram_row_of_the_input_words():
    from w2v.batches import Examples
    from w2v.distributed import TableSync
    model = build_model(build_config({"model": {"dim": 4}}), 3, torch.Generator().manual_seed(0),
                        subwords=SubwordIndex(["ab", "cd", "ef"], 2, 3, 50))
    tables = [model.in_embed.weight.data, model.out_embed.weight.data]
    sync = TableSync(None, tables, "touched", "sum", 1, model.input_rows)
    ex = Examples(torch.tensor([1]), None, torch.tensor([0]), torch.tensor([[2]]), 1, 1)
    sync.note(ex)
    marked = set(sync.touched[0].nonzero().squeeze(1).tolist())
    off, rows = model.subwords
    assert marked == set(rows[off[1]:off[2]].tolist()) and len(marked) > 1


def test_init_vectors_from_a_subword_model_continues_training(corpus_file, tmp_path):
    # The command line's continued training: a second run starts its shared words' input and
    # output rows and every bucket row from the first run's subword_model (or its fasttext.bin).
    first = _cfg(corpus_file, tmp_path / "a")
    train(first, quiet=True)
    model_file = tmp_path / "a" / "subword_model"
    start = {}

    class Start:
        def on_train_begin(self, state):
            start["input"] = state._model.in_embed.weight.detach().clone()
            start["output"] = state._model.out_embed.weight.detach().clone()
    cfg = _cfg(corpus_file, tmp_path / "b", init_vectors=str(model_file))
    vocab, corpus = prepare_corpus(cfg, tmp_path / "cache")
    from w2v.fasttext_kv import FastTextKeyedVectors
    kv, out = FastTextKeyedVectors.load(model_file), FastTextKeyedVectors.load_output(model_file)
    assert kv.index_to_key == vocab.words                         # the same corpus: every word shared
    train_tables(cfg, vocab, corpus, quiet=True, callbacks=[Start()])
    assert np.array_equal(start["input"].numpy(), kv.input_table)
    assert np.array_equal(start["output"].numpy(), out)
    from_bin = _cfg(corpus_file, tmp_path / "c", init_vectors=str(tmp_path / "a" / "fasttext.bin"))
    train_tables(from_bin, vocab, corpus, quiet=True, callbacks=[Start()])
    assert np.array_equal(start["input"].numpy(), kv.input_table)
    # Another n-gram setting, or a word2vec file, is refused naming the key or the file.
    with pytest.raises(TrainingError, match=r"train.init_vectors: .*minn 3; the config's model.minn is 2"):
        train_tables(_cfg(corpus_file, tmp_path / "d", init_vectors=str(model_file),
                          model={"minn": 2}), vocab, corpus, quiet=True)
    with pytest.raises(TrainingError, match=r"train.init_vectors: .*word_embedding.txt"):
        train_tables(_cfg(corpus_file, tmp_path / "d",
                          init_vectors=str(tmp_path / "a" / "word_embedding.txt")), vocab, corpus, quiet=True)
    # The Python API reads the same key (gensim's way is FastText.load and train).
    from w2v import FastText
    api = FastText(min_n=3, max_n=5, bucket=BUCKETS, vector_size=12, min_count=5, quiet=True,
                   **{"train.init_vectors": str(model_file)})
    api.build_vocab(corpus_file=str(corpus_file))
    assert api.wv.index_to_key == kv.index_to_key
    assert np.array_equal(api._input, kv.input_table) and np.array_equal(api.syn1neg, out)
