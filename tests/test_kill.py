"""Kill a run at every stage (counting, encoding, each epoch, export, the commit of the output set)
with SIGKILL, SIGINT or SIGTERM: output.dir always holds one complete output set, the previous
run's or the new one, never a mix; a signal the run can catch ends in exit 130 with a message and
no traceback; and the next run completes."""
import json
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, sample_head
from w2v import outputset
from w2v.export import load_word2vec

DRIVER = str(ROOT / "tests" / "kill_driver.py")
# 30k tokens, 4096-token chunks: 7 chunks an epoch, so chunk3 is in epoch 1 and chunk10 in epoch 2.
SETTINGS = ["--set", "train.threads=1", "--set", "train.device=cpu", "--set", "train.epochs=2",
            "--set", "train.chunk_tokens=4096", "--set", "model.dim=12", "--set", "train.checkpoint_minutes=0"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return sample_head(tmp_path_factory.mktemp("kill") / "head.txt", 30_000)


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory, corpus):
    """A finished run of other settings (dim 4, with the binary file) whose set a killed run must keep."""
    out = tmp_path_factory.mktemp("previous") / "out"
    assert _run("-m", "w2v.train", *_args(corpus, out, "--set", "model.dim=4")).returncode == 0
    return out


def _args(corpus, out, *extra):
    cfg = out.parent / "cfg.yaml"
    cfg.write_text(f"corpus:\n  paths: [{corpus}]\noutput:\n  dir: {out}\n")
    return ["--config", str(cfg), "--quiet", *SETTINGS, *extra]


def _run(*argv, timeout=300):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _the_set(out):
    """(dim, binary present, vectors) of the complete set in `out`; fails on a mix."""
    assert outputset.check(out) == [], outputset.check(out)
    metrics = json.loads((out / "metrics.json").read_text())
    words, vectors = load_word2vec(out / "word_embedding.txt")
    assert vectors.shape == (metrics["vocab_size"], metrics["dim"])
    assert (out / "vocab.txt").read_text().split()[::2] == words
    if (out / "word_embedding.bin").exists():
        assert np.array_equal(load_word2vec(out / "word_embedding.bin", binary=True)[1], vectors)
    return metrics["dim"], (out / "word_embedding.bin").exists(), vectors


# (stage, signal, whether to run again afterwards: the cases where the next run has something to do)
CASES = [("count", "SIGKILL", True), ("count", "SIGINT", False), ("encode", "SIGKILL", False),
         ("encode", "SIGTERM", False), ("chunk3", "SIGKILL", False), ("chunk3", "SIGTERM", True),
         ("chunk10", "SIGKILL", True), ("chunk10", "SIGINT", False), ("export", "SIGKILL", True),
         ("export", "SIGINT", False), ("export", "SIGTERM", False), ("commit", "SIGKILL", True),
         ("commit", "SIGTERM", False)]


@pytest.mark.slow
@pytest.mark.parametrize("stage,signame,again", CASES)
def test_killed_at_any_stage_leaves_one_complete_set(tmp_path, corpus, previous_run, stage, signame, again):
    out = tmp_path / "out"
    shutil.copytree(previous_run, out)
    previous = _the_set(out)  # the killed run has another dim and writes no binary file
    if stage in ("count", "encode"):
        shutil.rmtree(out / "cache")  # a valid cache is used without reading the text at all
    r = _run(DRIVER, stage, signame, *_args(corpus, out, "--set", "output.binary=false"))
    if signame == "SIGKILL":
        assert r.returncode == -signal.SIGKILL, r.stderr
    else:
        assert r.returncode == 130, r.stderr
        assert "interrupted" in r.stderr and "Traceback" not in r.stderr, r.stderr
    if stage == "commit" and signame == "SIGKILL":
        # Killed between two renames: the journal says so, and recovery completes the new set.
        assert outputset.check(out) and outputset.recover(out)
    dim, binary, _ = _the_set(out)
    if stage in ("commit",):
        assert (dim, binary) == (12, False)  # the commit point was passed: the new set, whole
    else:
        assert (dim, binary) == previous[:2]
        assert np.array_equal(_the_set(out)[2], previous[2])  # untouched
    if not again:
        return
    # The next run completes (from the checkpoint when one was written) and leaves the new set.
    resume = ["--resume"] if (out / "checkpoint.pt").exists() and stage not in ("count", "encode") else []
    again = _run("-m", "w2v.train", *_args(corpus, out, "--set", "output.binary=false", *resume))
    assert again.returncode == 0, again.stderr
    assert _the_set(out)[:2] == (12, False)
    assert not list(out.glob(".staging-*")) and not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_second_interrupt_stops_at_once_cleanly(tmp_path, corpus):
    """A second Ctrl-C more than 2 s after the first aborts without waiting for the chunk: exit 130
    and a message, no traceback (the first one's checkpoint had not been written yet)."""
    out = tmp_path / "out"
    r = _run(DRIVER, "chunk3", "SIGINT,2.5", *_args(corpus, out))
    assert r.returncode == 130, r.stderr
    assert "stopped at once" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "stopped at once" in (out / "train.log").read_text()
    assert outputset.check(out) == []
