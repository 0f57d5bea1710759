"""Never lose a run: a SIGKILL at a random point then --resume ends bit-identical; mid-epoch
checkpoints on a timer; a diverging run stops and keeps its last good checkpoint."""
import json
import math
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, sample_head
from w2v import loop
from w2v.atomic import remove_stale_temps
from w2v.checkpoint import CheckpointError, Checkpointer, load_checkpoint, run_fingerprint, save_checkpoint
from w2v.config import build_config
from w2v.errors import TrainingError
from w2v.train import main

# Small and fast: ~34 chunks an epoch, a checkpoint after every chunk (0.0001 min = 6 ms).
SETTINGS = ["--set", "train.threads=1", "--set", "train.device=cpu", "--set", "train.epochs=2",
            "--set", "model.dim=16", "--set", "train.chunk_tokens=4096", "--set", "train.seed=3",
            "--set", "train.checkpoint_minutes=0.0001"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return sample_head(tmp_path_factory.mktemp("resume") / "head.txt", 150_000)


def _cfg_file(tmp_path, corpus):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"corpus:\n  paths: [{corpus}]\n")
    return cfg


def _args(cfg, out, *extra):
    return ["--config", str(cfg), "--quiet", "--set", f"output.dir={out}", *SETTINGS, *extra]


@pytest.mark.slow  # two runs and a killed process
def test_sigkill_at_a_random_point_then_resume_is_bit_identical(tmp_path, corpus):
    cfg = _cfg_file(tmp_path, corpus)
    t0 = time.monotonic()
    assert main(_args(cfg, tmp_path / "full")) == 0
    run_seconds = time.monotonic() - t0  # scales the kill delay to this machine's speed

    cut = tmp_path / "cut"
    child = subprocess.Popen([sys.executable, "-m", "w2v.train", *_args(cfg, cut)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (cut / "checkpoint.pt").exists():
        assert child.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    # Training goes on for about run_seconds after the first checkpoint; kill somewhere in there.
    time.sleep(random.Random(2024).uniform(0.05, 0.5) * run_seconds)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    killed_at = torch.load(cut / "checkpoint.pt", weights_only=False)
    assert (killed_at["epoch"], killed_at["chunk"]) != (2, 0), "the run finished before the kill"
    assert not (cut / "word_embedding.txt").exists()

    assert main(_args(cfg, cut, "--resume")) == 0
    for name in ("word_embedding.txt", "word_embedding.bin"):
        assert (cut / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    # The interrupted epoch's loss and counters were carried in the checkpoint, not restarted.
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())["epochs"]
    resumed = json.loads((cut / "metrics.json").read_text())["epochs"]
    for key in ("loss", "words", "effective_words", "examples", "final_lr"):
        assert [e[key] for e in resumed] == [e[key] for e in full], key
    assert not list(cut.glob(".*.tmp"))
    assert "resumed from" in (cut / "train.log").read_text()


def test_mid_epoch_checkpoint_only_when_the_interval_has_passed():
    now = [0.0]
    cfg = build_config({"train": {"checkpoint_minutes": 2}})
    ckpt = Checkpointer("unused", cfg.train, clock=lambda: now[0])
    now[0] = 119.0
    assert not ckpt.due()
    now[0] = 120.0
    assert ckpt.due()
    never = Checkpointer("unused", build_config({"train": {"checkpoint_minutes": 0}}).train, clock=lambda: now[0])
    now[0] = 1e9
    assert not never.due()


def test_timer_checkpoint_lands_mid_epoch(tmp_path, corpus, monkeypatch):
    """Stop the run right after the first timed checkpoint: it must hold a mid-epoch position."""
    # The timer is due at the first chunk end (6 ms can outlast a chunk on a fast machine; the
    # timer itself is tested above).
    monkeypatch.setattr(Checkpointer, "due", lambda self: True)
    saved = []
    real_save = Checkpointer.save

    def save_then_stop(self, state):
        real_save(self, state)
        saved.append((state["epoch"], state["chunk"], state["partial"]))
        raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_stop)
    assert main(_args(_cfg_file(tmp_path, corpus), tmp_path / "out")) == 130  # a clean stop, no traceback
    (epoch, chunk, partial), = saved
    assert epoch == 0 and chunk == 1 and partial["words"] > 0 and partial["terms"] > 0
    on_disk = torch.load(tmp_path / "out" / "checkpoint.pt", weights_only=False)
    assert (on_disk["epoch"], on_disk["chunk"], on_disk["chunks"]) == (0, 1, 34)


def test_diverging_run_stops_and_keeps_last_good_checkpoint(tmp_path, corpus, monkeypatch, capsys):
    # A learning rate that explodes half-way through epoch 1 is what a too-high train.alpha does.
    real_lr = loop.linear_lr

    def exploding_lr(alpha, min_alpha, done, total):
        return 1e30 if done > total / 4 else real_lr(alpha, min_alpha, done, total)

    monkeypatch.setattr(loop, "linear_lr", exploding_lr)
    out = tmp_path / "out"
    assert main(_args(_cfg_file(tmp_path, corpus), out)) == 2
    err = capsys.readouterr().err
    assert "in epoch 1" in err and "train.alpha=" in err and "The last good checkpoint is kept" in err, err
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 0 and 0 < state["chunk"] < state["chunks"] / 2 + 2
    assert f"after chunk {state['chunk']} of" in err
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert not (out / "word_embedding.txt").exists()
    assert "ERROR error: loss became nan" in (out / "train.log").read_text()


def test_checkpoint_with_nonfinite_tables_is_not_written(tmp_path):
    cfg = build_config({"train": {"alpha": 0.5}})
    ckpt = Checkpointer(tmp_path / "checkpoint.pt", cfg.train)
    good = {"model": {"in_embed.weight": torch.ones(3, 2)}, "epoch": 1, "chunk": 0, "chunks": 9}
    ckpt.save(good)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    bad = {"model": {"in_embed.weight": torch.tensor([[1.0, math.inf]]), "out_embed.weight": torch.zeros(1, 2)},
           "epoch": 1, "chunk": 4, "chunks": 9}
    with pytest.raises(TrainingError, match=r"in_embed.weight\) in epoch 2: .*train.alpha=0.5.*after epoch 1"):
        ckpt.save(bad)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]


