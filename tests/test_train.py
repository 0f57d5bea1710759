"""End to end: training learns on the shipped sample, is reproducible, and resumes exactly."""
import json
import os

import numpy as np
import pytest
import torch

from conftest import SAMPLE, sample_head
from w2v import backends, loop
from w2v.checkpoint import CheckpointError
from w2v.config import build_config
from w2v.evaluate import Embedding
from w2v.export import load_word2vec
from w2v.loop import Interrupted
from w2v.trainer import train


# scripts/gpu_check.sh sets W2V_TEST_DEVICE=cuda to run these end-to-end tests on a GPU.
DEVICE = os.environ.get("W2V_TEST_DEVICE", "cpu")
bit_exact = pytest.mark.skipif(DEVICE != "cpu", reason="bit-exact replay holds on CPU only (GPU index_add_ is atomic)")
# Both update backends: the batched PyTorch step (the reference) and the fused kernel.
_no_kernel = backends.unavailable_reason(torch.device(DEVICE))
BACKENDS = ["torch", pytest.param("fused", marks=pytest.mark.skipif(_no_kernel is not None,
                                                                    reason=f"no fused kernel: {_no_kernel}"))]


def _config(corpus, out, **sections):
    data = {"corpus": {"paths": [str(corpus)]}, "output": {"dir": str(out)},
            "train": {"threads": 1, "device": DEVICE, "seed": 7}}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return build_config(data)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """The first ~150k tokens of the sample: enough for exact-replay tests, fast to train."""
    return sample_head(tmp_path_factory.mktemp("small") / "small.txt", 150_000)


@pytest.fixture(scope="module", params=BACKENDS)
def trained_sample(tmp_path_factory, request):
    """Skip-gram on the whole shipped sample, as `configs/default.yaml` but 3 epochs, 2 threads
    (for the fused kernel: two Hogwild threads), once per backend."""
    out = tmp_path_factory.mktemp(f"sample_{request.param}")
    cfg = _config(SAMPLE, out, train={"epochs": 3, "threads": 2, "backend": request.param})
    train(cfg, quiet=True)
    return out


RELATED = [("january", "february"), ("army", "navy"), ("senate", "house"), ("tax", "taxes"),
           ("germany", "japan"), ("france", "britain"), ("oil", "gas"), ("wheat", "corn")]


def test_related_words_rank_near_the_top(trained_sample):
    emb = Embedding.load(trained_sample / "word_embedding.txt")
    hits = 0
    for a, b in RELATED:
        top = [w for w, _ in emb.most_similar(a, topn=20)]
        hits += b in top
    # Random vectors would put b in a's top 20 of 11k words with probability ~0.2%.
    assert hits >= 6, hits


def test_outputs_and_metrics(trained_sample):
    names = {p.name for p in trained_sample.iterdir()}
    assert {"word_embedding.txt", "word_embedding.bin", "vocab.txt", "config.yaml", "metrics.json",
            "checkpoint.pt"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    metrics = json.loads((trained_sample / "metrics.json").read_text())
    losses = [e["loss"] for e in metrics["epochs"]]
    assert len(losses) == 3 and losses[2] < losses[0]           # the loss goes down
    assert all(e["effective_words"] < e["words"] for e in metrics["epochs"])  # subsampling on
    words, vectors = load_word2vec(trained_sample / "word_embedding.txt")
    vocab_words = [line.split()[0] for line in (trained_sample / "vocab.txt").read_text().splitlines()]
    assert words == vocab_words and vectors.shape == (len(words), 100)
    bwords, bvectors = load_word2vec(trained_sample / "word_embedding.bin")
    assert bwords == words and np.allclose(bvectors, vectors, atol=1e-6)


def test_gensim_reads_output(trained_sample):
    gensim_models = pytest.importorskip("gensim.models")
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(trained_sample / "word_embedding.txt"))
    words, vectors = load_word2vec(trained_sample / "word_embedding.txt")
    assert list(kv.index_to_key) == words
    assert np.allclose(kv.vectors, vectors, atol=1e-6)
    kvb = gensim_models.KeyedVectors.load_word2vec_format(str(trained_sample / "word_embedding.bin"), binary=True)
    assert np.array_equal(kvb.vectors, kv.vectors)


@bit_exact
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ["skipgram", "cbow"])
def test_same_seed_same_vectors_one_thread(small_corpus, tmp_path, arch, backend):
    one = {"epochs": 1, "backend": backend}
    a = _config(small_corpus, tmp_path / "a", model={"arch": arch}, train=one)
    b = _config(small_corpus, tmp_path / "b", model={"arch": arch}, train=one)
    c = _config(small_corpus, tmp_path / "c", model={"arch": arch}, train={**one, "seed": 8})
    for cfg in (a, b, c):
        train(cfg, quiet=True)
    va, vb, vc = (load_word2vec(tmp_path / d / "word_embedding.bin")[1] for d in "abc")
    assert np.array_equal(va, vb)
    assert not np.allclose(va, vc)


