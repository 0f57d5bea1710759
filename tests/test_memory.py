"""Memory estimate before training, and a clear refusal when the tables cannot fit."""
import logging

import pytest
import torch

from w2v import memory
from w2v.config import build_config
from w2v.errors import TrainingError
from w2v.memory import available_bytes, check_memory, estimate_memory
from w2v.train import main


def test_estimate_counts_the_tables_exactly_and_scales_with_vocab_and_dim():
    cfg = build_config({"model": {"dim": 300}})
    est = estimate_memory(cfg, 1_000_000)
    assert est["tables"] == 2 * 1_000_000 * 300 * 4
    assert est["noise_and_subsampling"] == 1_000_000 * 16
    assert estimate_memory(build_config({"model": {"dim": 150}}), 1_000_000)["tables"] == est["tables"] // 2
    # Examples grow with the chunk, not with anything about the corpus.
    small = estimate_memory(build_config({"train": {"chunk_tokens": 8192}}), 1000)["examples"]
    large = estimate_memory(build_config({"train": {"chunk_tokens": 65536}}), 1000)["examples"]
    assert small < large


def test_per_pair_skipgram_needs_more_example_memory_than_shared_noise():
    shared = estimate_memory(build_config({}), 1000)["examples"]
    per_pair = estimate_memory(build_config({"model": {"shared_negatives": False}}), 1000)["examples"]
    assert per_pair > shared
    # the default, 'auto', draws per pair on a GPU (chunks are larger there too)
    gpu_pairs = estimate_memory(build_config({"model": {"shared_negatives": False}}), 1000, "cuda")["examples"]
    assert estimate_memory(build_config({}), 1000, "cuda")["examples"] == gpu_pairs


def test_available_memory_on_this_cpu_is_a_positive_number():
    avail = available_bytes(torch.device("cpu"))
    assert avail is None or avail > 0


def test_refuses_when_the_tables_cannot_fit(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 100 << 20)
    cfg = build_config({"model": {"dim": 300}})
    with pytest.raises(TrainingError, match=r"tables need 2,304 MB .* only 100 MB is available on cpu: "
                                            r"lower model.dim"):
        check_memory(cfg, 1_000_000, torch.device("cpu"))


def test_warns_when_tables_fit_but_the_whole_run_may_not(monkeypatch, caplog):
    cfg = build_config({"model": {"dim": 100}})
    est = estimate_memory(cfg, 100_000)
    monkeypatch.setattr(memory, "available_bytes", lambda device: est["tables"] + est["noise_and_subsampling"] + 1)
    with caplog.at_level(logging.INFO, logger="w2v"):
        check_memory(cfg, 100_000, torch.device("cpu"))
    assert "memory estimate: tables 76.3 MB" in caplog.text
    assert "may need about" in caplog.text and "train.chunk_tokens" in caplog.text


def test_cli_refuses_before_encoding_and_writes_nothing(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 50)
    cfg = tmp_path / "cfg.yaml"
    out = tmp_path / "out"
    cfg.write_text(f"corpus:\n  paths: [{corpus}]\noutput:\n  dir: {out}\n")
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)
    assert main(["--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "error: the embedding tables need" in err and "vocab.min_count" in err, err
    # No outputs and nothing encoded: only the run's lock and log, and the cache folder's lock.
    assert sorted(p.name for p in out.iterdir()) == [".w2v.lock", "cache", "train.log"]
    assert [p.name for p in (out / "cache").iterdir()] == [".w2v-cache.lock"]
    assert "memory estimate" in (out / "train.log").read_text()


def test_auto_chunk_is_larger_on_a_gpu():
    """train.chunk_tokens 0 picks per device; an explicit value is kept on both."""
    from w2v.config import chunk_tokens_for
    auto = build_config({}).train
    assert chunk_tokens_for(auto, "cpu") == 65_536 and chunk_tokens_for(auto, "cuda") == 1_048_576
    fixed = build_config({"train": {"chunk_tokens": 4096}}).train
    assert chunk_tokens_for(fixed, "cpu") == chunk_tokens_for(fixed, "cuda") == 4096
    assert estimate_memory(build_config({}), 1000, "cuda")["examples"] > estimate_memory(build_config({}), 1000)["examples"]
