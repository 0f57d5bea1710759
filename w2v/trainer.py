"""The CLI's training job: vocabulary -> encoded corpus -> `core.train_tables` -> the output folder."""
from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from .atomic import atomic_write, remove_stale_temps
from .checkpoint import CHECKPOINT_NAME
from .config import Config, save_config
from .core import TrainResult, resolve_device, settle, train_tables
from .corpus import encode_corpus
from .distributed import session
from .errors import TrainingError
from .export import save_word2vec_binary, save_word2vec_text
from .memory import check_memory, release_large_blocks_on_free
from .reader import ReadStats, iter_sentences
from .vocab import Vocab, build_vocab, count_words

log = logging.getLogger("w2v")

# Files a run writes into output.dir (all through atomic_write).
OUTPUT_NAMES = (CHECKPOINT_NAME, "word_embedding.txt", "word_embedding.bin", "vocab.txt", "config.yaml",
                "metrics.json")


def _check_writable(out_dir: Path) -> None:
    """Fail before any long pass if output.dir cannot hold files (checked by writing, not by mode bits)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".w2v-probe-"):
            pass
    except OSError as e:
        raise TrainingError(f"{out_dir}: output directory is not writable (output.dir): {e.strerror or e}") from None


def prepare_vocab(cfg: Config) -> Vocab:
    """Load `vocab.path` or count the corpus in one streaming pass."""
    if cfg.vocab.path:
        return Vocab.load(cfg.vocab.path)
    stats = ReadStats()
    t0 = time.perf_counter()
    counts, total = count_words(iter_sentences(cfg.corpus.paths, cfg.corpus.lowercase,
                                               cfg.corpus.max_sentence_length, stats),
                                cfg.vocab.max_distinct_words)
    if total == 0:
        raise TrainingError(f"the corpus {cfg.corpus.paths} contains no words (empty files?)")
    if stats.replaced_bytes:
        for path, n in stats.per_file_replaced.items():
            log.warning("%s: %d undecodable bytes replaced by U+FFFD (input is not valid UTF-8)", path, n)
    vocab = build_vocab(counts, cfg.vocab.min_count, cfg.vocab.max_vocab_size)
    log.info("vocabulary: %d words (min_count %d) of %d distinct; %d tokens in %d files, %.1fs",
             len(vocab), cfg.vocab.min_count, len(counts), total, stats.files, time.perf_counter() - t0)
    # The kept words are strings scattered among those of every word counted, and would keep that
    # memory resident: with the words packed, freeing the counts frees them all, and the kept ones
    # are made anew, together, when next read. 10 MB less for the whole run on the benchmark corpus.
    vocab.pack()
    return vocab


def train(cfg: Config, resume: bool = False, quiet: bool = False, callbacks=()) -> dict:
    """Run the whole job described by `cfg`: vocabulary, encoded corpus, `core.train_tables`, then
    the output folder. Returns the metrics written to metrics.json. Under torchrun every rank calls
    this; see w2v/distributed.py. `callbacks` are passed on to `train_tables` (main rank only)."""
    device = resolve_device(cfg.train.device)
    release_large_blocks_on_free()
    cfg = settle(cfg, device)
    out_dir = Path(cfg.output.dir)
    with session(cfg, device) as (ctx, device):
        # Only rank 0 writes outputs and counts words; the vocabulary reaches the others by broadcast.
        vocab = ctx.from_main(lambda: (_prepare_output(out_dir), prepare_vocab(cfg))[1])
        check_memory(cfg, len(vocab), device)  # before the encoding pass, which can take long
        t0 = time.perf_counter()
        cache_dir = cfg.corpus.cache_dir or str(out_dir / "cache")
        corpus = ctx.encode_once(lambda: encode_corpus(cfg.corpus.paths, vocab, cache_dir, cfg.corpus.lowercase,
                                                       cfg.corpus.max_sentence_length))
        vocab.pack()  # not read again before the export (or a callback)
        log.info("encoded corpus: %d in-vocabulary tokens of %d, %d sentences, %.1fs",
                 corpus.num_tokens, corpus.raw_tokens, len(corpus.offsets) - 1, time.perf_counter() - t0)
        result = train_tables(cfg, vocab, corpus, callbacks=callbacks, quiet=quiet, out_dir=out_dir, resume=resume)
        extra = {"distributed": result.distributed} if result.distributed else {}
        if ctx.is_main:
            _export(cfg, out_dir, result, extra)
    return {"epochs": result.metrics, "vocab_size": len(vocab), **extra}


def _prepare_output(out_dir: Path) -> None:
    _check_writable(out_dir)
    if remove_stale_temps(out_dir, OUTPUT_NAMES):
        log.info("removed temporary files left by a killed run in %s", out_dir)


def _export(cfg: Config, out_dir: Path, result: TrainResult, extra: dict) -> None:
    """Write vectors (text, binary), vocabulary, resolved config and metrics, each atomically."""
    vocab, metrics, vectors = result.vocab, result.metrics, result.input.numpy()
    save_word2vec_text(out_dir / "word_embedding.txt", vocab.words, vectors)
    if cfg.output.binary:
        save_word2vec_binary(out_dir / "word_embedding.bin", vocab.words, vectors)
    vocab.save(out_dir / "vocab.txt")
    save_config(cfg, out_dir / "config.yaml")
    with atomic_write(out_dir / "metrics.json", "w") as f:
        json.dump({"epochs": metrics, "vocab_size": len(vocab), "dim": cfg.model.dim, **extra}, f, indent=2)
    log.info("wrote %s", out_dir / "word_embedding.txt")
