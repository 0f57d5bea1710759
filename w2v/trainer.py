"""The CLI's training job: vocabulary -> encoded corpus -> `core.train_tables` -> the output folder."""
from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from . import outputset
from .atomic import atomic_write, remove_stale_temps
from .checkpoint import CHECKPOINT_NAME
from .config import Config, save_config
from .core import TrainResult, resolve_device, settle, train_tables
from .curve import Curve
from .distributed import session
from .errors import TrainingError
from .export import save_word2vec_binary, save_word2vec_text
from .keyedvectors import KeyedVectors
from .memory import check_memory, release_large_blocks_on_free
from .pipeline import prepare_corpus
from .subword_export import save_subword_model

log = logging.getLogger("w2v")

# Files a run writes into output.dir (all through atomic_write).
OUTPUT_NAMES = (CHECKPOINT_NAME, *outputset.SET_NAMES)


def _check_writable(out_dir: Path) -> None:
    """Fail before any long pass if output.dir cannot hold files (checked by writing, not by mode bits)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".w2v-probe-"):
            pass
    except OSError as e:
        raise TrainingError(f"{out_dir}: output directory is not writable (output.dir): {e.strerror or e}") from None


def train(cfg: Config, resume: bool = False, quiet: bool = False, callbacks=()) -> dict:
    """Run the whole job described by `cfg`: vocabulary, encoded corpus, `core.train_tables`, then
    the output folder. Returns the metrics written to metrics.json. Under torchrun every rank calls
    this; see w2v/distributed.py. `callbacks` are passed on to `train_tables` (main rank only)."""
    device = resolve_device(cfg.train.device)
    release_large_blocks_on_free()
    cfg = settle(cfg, device)
    out_dir = Path(cfg.output.dir)
    with session(cfg, device) as (ctx, device):
        # Rank 0 reads the text once (vocabulary and encoded corpus, or both from the cache); the
        # vocabulary reaches the other ranks by broadcast, and they open the cache rank 0 wrote.
        cache_dir = cfg.corpus.cache_dir or str(out_dir / "cache")
        made = {}
        t0 = time.perf_counter()

        def prepare_on_main():
            _prepare_output(out_dir)
            # The memory check runs once the vocabulary is known, before the corpus is cached.
            made["vc"] = prepare_corpus(cfg, cache_dir, quiet, check=lambda v: check_memory(cfg, len(v), device))
            return made["vc"][0]
        vocab = ctx.from_main(prepare_on_main)
        if not ctx.is_main:
            check_memory(cfg, len(vocab), device)
        corpus = ctx.encode_once(lambda: made["vc"][1] if made else prepare_corpus(cfg, cache_dir, quiet)[1])
        vocab.pack()  # not read again before the export (or a callback)
        log.info("encoded corpus: %d in-vocabulary tokens of %d, %d sentences, %.1fs",
                 corpus.num_tokens, corpus.raw_tokens, len(corpus.offsets) - 1, time.perf_counter() - t0)
        curve = Curve()  # metrics.json's "curve": loss, lr and words/s every 1% of the run
        result = train_tables(cfg, vocab, corpus, callbacks=(curve, *callbacks), quiet=quiet, out_dir=out_dir,
                              resume=resume)
        extra = {"distributed": result.distributed} if result.distributed else {}
        extra["curve"] = curve.points
        if ctx.is_main:
            with outputset.staged(out_dir) as stage:  # the whole set replaces the previous one, or nothing
                _export(cfg, stage, result, extra)
            log.info("wrote %s", out_dir / "word_embedding.txt")
    return {"epochs": result.metrics, "vocab_size": len(vocab), **extra}


def _prepare_output(out_dir: Path) -> None:
    _check_writable(out_dir)
    if remove_stale_temps(out_dir, OUTPUT_NAMES):
        log.info("removed temporary files left by a killed run in %s", out_dir)


def _export(cfg: Config, out_dir: Path, result: TrainResult, extra: dict) -> None:
    """Write vectors (text, binary), vocabulary, resolved config and metrics, each atomically."""
    # Words' vectors: with subwords each word's mean over its rows, as fastText's .vec holds.
    vocab, metrics, vectors = result.vocab, result.metrics, result.vectors.numpy()
    save_word2vec_text(out_dir / "word_embedding.txt", vocab.words, vectors)
    if result.subwords is not None:  # fastText's model: also the whole model and fastText's .bin
        save_subword_model(out_dir, vocab.words, vocab.counts, result.input, result.output, result.subwords, cfg,
                           vectors)
    if cfg.output.binary:
        save_word2vec_binary(out_dir / "word_embedding.bin", vocab.words, vectors)
    if cfg.output.projector:  # vectors.tsv + metadata.tsv for the embedding projector
        KeyedVectors(vocab.words, vectors, vocab.counts).save_projector(out_dir, cfg.output.projector_words)
    vocab.save(out_dir / "vocab.txt")
    save_config(cfg, out_dir / "config.yaml")
    with atomic_write(out_dir / "metrics.json", "w") as f:
        json.dump({"epochs": metrics, "vocab_size": len(vocab), "dim": cfg.model.dim, **extra}, f, indent=2)
