"""Training a subword model end to end: config, core, exports, resume, memory estimate, Python API."""
import logging

import numpy as np
import pytest
import torch

from conftest import sample_head
from w2v import memory
from w2v.backends import CKernel, TritonKernel, build_backend
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


def test_trains_the_ngram_rows_and_exports_the_words_mean_vectors(corpus_file, tmp_path):
    cfg = _cfg(corpus_file, tmp_path / "out")
    vocab, corpus = prepare_corpus(cfg, tmp_path / "cache")
    result = train_tables(cfg, vocab, corpus, quiet=True)
    V = len(vocab)
    assert result.input.shape == (V + BUCKETS, 12) and result.vectors.shape == (V, 12)
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


def test_kernels_refuse_subwords_so_auto_takes_the_torch_step(corpus_file, tmp_path):
    cfg = _cfg(corpus_file, tmp_path / "o")
    index = SubwordIndex(["ab", "cd"], 3, 5, 10)
    model = build_model(cfg, 2, torch.Generator().manual_seed(0), subwords=index)
    sampler = build_sampler(cfg.model, torch.tensor([5, 3]), torch.ones(2), 16)
    for kernel in (CKernel(1), TritonKernel(1)):
        assert "model.subwords" in kernel.unsupported_reason(model, sampler)
    assert build_backend(cfg.train, torch.device("cpu"), model, sampler, 1).name == "torch"
    fused = _cfg(corpus_file, tmp_path / "o", backend="fused")
    with pytest.raises(ConfigError, match="model.subwords"):
        build_backend(fused.train, torch.device("cpu"), model, sampler, 1)


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
    with pytest.raises(ConfigError, match="'train.init_vectors' must be empty with model.subwords"):
        build_config({"model": {"subwords": True}, "train": {"init_vectors": "v.txt"}})
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
