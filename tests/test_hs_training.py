"""Hierarchical softmax trains at the default settings: skip-gram (windows and pairs) and CBOW, on
the C kernel and the torch backend, and its vectors are as good as negative sampling's."""
import json
import logging
import math

import pytest
import torch

from conftest import ROOT, SAMPLE, sample_head
from w2v import backends
from w2v.config import build_config
from w2v.evaluate import evaluate_word_pairs
from w2v.keyedvectors import KeyedVectors
from w2v.trainer import train

WS353 = ROOT / "data" / "eval" / "wordsim353.tsv"
_no_kernel = backends.unavailable_reason(torch.device("cpu"))
needs_kernel = pytest.mark.skipif(_no_kernel is not None, reason=f"no C kernel: {_no_kernel}")


@pytest.fixture(scope="module")
def head_corpus(tmp_path_factory):
    """The first ~60k tokens of the sample: at train.batch_size 1024, the batched hs update drove
    the loss to 1e19 in the first of two epochs here."""
    return sample_head(tmp_path_factory.mktemp("hs") / "head.txt", 60_000)


def _hs_config(corpus, out, backend, **model):
    """configs/default.yaml's settings (batch 1024, alpha 0.025, ...) with model.loss hs."""
    return build_config({"corpus": {"paths": [str(corpus)]}, "output": {"dir": str(out)},
                         "model": {"loss": "hs", **model},
                         "train": {"epochs": 2, "threads": 1, "seed": 7, "backend": backend}})


@pytest.mark.parametrize("backend,model", [
    ("torch", {"arch": "skipgram"}),
    ("torch", {"arch": "cbow"}),
    pytest.param("fused", {"arch": "skipgram"}, marks=needs_kernel),
    pytest.param("fused", {"arch": "skipgram", "shared_negatives": False}, marks=needs_kernel),
    pytest.param("fused", {"arch": "cbow"}, marks=needs_kernel),
], ids=["torch-sg_window", "torch-cbow", "fused-sg_window", "fused-sg_pair", "fused-cbow"])
def test_hs_trains_at_the_defaults(tmp_path, head_corpus, backend, model, caplog):
    cfg = _hs_config(head_corpus, tmp_path / "out", backend, **model)
    assert cfg.train.batch_size == 1024 and cfg.train.alpha == 0.025
    with caplog.at_level(logging.INFO, logger="w2v"):
        losses = [e["loss"] for e in train(cfg, quiet=True)["epochs"]]
    assert all(math.isfinite(x) for x in losses) and losses[1] < losses[0] < 10, losses
    log = caplog.text
    if backend == "fused":   # hs runs on the kernel, per example
        assert "backend: fused (C kernel" in log
    else:                    # the torch step caps the examples per update for hs
        assert "the torch backend updates 64 examples at a time, not train.batch_size=1024" in log
    vectors = KeyedVectors.load_word2vec_format(tmp_path / "out" / "word_embedding.txt").vectors
    assert torch.isfinite(torch.from_numpy(vectors)).all()


@pytest.mark.slow
@needs_kernel
@pytest.mark.parametrize("arch", ["skipgram", "cbow"])
def test_hs_vectors_are_as_good_as_negative_sampling(tmp_path, arch):
    """The whole sample, the default settings but 3 epochs and 2 threads: hierarchical softmax's
    WordSim-353 correlation is at most 0.05 below negative sampling's (both about 0.3 here)."""
    scores = {}
    for loss in ("hs", "ns"):
        out = tmp_path / loss
        cfg = build_config({"corpus": {"paths": [str(SAMPLE)]}, "output": {"dir": str(out)},
                            "model": {"loss": loss, "arch": arch}, "train": {"epochs": 3, "threads": 2, "seed": 7}})
        train(cfg, quiet=True)
        losses = [e["loss"] for e in json.loads((out / "metrics.json").read_text())["epochs"]]
        assert losses == sorted(losses, reverse=True), losses          # falls every epoch
        scores[loss] = evaluate_word_pairs(KeyedVectors.load_word2vec_format(out / "word_embedding.txt"), WS353)["spearman"]
    assert scores["ns"] > 0.2, scores      # negative sampling learned something to compare against
    assert scores["hs"] > scores["ns"] - 0.05, scores
