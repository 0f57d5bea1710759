"""The training core: tables from a config, a vocabulary and an encoded corpus, with no files written;
callbacks see the run as it goes; the CLI path is a layer over it."""
import os

import numpy as np
import pytest
import torch

from conftest import sample_head
from w2v.backends import unavailable_reason
from w2v.config import build_config
from w2v.core import train_tables
from w2v.errors import TrainingError
from w2v.export import load_word2vec
from w2v.pipeline import prepare_corpus
from w2v.trainer import train


BACKENDS = ["torch", pytest.param("fused", marks=pytest.mark.skipif(
    unavailable_reason(torch.device("cpu")) is not None, reason="no C kernel here"))]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    return sample_head(tmp_path_factory.mktemp("core") / "c.txt", 40_000)


def _cfg(corpus_file, out, **train_over):
    return build_config({"corpus": {"paths": [str(corpus_file)]}, "output": {"dir": str(out)},
                         "model": {"dim": 16},
                         "train": {"epochs": 2, "threads": 1, "device": "cpu", "seed": 3, "backend": "torch",
                                   "chunk_tokens": 8192, **train_over}})


def _inputs(cfg, cache):
    return prepare_corpus(cfg, cache)


class Recorder:
    """Records the hooks it is called with; defines all five."""

    def __init__(self):
        self.calls, self.rounds = [], []

    def on_train_begin(self, state):
        self.calls.append(("train_begin", state.epoch))

    def on_epoch_begin(self, state):
        self.calls.append(("epoch_begin", state.epoch))

    def on_epoch_end(self, state):
        self.calls.append(("epoch_end", state.epoch, len(state.metrics), state.vectors(copy=True)))

    def on_train_end(self, state):
        self.calls.append(("train_end", state.epoch))

    def on_round(self, state):
        self.rounds.append((state.epoch, state.words_done, state.words_total, state.loss, state.lr, state.seconds))


class OnlyEpochEnd:
    def __init__(self):
        self.epochs = []

    def on_epoch_end(self, state):
        self.epochs.append(state.metrics[-1]["epoch"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_trains_without_writing_files_and_matches_the_cli(corpus_file, tmp_path, backend):
    """Torch step in turn; C kernel with the next chunk's examples made meanwhile."""
    cfg = _cfg(corpus_file, tmp_path / "never", backend=backend)
    vocab, corpus = _inputs(cfg, tmp_path / "cache")
    rec, partial = Recorder(), OnlyEpochEnd()
    result = train_tables(cfg, vocab, corpus, callbacks=[rec, partial], quiet=True)
    assert not (tmp_path / "never").exists()
    assert sorted(os.listdir(tmp_path)) == ["cache"]
    assert result.input.shape == (len(vocab), 16) and result.output.shape == (len(vocab), 16)
    assert result.input.device.type == "cpu" and result.input.dtype == torch.float32
    assert [m["epoch"] for m in result.metrics] == [1, 2] and result.vocab is vocab
    # The CLI path is a layer over the same core: the same vectors, bit for bit.
    cli = train(_cfg(corpus_file, tmp_path / "out", backend=backend), quiet=True)
    _, vectors = load_word2vec(tmp_path / "out" / "word_embedding.bin")
    assert np.array_equal(vectors, result.input.numpy())
    assert [m["loss"] for m in cli["epochs"]] == [m["loss"] for m in result.metrics]

    names = [c[:2] for c in rec.calls]
    assert names == [("train_begin", 0), ("epoch_begin", 0), ("epoch_end", 0), ("epoch_begin", 1),
                     ("epoch_end", 1), ("train_end", 1)]
    assert rec.calls[2][2] == 1 and rec.calls[4][2] == 2
    assert not np.array_equal(rec.calls[2][3], rec.calls[4][3])      # copies, taken as training went
    assert np.array_equal(rec.calls[4][3], result.input.numpy())
    assert partial.epochs == [1, 2]                                  # objects need not define every hook
    words = [r[1] for r in rec.rounds]
    assert len(rec.rounds) >= 2 * 4 and words == sorted(words) and words[-1] == rec.rounds[0][2]
    assert rec.rounds[0][2] == 2 * corpus.num_tokens
    lrs = [r[4] for r in rec.rounds]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < cfg.train.alpha
    assert all(np.isfinite(r[3]) and r[3] > 0 for r in rec.rounds)


def test_init_tables_are_continued_and_checked(corpus_file, tmp_path):
    cfg = _cfg(corpus_file, tmp_path / "o", epochs=1)
    vocab, corpus = _inputs(cfg, tmp_path / "cache")
    first = train_tables(cfg, vocab, corpus, quiet=True)
    again = train_tables(cfg, vocab, corpus, quiet=True, init=(first.input.clone(), first.output.clone()))
    fresh = train_tables(cfg, vocab, corpus, quiet=True)
    assert torch.equal(first.input, fresh.input)                     # same seed: same run
    assert not torch.equal(again.input, first.input)
    # Continued from trained tables, the second pass starts at a lower loss than the first did.
    assert again.metrics[0]["loss"] < 0.97 * first.metrics[0]["loss"]
    with pytest.raises(TrainingError, match=r"init: the input table is \(3, 16\)"):
        train_tables(cfg, vocab, corpus, quiet=True, init=(torch.zeros(3, 16), first.output))


def test_checkpoints_go_to_out_dir_only_when_given(corpus_file, tmp_path):
    cfg = _cfg(corpus_file, tmp_path / "cfg_dir", epochs=1)
    vocab, corpus = _inputs(cfg, tmp_path / "cache")
    train_tables(cfg, vocab, corpus, quiet=True, out_dir=tmp_path / "ckpt")
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["checkpoint.pt"]
    assert not (tmp_path / "cfg_dir").exists()
    with pytest.raises(TrainingError, match="out_dir"):
        train_tables(cfg, vocab, corpus, quiet=True, resume=True)