@bit_exact
@pytest.mark.parametrize("backend", BACKENDS)
def test_interrupt_then_resume_gives_identical_vectors(small_corpus, tmp_path, monkeypatch, backend):
    settings = dict(train={"epochs": 2, "chunk_tokens": 20_000, "backend": backend})
    train(_config(small_corpus, tmp_path / "full", **settings), quiet=True)

    class StopAfter(loop._StopFlag):
        """Acts as if Ctrl-C came during the 11th chunk (epoch 2: 8 chunks an epoch)."""
        checks = 0

        def __init__(self):
            super().__init__()
            StopAfter.checks = 0

        @property
        def requested(self):
            StopAfter.checks += 1
            return StopAfter.checks >= 11

        @requested.setter
        def requested(self, value):
            pass

    monkeypatch.setattr(loop, "_StopFlag", StopAfter)
    cfg = _config(small_corpus, tmp_path / "cut", **settings)
    with pytest.raises(Interrupted, match="--resume"):
        train(cfg, quiet=True)
    assert not (tmp_path / "cut" / "word_embedding.txt").exists()
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 1 and ckpt["chunk"] > 0      # stopped mid-epoch
    monkeypatch.undo()
    train(cfg, resume=True, quiet=True)
    full = load_word2vec(tmp_path / "full" / "word_embedding.bin")[1]
    resumed = load_word2vec(tmp_path / "cut" / "word_embedding.bin")[1]
    assert np.array_equal(full, resumed)


def test_resume_refuses_checkpoint_of_other_settings(small_corpus, tmp_path):
    train(_config(small_corpus, tmp_path, train={"epochs": 1}), quiet=True)
    other = _config(small_corpus, tmp_path, train={"epochs": 1}, model={"window": 3})
    with pytest.raises(CheckpointError, match="window: checkpoint has 5, config has 3"):
        train(other, resume=True, quiet=True)


@pytest.mark.skipif(_no_kernel is not None, reason=f"no fused kernel: {_no_kernel}")
def test_resume_refuses_another_backend(small_corpus, tmp_path):
    """'auto' is recorded as the backend it resolved to, so a resume cannot switch silently."""
    train(_config(small_corpus, tmp_path, train={"epochs": 1, "backend": "auto"}), quiet=True)
    other = _config(small_corpus, tmp_path, train={"epochs": 1, "backend": "torch"})
    with pytest.raises(CheckpointError, match="backend: checkpoint has 'fused', config has 'torch'"):
        train(other, resume=True, quiet=True)


@pytest.mark.skipif(_no_kernel is not None, reason=f"no fused kernel: {_no_kernel}")
@pytest.mark.parametrize("arch", ["skipgram", "cbow"])
def test_fused_and_torch_backends_reach_the_same_loss(small_corpus, tmp_path, arch):
    """Per example (fused) or per batch of 1024 (torch), one epoch ends at nearly the same loss;
    per example it is a little lower (each update sees the previous ones: 3% on this corpus)."""
    losses = {}
    for backend in ("torch", "fused"):
        cfg = _config(small_corpus, tmp_path / backend, model={"arch": arch},
                      train={"epochs": 1, "backend": backend})
        losses[backend] = train(cfg, quiet=True)["epochs"][-1]["loss"]
    assert 0.94 * losses["torch"] < losses["fused"] < 1.005 * losses["torch"], losses


def test_hogwild_workers_train_and_resume(small_corpus, tmp_path):
    """Two workers update the shared tables at once: not bit-reproducible, but they learn the same."""
    one = _config(small_corpus, tmp_path / "one", train={"epochs": 2, "chunk_tokens": 20_000})
    two = _config(small_corpus, tmp_path / "two", train={"epochs": 2, "chunk_tokens": 20_000, "workers": 2,
                                                          "threads": 2})
    m1, m2 = train(one, quiet=True), train(two, quiet=True)
    l1, l2 = m1["epochs"][-1]["loss"], m2["epochs"][-1]["loss"]
    assert abs(l1 - l2) / l1 < 0.03, (l1, l2)          # same objective reached
    assert m2["epochs"][-1]["words"] == m1["epochs"][-1]["words"]   # every chunk trained once
    ckpt = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)
    assert len(ckpt["generators"]) == 2
    with pytest.raises(CheckpointError, match="workers: checkpoint has 2, config has 1"):
        train(_config(small_corpus, tmp_path / "two", train={"epochs": 2, "chunk_tokens": 20_000}),
              resume=True, quiet=True)


def test_given_vocab_is_reused_not_recounted(small_corpus, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the 100\nof 50\nand 40\nzzunseen 3\n")
    cfg = _config(small_corpus, tmp_path / "out", vocab={"path": str(vocab)}, train={"epochs": 1})
    train(cfg, quiet=True)
    words, vectors = load_word2vec(tmp_path / "out" / "word_embedding.txt")
    assert words == ["the", "of", "and", "zzunseen"] and vectors.shape == (4, 100)
    assert np.abs(vectors[3]).max() <= 0.5 / 100            # never in the corpus: still as initialised
    assert np.abs(vectors[0]).max() > 0.5 / 100             # 'the' was trained