def test_damaged_checkpoint_is_refused_with_a_message(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"fingerprint": {"dim": 4}, "model": {"w": torch.zeros(100, 4)}})
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="cannot read the checkpoint.*damaged"):
        load_checkpoint(path, {"dim": 4})


@pytest.mark.parametrize("change", ["model.negative_subsample=0.001", "model.target_beta=2",
                                    "model.neighbour_to=50", "train.init_lockf=0"])
def test_resume_refuses_a_changed_sampler_or_pretrained_key(tmp_path, change):
    base = run_fingerprint(build_config({}), "v", "c")
    assert base["toolbox"] is None and base["init_vectors"] is None   # old checkpoints lack both: still match
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"fingerprint": base})
    changed = run_fingerprint(build_config({}, overrides=[change]), "v", "c")
    key = change.split("=")[0].split(".")[1]
    with pytest.raises(CheckpointError, match=f"different run; .*{key}"):
        load_checkpoint(path, changed)
    assert load_checkpoint(path, run_fingerprint(build_config({}), "v", "c"))["fingerprint"] == base


def test_stale_temporary_files_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / ".checkpoint.pt.abc123.tmp").write_bytes(b"half")
    (tmp_path / ".word_embedding.txt.x.tmp").write_text("half")
    (tmp_path / ".unrelated.tmp").write_text("keep")
    (tmp_path / "checkpoint.pt").write_text("keep")
    assert remove_stale_temps(tmp_path, ["checkpoint.pt", "word_embedding.txt"]) == 2
    assert sorted(os.listdir(tmp_path)) == [".unrelated.tmp", "checkpoint.pt"]


def test_nonfinite_check_finds_every_kind_and_spares_large_finite_values():
    """The guard sums a block at a time in float64 (no table-sized temporaries): NaN, +Inf, -Inf, both
    (whose sum is NaN), and
    a bad value in the last block are caught; float32's largest finite values are not."""
    from w2v.guard import nonfinite_tensors
    big = torch.full((1000, 4), torch.finfo(torch.float32).max)
    cases = {"nan": [math.nan], "inf": [math.inf], "ninf": [-math.inf], "both": [math.inf, -math.inf]}
    tables = {name: torch.cat([torch.zeros(10), torch.tensor(vals)]) for name, vals in cases.items()}
    late = torch.zeros(3 << 20)
    late[-1] = math.nan
    tables.update(big=big, ints=torch.tensor([1, 2]), late=late, empty=torch.zeros(0, 4))
    assert nonfinite_tensors(tables) == ["nan", "inf", "ninf", "both", "late"]


def test_nonfinite_check_agrees_with_and_without_the_c_kernel():
    """The C kernel's in-place check (the C kernel backend's) and the torch fallback agree."""
    from w2v import backends, ckernel
    from w2v.guard import nonfinite_tensors
    if backends.unavailable_reason(torch.device("cpu")) is not None:
        pytest.skip("no C kernel here")
    tables = {"ok": torch.randn(300, 7), "nan": torch.randn(300, 7), "inf": torch.randn(5)}
    tables["nan"][299, 6], tables["inf"][0] = math.nan, -math.inf
    ckernel.reset()
    assert ckernel.all_finite(tables["ok"]) is None          # not loaded: the torch path
    fallback = nonfinite_tensors(tables)
    ckernel.load()
    assert ckernel.all_finite(tables["ok"]) is True and ckernel.all_finite(tables["nan"]) is False
    assert nonfinite_tensors(tables, ckernel.all_finite) == fallback == ["nan", "inf"]
