"""A chunk with no training example is skipped on every backend and mode; a corpus with nothing to
train on is refused before training, saying why."""
import json
import random
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from w2v.backends import unavailable_reason
from w2v.train import main

HAS_KERNEL = unavailable_reason(torch.device("cpu")) is None


def _corpus(path, lines=3277, width=20, last_line="w0"):
    """`lines` lines of `width` words from a 60-word vocabulary, then one line of one word: with the
    default chunk size (65,536 tokens) that line is a chunk of its own, with no window in it."""
    rng = random.Random(4)
    words = [f"w{i}" for i in range(60)]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            f.write(" ".join(rng.choice(words) for _ in range(width)) + "\n")
        f.write(last_line + "\n")
    return path


def _config(tmp_path, corpus, out, extra=""):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"corpus:\n  paths: [{corpus}]\noutput:\n  dir: {out}\n{extra}")
    return cfg


def _cli(cfg):
    return subprocess.run([sys.executable, "-m", "w2v.train", "--config", str(cfg), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_last_chunk_of_one_word_is_skipped_through_the_cli(tmp_path):
    """The issue's repro, default settings: 65,541 tokens, the last chunk one word long."""
    out = tmp_path / "out"
    r = _cli(_config(tmp_path, _corpus(tmp_path / "c.txt"), out, "train:\n  epochs: 2\n  device: cpu\n"))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics["epochs"]] == [1, 2]
    assert all(m["words"] == 3277 * 20 + 1 for m in metrics["epochs"])
    assert (out / "word_embedding.txt").read_text().startswith("60 100\n")


def test_one_word_lines_are_refused_before_training_through_the_cli(tmp_path):
    corpus = tmp_path / "one.txt"
    rng = random.Random(5)
    corpus.write_text("".join(f"w{rng.randrange(30)}\n" for _ in range(70_000)))
    out = tmp_path / "out"
    r = _cli(_config(tmp_path, corpus, out))
    assert r.returncode == 2, r.stderr
    assert "nothing to train on: every sentence has fewer than two in-vocabulary words" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "word_embedding.txt").exists() and not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("settings", [
    "model:\n  arch: cbow\n",
    "model:\n  shared_negatives: false\n",
    "model:\n  sampler: uniform\n",
    "model:\n  sampler: in_batch\n",
    "model:\n  sampler: dns\n",
    "model:\n  loss: hs\n",
])
@pytest.mark.parametrize("backend", ["torch", pytest.param("fused", marks=pytest.mark.skipif(
    not HAS_KERNEL, reason="no C kernel here"))])
def test_an_empty_chunk_is_skipped_in_every_mode_and_backend(tmp_path, capsys, settings, backend):
    """In-process (fast): a small corpus cut into chunks of 1,024 tokens whose last one holds a
    single one-word sentence."""
    if backend == "fused" and ("dns" in settings or "hs" in settings):
        pytest.skip("the fused kernel does not run DNS or hierarchical softmax")
    corpus = _corpus(tmp_path / "c.txt", lines=103, width=10)   # 1,030 tokens, then one more
    out = tmp_path / "out"
    cfg = _config(tmp_path, corpus, out, settings + f"train:\n  epochs: 1\n  chunk_tokens: 1024\n  device: cpu\n"
                  f"  backend: {backend}\n  threads: 1\n")
    assert main(["--config", str(cfg), "--quiet"]) == 0, capsys.readouterr().err
    (row,) = json.loads((out / "metrics.json").read_text())["epochs"]
    assert row["words"] == 1031 and row["examples"] > 0 and row["loss"] > 0
