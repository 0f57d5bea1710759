"""Checkpoints: a plain dict (tables, position, RNG state, fingerprints) saved atomically."""
from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint is missing or belongs to another run; the message says which setting differs."""


def run_fingerprint(cfg, vocab_fp: str, corpus_fp: str, backend: str | None = None) -> dict:
    """What must match for a resume to continue the same run; `backend` is the resolved
    train.backend ('torch' or 'fused'), since 'auto' may resolve differently on another machine."""
    m, t = cfg.model, cfg.train
    return {"vocab": vocab_fp, "corpus": corpus_fp, "arch": m.arch, "dim": m.dim, "window": m.window,
            "negative": m.negative, "ns_exponent": m.ns_exponent, "sample": m.sample,
            "cbow_mean": m.cbow_mean, "shared_negatives": m.shared_negatives, "epochs": t.epochs,
            "alpha": t.alpha, "min_alpha": t.min_alpha, "batch_size": t.batch_size, "workers": t.workers,
            "chunk_tokens": t.chunk_tokens, "seed": t.seed,
            "backend": backend or t.backend}


def save_checkpoint(path: str | Path, state: dict) -> None:
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def load_checkpoint(path: str | Path, fingerprint: dict) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint to resume from (train without --resume first)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    saved = state.get("fingerprint", {})
    diffs = [f"{k}: checkpoint has {saved.get(k)!r}, config has {v!r}" for k, v in fingerprint.items()
             if saved.get(k) != v]
    if diffs:
        raise CheckpointError(f"{path}: checkpoint is from a different run; " + "; ".join(diffs))
    return state
