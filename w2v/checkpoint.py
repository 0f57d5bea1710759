"""Checkpoints: a plain dict (tables, position, RNG states, fingerprints) saved atomically."""
from __future__ import annotations

import pickle
import time
import zipfile
from pathlib import Path

import torch

from .atomic import atomic_write
from .guard import diverged, nonfinite_tensors

CHECKPOINT_NAME = "checkpoint.pt"

# Fingerprint entries that are hashes: the message says what they stand for instead of the hashes.
_HASHED = {"corpus": "the corpus files (path, size, modification time) or reading settings differ",
           "vocab": "the vocabulary differs (another corpus, vocab.min_count, vocab.path, ...)"}


class CheckpointError(ValueError):
    """A checkpoint is missing or belongs to another run; the message says which setting differs."""


# The keys of the samplers and losses beyond word2vec's (docs/samplers.md): in the fingerprint
# only where they differ from their defaults, so checkpoints written before them still match.
TOOLBOX_KEYS = ("softmax_normaliser", "negative_subsample", "two_group_threshold", "two_group_mix", "target_beta",
                "rejection_rounds", "mh_chain", "mh_burn_in", "hard_negatives", "neighbour_from", "neighbour_to",
                "neighbour_refresh_chunks")


def _changed(section, keys) -> str | None:
    """'key value, ...' for the keys of a config section that differ from a fresh one's, or None."""
    fresh = type(section)()
    changed = [f"{k} {getattr(section, k)!r}" for k in keys if getattr(section, k) != getattr(fresh, k)]
    return ", ".join(changed) or None


def run_fingerprint(cfg, vocab_fp: str, corpus_fp: str, backend: str | None = None) -> dict:
    """What must match for a resume to continue the same run; `backend` is the resolved
    train.backend ('torch' or 'fused'), since 'auto' may resolve differently on another machine."""
    m, t = cfg.model, cfg.train
    return {"vocab": vocab_fp, "corpus": corpus_fp, "arch": m.arch, "dim": m.dim, "window": m.window,
            "negative": m.negative, "ns_exponent": m.ns_exponent, "sample": m.sample,
            "cbow_mean": m.cbow_mean, "shared_negatives": m.shared_negatives, "loss": m.loss,
            "sampler": m.sampler, "dns_candidates": m.dns_candidates, "dns_softmax": m.dns_softmax,
            "shared_group": m.shared_group, "logq_correction": m.logq_correction, "epochs": t.epochs,
            "alpha": t.alpha, "min_alpha": t.min_alpha, "batch_size": t.batch_size, "workers": t.workers,
            "chunk_tokens": t.chunk_tokens, "seed": t.seed,
            "backend": backend or t.backend,
            # None for a word model, so that checkpoints written before subwords existed still match.
            "subwords": f"minn {m.minn}, maxn {m.maxn}, buckets {m.buckets}" if m.subwords else None,
            "toolbox": _changed(m, TOOLBOX_KEYS),
            "init_vectors": _changed(t, ("init_vectors", "init_lockf"))}


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write through a temporary file, fsync it, rename it over `path` and fsync the folder: a
    kill at any moment leaves the previous checkpoint or the new one, never a mix."""
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def load_checkpoint(path: str | Path, fingerprint: dict) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint to resume from (train without --resume first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({e}); it is damaged or not a w2v "
                              f"checkpoint: train again without --resume") from None
    saved = state.get("fingerprint", {}) if isinstance(state, dict) else {}
    diffs = [f"{k}: {_HASHED[k]}" if k in _HASHED else f"{k}: checkpoint has {saved.get(k)!r}, config has {v!r}"
             for k, v in fingerprint.items() if saved.get(k) != v]
    if diffs:
        raise CheckpointError(f"{path}: checkpoint is from a different run; " + "; ".join(diffs))
    return state


class Checkpointer:
    """Writes this run's checkpoints: at epoch ends, and mid-epoch at a chunk end once
    `train.checkpoint_minutes` have passed since the last one. Tables holding NaN/Inf are never
    written, so the last good checkpoint survives a diverging run; `in_place` is the backend's
    check of a table where it lies, if it has one (see guard.nonfinite_tensors)."""

    def __init__(self, path: str | Path, train_cfg, clock=time.monotonic, in_place=None):
        self.path = Path(path)
        self.train_cfg = train_cfg
        self.interval = 60.0 * train_cfg.checkpoint_minutes
        self._clock = clock
        self._in_place = in_place
        self._last = clock()
        self.last_good: dict | None = None  # position of the last checkpoint this run wrote or resumed

    def due(self) -> bool:
        return self.interval > 0 and self._clock() - self._last >= self.interval

    def resumed(self, state: dict) -> None:
        self.last_good = {k: state.get(k) for k in ("epoch", "chunk", "chunks")}

    def note(self) -> str:
        """Where the last good checkpoint is, for error messages."""
        if self.last_good is None:
            return "No checkpoint of this run had been written yet."
        return f"The last good checkpoint is kept: {self.path} ({describe_position(self.last_good)})."

    def save(self, state: dict) -> None:
        """Check the tables are finite, then write `state` atomically."""
        bad = nonfinite_tensors(state["model"], self._in_place)
        if bad:
            raise diverged(f"the tables hold NaN or Inf ({', '.join(bad)})", state["epoch"] + (state["chunk"] > 0),
                           self.train_cfg, self.note())
        save_checkpoint(self.path, state)
        self.last_good = {k: state.get(k) for k in ("epoch", "chunk", "chunks")}
        self._last = self._clock()


def describe_position(pos: dict) -> str:
    """'after epoch 2' or 'epoch 3, after chunk 5 of 40' from a checkpoint's epoch/chunk/chunks."""
    epoch, chunk = pos.get("epoch", 0), pos.get("chunk", 0)
    if not chunk:
        return f"after epoch {epoch}"
    of = f" of {pos['chunks']}" if pos.get("chunks") else ""
    return f"epoch {epoch + 1}, after chunk {chunk}{of}"
