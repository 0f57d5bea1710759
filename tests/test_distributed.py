"""Data-parallel training: 2 ranks on the CPU with Gloo, started as torchrun would start them."""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import ROOT, SAMPLE, sample_head
from w2v.checkpoint import CheckpointError
from w2v.config import build_config
from w2v.distributed import DistributedError, _backend
from w2v.evaluate import evaluate_word_pairs
from w2v.export import load_word2vec
from w2v.trainer import train

WS353 = ROOT / "data" / "eval" / "wordsim353.tsv"


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """The first ~150k tokens of the sample: 15 chunks of 10k tokens, quick to train twice."""
    return sample_head(tmp_path_factory.mktemp("small") / "small.txt", 150_000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world, config_path, *args, env=None, timeout=240):
    """Start `world` ranks of tests/dist_worker.py with torchrun's environment variables; returns
    (exit code, stdout, stderr) per rank. A rank left waiting on a failed one is killed at the timeout."""
    port, procs = _free_port(), []
    for rank in range(world):
        rank_env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                        WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                        PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **(env or {}))
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "tests" / "dist_worker.py"),
                                       "--config", str(config_path), "--quiet", *args],
                                      env=rank_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline, results = time.monotonic() + timeout, []
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            out, err = p.communicate()
        results.append((p.returncode, out, err))
    return results


def _write_config(path, corpus, out, **sections):
    data = {"corpus": {"paths": [str(corpus)], "cache_dir": str(out / "cache")}, "output": {"dir": str(out)},
            "train": {"threads": 1, "device": "cpu", "seed": 3}}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def _replaced(stdout):
    return [os.path.basename(line.split(" ", 1)[1]) for line in stdout.splitlines() if line.startswith("REPLACED ")]


def test_two_ranks_learn_as_well_as_one_process(tmp_path):
    settings = dict(model={"dim": 50}, train={"epochs": 3})
    cfg = _write_config(tmp_path / "two.yaml", SAMPLE, tmp_path / "two", **settings)
    ranks = launch(2, cfg)
    for code, _, err in ranks:
        assert code == 0, err
    # Only rank 0 writes: rank 1 puts no file anywhere (not even the corpus cache), rank 0 each output once.
    assert _replaced(ranks[1][1]) == []
    written = _replaced(ranks[0][1])
    assert written.count("word_embedding.txt") == 1 and written.count("word_embedding.bin") == 1
    assert written.count("checkpoint.pt") == 3 and written.count("metrics.json") == 1
    log_lines = (tmp_path / "two" / "train.log").read_text().splitlines()
    assert log_lines and all("[rank 0]" in line for line in log_lines)

    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    d = metrics["distributed"]
    assert d["world_size"] == 2 and d["backend"] == "gloo" and d["syncs"] > 2
    a, b = d["table_checksums"]
    assert a == b                          # each rank hashed its own tables after the final sync

    one = build_config(json.loads(cfg.read_text()), overrides=[f"output.dir={tmp_path / 'one'}"])
    single = train(one, quiet=True)
    # Every chunk trained exactly once per epoch, by one of the ranks.
    assert [e["words"] for e in metrics["epochs"]] == [e["words"] for e in single["epochs"]]
    scores = [evaluate_word_pairs(tmp_path / d / "word_embedding.txt", WS353)["spearman"]
              for d in ("one", "two")]
    assert scores[0] > 0.25, scores        # the single run learned something to compare against
    assert abs(scores[0] - scores[1]) < 0.05, scores


def test_touched_rows_sync_is_exact_and_a_stopped_run_resumes_exactly(tmp_path, small_corpus):
    settings = dict(model={"dim": 32}, train={"epochs": 2, "chunk_tokens": 10_000},
                    distributed={"sync_every_words": 15_000})
    full = _write_config(tmp_path / "all.yaml", small_corpus, tmp_path / "all", **settings)
    touched = _write_config(tmp_path / "touched.yaml", small_corpus, tmp_path / "touched",
                            **{**settings, "distributed": {"sync_every_words": 15_000, "sync": "touched"}})
    cut = _write_config(tmp_path / "cut.yaml", small_corpus, tmp_path / "cut", **settings)
    for cfg in (full, touched):
        assert all(code == 0 for code, _, _ in launch(2, cfg))
    v_all = load_word2vec(tmp_path / "all" / "word_embedding.bin")[1]
    v_touched = load_word2vec(tmp_path / "touched" / "word_embedding.bin")[1]
    assert np.array_equal(v_all, v_touched)
    m_all, m_touched = (json.loads((tmp_path / d / "metrics.json").read_text())["distributed"]
                        for d in ("all", "touched"))
    assert m_touched["syncs"] == m_all["syncs"] and m_touched["rows"] < m_all["rows"]

    # Stop as if Ctrl-C came in epoch 2 (8 rounds an epoch), then resume: the same vectors.
    stopped = launch(2, cut, env={"W2V_TEST_STOP_AFTER": "10"})
    assert [code for code, _, _ in stopped] == [130, 130], stopped[0][2]
    assert not (tmp_path / "cut" / "word_embedding.bin").exists()
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 1 and ckpt["chunk"] > 0 and len(ckpt["generators"]) == 2
    assert all(code == 0 for code, _, _ in launch(2, cut, "--resume"))
    assert np.array_equal(load_word2vec(tmp_path / "cut" / "word_embedding.bin")[1], v_all)

    # A single process cannot continue a 2-rank run.
    one = build_config(json.loads(cut.read_text()))
    with pytest.raises(CheckpointError, match="world_size: checkpoint has 2, config has 1"):
        train(one, resume=True, quiet=True)


def test_backend_follows_device_and_nccl_needs_cuda():
    assert _backend("auto", torch.device("cpu")) == "gloo"
    assert _backend("auto", torch.device("cuda", 0)) == "nccl"
    assert _backend("gloo", torch.device("cuda", 0)) == "gloo"
    with pytest.raises(DistributedError, match="distributed.backend is 'nccl'"):
        _backend("nccl", torch.device("cpu"))
