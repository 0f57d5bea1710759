"""`--resume --accept-changed-corpus`: resume a run whose corpus files changed date or place but not
content. The checkpoint names its corpus by file paths, sizes and modification times (cheap, and
what the cache is keyed by), so a plain `touch` makes it refuse; here the corpus is counted and
encoded again and compared, byte for byte, with the cache entry the checkpoint's run trained on
(still in corpus.cache_dir, which keeps its newest entries). Identical: the checkpoint is re-labelled with the corpus as it is now, and the
resume continues exactly; different: a CheckpointError says so."""
from __future__ import annotations

import contextlib
import filecmp
import logging
import os
from pathlib import Path

import torch

from .checkpoint import CHECKPOINT_NAME, CheckpointError, save_checkpoint
from .config import Config
from .corpus import corpus_fingerprint
from .pipeline import prepare_corpus

log = logging.getLogger("w2v")

_PARTS = (".ids", ".offsets")  # the encoding; the .json beside them only describes it


def relabel_if_same_corpus(cfg: Config) -> None:
    """Make the checkpoint in output.dir accept the corpus as it is now, if its content is the one
    the checkpoint was trained on; raise CheckpointError otherwise. Call it before the resume."""
    out_dir = Path(cfg.output.dir)
    path = out_dir / CHECKPOINT_NAME
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint to resume from (train without --resume first)")
    saved = torch.load(path, map_location="cpu", weights_only=False, mmap=True).get("fingerprint", {})
    c = cfg.corpus
    cache_dir = Path(c.cache_dir or out_dir / "cache")
    entry = saved.get("corpus_entry", "")
    with contextlib.suppress(OSError):  # mark the checkpoint's entry as used, so the cache keeps it
        os.utime(cache_dir / f"{entry}.json")
    vocab, corpus = prepare_corpus(cfg, cache_dir)
    now = corpus_fingerprint(c.paths, c.lowercase, c.max_sentence_length, vocab)
    if saved.get("corpus") == now:
        return  # nothing changed: the resume checks the rest
    if saved.get("vocab") != vocab.fingerprint():
        raise CheckpointError(f"{path}: the corpus content differs from the checkpoint's: its vocabulary "
                              f"(words and counts) is not the one the checkpoint was trained with")
    old = [cache_dir / f"{entry}{part}" for part in _PARTS]
    if not entry or not all(p.exists() for p in old):
        raise CheckpointError(f"{path}: cannot compare the corpus with the checkpoint's: the encoding it was "
                              f"trained on ({entry or 'unnamed'} in corpus.cache_dir) is gone")
    new = [Path(corpus.ids.path), Path(corpus.offsets.path)]
    if not all(filecmp.cmp(a, b, shallow=False) for a, b in zip(old, new)):
        raise CheckpointError(f"{path}: the corpus content differs from the checkpoint's (its encoding "
                              f"differs from {old[0].name}): train again without --resume")
    state = torch.load(path, map_location="cpu", weights_only=False)
    state["fingerprint"]["corpus"] = now
    state["fingerprint"]["corpus_entry"] = new[0].stem
    save_checkpoint(path, state)
    log.info("the corpus files changed date or place but not content (same encoding as the checkpoint's); "
             "resuming")
