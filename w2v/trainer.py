"""The training run: vocabulary -> encoded corpus -> epochs of SGD -> exported vectors."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import fused
from .atomic import atomic_write
from .batches import chunk_bounds, make_examples
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, run_fingerprint, save_checkpoint
from .config import Config, save_config
from .corpus import EncodedCorpus, corpus_fingerprint, encode_corpus
from .export import save_word2vec_binary, save_word2vec_text
from .model import CBOW, SkipGram, SkipGramSharedNegatives
from .noise import NoiseSampler
from .reader import ReadStats, iter_sentences
from .schedule import linear_lr
from .subsample import keep_probabilities
from .vocab import Vocab, build_vocab, count_words

log = logging.getLogger("w2v")


class Interrupted(Exception):
    """Training stopped by Ctrl-C after a checkpoint was written."""


class TrainingError(RuntimeError):
    """Training cannot go on (for example the loss became NaN)."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"train.device is '{name}' but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(name)


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
    return vocab


def build_model(cfg: Config, vocab_size: int, generator: torch.Generator):
    if cfg.model.arch == "skipgram":
        cls = SkipGramSharedNegatives if cfg.model.shared_negatives else SkipGram
        return cls(vocab_size, cfg.model.dim, generator)
    return CBOW(vocab_size, cfg.model.dim, generator, mean=cfg.model.cbow_mean)


class _StopFlag:
    """First Ctrl-C asks for a clean stop at the next chunk boundary; a second one stops at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            log.warning("interrupt: finishing this chunk, then writing a checkpoint (Ctrl-C again to abort)")
        try:
            self._previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not in the main thread
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(cfg: Config, resume: bool = False, quiet: bool = False) -> dict:
    """Run the whole job described by `cfg`; returns the metrics written to metrics.json."""
    out_dir = Path(cfg.output.dir)
    _check_writable(out_dir)
    device = resolve_device(cfg.train.device)
    workers = cfg.train.workers
    threads = max(1, (cfg.train.threads or os.cpu_count() or 1) // workers)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.train.seed)
    # Worker 0's generator also initialises the tables, so one worker is exactly the sequential
    # run; further workers get their own seeded streams.
    generators = [torch.Generator(device=device).manual_seed(cfg.train.seed + 7919 * i) for i in range(workers)]

    vocab = prepare_vocab(cfg)
    t0 = time.perf_counter()
    cache_dir = cfg.corpus.cache_dir or str(out_dir / "cache")
    corpus = encode_corpus(cfg.corpus.paths, vocab, cache_dir, cfg.corpus.lowercase, cfg.corpus.max_sentence_length)
    if corpus.num_tokens == 0:
        raise TrainingError("no in-vocabulary tokens to train on")
    log.info("encoded corpus: %d in-vocabulary tokens of %d, %d sentences, %.1fs",
             corpus.num_tokens, corpus.raw_tokens, len(corpus.offsets) - 1, time.perf_counter() - t0)
    backend = fused.resolve_backend(cfg.train.backend, device)
    if backend == "fused" and device.type == "cpu":
        # The kernel runs `threads` threads of its own; torch's idle OpenMP threads, spinning
        # beside them after each example-making op, cost 3x in wall time (measured).
        torch.set_num_threads(1)
    fingerprint = run_fingerprint(cfg, vocab.fingerprint(),
                                  corpus_fingerprint(cfg.corpus.paths, cfg.corpus.lowercase,
                                                     cfg.corpus.max_sentence_length, vocab), backend)

    model = build_model(cfg, len(vocab), generators[0]).to(device)
    counts = torch.from_numpy(vocab.counts)
    noise = NoiseSampler(counts, cfg.model.ns_exponent).to(device)
    keep_prob = keep_probabilities(counts, cfg.model.sample).to(device)
    bounds = chunk_bounds(corpus, cfg.train.chunk_tokens)

    ckpt_path = out_dir / CHECKPOINT_NAME
    start_epoch, start_chunk, metrics = 0, 0, []
    if resume:
        state = load_checkpoint(ckpt_path, fingerprint)
        model.load_state_dict(state["model"])
        for g, g_state in zip(generators, state["generators"]):
            g.set_state(g_state)
        start_epoch, start_chunk, metrics = state["epoch"], state["chunk"], state["metrics"]
        log.info("resumed from %s at epoch %d, chunk %d", ckpt_path, start_epoch + 1, start_chunk)

    metrics = _run_epochs(cfg, model, noise, keep_prob, corpus, bounds, generators, device, fingerprint,
                          ckpt_path, start_epoch, start_chunk, metrics, quiet, backend, threads)
    _export(cfg, out_dir, vocab, model, metrics)
    return {"epochs": metrics, "vocab_size": len(vocab)}


def _run_epochs(cfg, model, noise, keep_prob, corpus: EncodedCorpus, bounds, generators, device,
                fingerprint, ckpt_path, start_epoch, start_chunk, metrics, quiet, backend="torch",
                kernel_threads=1) -> list:
    """Epochs of SGD. With `train.workers` > 1 the chunks of a round are trained at once by that
    many threads on the shared tables (Hogwild, as word2vec.c's pthreads), each with its own RNG."""
    epochs, batch, workers = cfg.train.epochs, cfg.train.batch_size, len(generators)
    words_per_epoch = corpus.num_tokens
    words_total = float(epochs * words_per_epoch)
    offsets = corpus.offsets
    n_chunks = len(bounds) - 1

    def checkpoint(epoch: int, chunk: int, rng_states: list | None = None) -> None:
        save_checkpoint(ckpt_path, {"model": model.state_dict(), "epoch": epoch, "chunk": chunk,
                                    "generators": rng_states or [g.get_state() for g in generators],
                                    "metrics": metrics, "fingerprint": fingerprint, "config": cfg.to_dict()})

    def examples(c: int, generator: torch.Generator):
        return make_examples(corpus, int(bounds[c]), int(bounds[c + 1]), cfg.model.arch, cfg.model.window,
                             cfg.model.negative, keep_prob, noise, generator, device, cfg.model.shared_negatives)

    def run_chunk(epoch: int, c: int, generator: torch.Generator, ex=None) -> tuple:
        """Make chunk c's examples (unless given), then SGD over them; lr follows the words processed."""
        s0, s1 = int(bounds[c]), int(bounds[c + 1])
        ex = ex if ex is not None else examples(c, generator)
        done, chunk_words, n = epoch * words_per_epoch + int(offsets[s0]), int(offsets[s1] - offsets[s0]), len(ex)
        loss = torch.zeros((), dtype=torch.float64, device=device)
        lr = linear_lr(cfg.train.alpha, cfg.train.min_alpha, done, words_total)
        if backend == "fused":  # the whole chunk in one call, lr linear from its start to its end
            lr_end = linear_lr(cfg.train.alpha, cfg.train.min_alpha, done + chunk_words, words_total)
            loss += fused.train_chunk(model, ex, cfg.model.arch, cfg.model.shared_negatives, cfg.model.cbow_mean,
                                      lr, lr_end, kernel_threads)
        else:
            for start in range(0, n, batch):
                lr = linear_lr(cfg.train.alpha, cfg.train.min_alpha, done + chunk_words * start / max(n, 1),
                               words_total)
                loss += model.sgd_step(*ex.batch(start, start + batch), lr)
        return loss, ex.loss_terms, ex.kept_tokens, chunk_words, lr

    def stop_here(epoch: int, chunk: int, rng_states: list | None = None) -> None:
        checkpoint(epoch, chunk, rng_states)
        bar.close()
        raise Interrupted(f"interrupted; checkpoint written to {ckpt_path}; continue with --resume")

    done_before = start_epoch * words_per_epoch + int(offsets[bounds[start_chunk]])
    bar = tqdm(total=int(words_total), initial=done_before, unit="w", unit_scale=True, disable=quiet,
               dynamic_ncols=True, smoothing=0.1, desc="train")
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    # The C kernel releases the GIL, so one thread can make chunk c+1's examples while it trains
    # chunk c (+30% words/s for CBOW, +8% skip-gram on 2 cores); the draws stay in chunk order.
    maker = ThreadPoolExecutor(max_workers=1) if backend == "fused" and pool is None and device.type == "cpu" else None
    ahead, rng_after = None, None
    with _StopFlag() as stop, (pool or contextlib.nullcontext()), (maker or contextlib.nullcontext()):
        for epoch in range(start_epoch, epochs):
            first = start_chunk if epoch == start_epoch else 0
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            terms_done, kept_done, epoch_words, t_epoch = 0, 0, 0, time.perf_counter()
            for r in range(first, n_chunks, workers):
                chunks = list(range(r, min(r + workers, n_chunks)))
                if maker is not None:
                    ex = ahead.result() if ahead is not None else examples(r, generators[0])
                    rng_after = [generators[0].get_state()]   # what a checkpoint before chunk r+1 holds
                    ahead = maker.submit(examples, r + 1, generators[0]) if r + 1 < n_chunks else None
                    results = [run_chunk(epoch, r, generators[0], ex)]
                elif pool is None:
                    results = [run_chunk(epoch, r, generators[0])]
                else:
                    results = list(pool.map(run_chunk, [epoch] * len(chunks), chunks, generators))
                for loss, terms, kept, words, lr in results:
                    loss_sum += loss
                    terms_done, kept_done, epoch_words = terms_done + terms, kept_done + kept, epoch_words + words
                mean_loss = loss_sum.item() / max(terms_done, 1)  # one host sync per round
                if not np.isfinite(mean_loss):
                    raise TrainingError(f"loss became {mean_loss} in epoch {epoch + 1}: the learning rate "
                                        f"(train.alpha={cfg.train.alpha}) is probably too high for "
                                        f"train.batch_size={batch}; lower one of them")
                bar.update(sum(res[3] for res in results))
                bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{mean_loss:.4f}", lr=f"{lr:.5f}",
                                refresh=False)
                if stop.requested and chunks[-1] + 1 < n_chunks:
                    stop_here(epoch, chunks[-1] + 1, rng_after)
            seconds = time.perf_counter() - t_epoch
            metrics.append({"epoch": epoch + 1, "loss": loss_sum.item() / max(terms_done, 1),
                            "seconds": round(seconds, 3), "words": epoch_words,
                            "words_per_sec": epoch_words / seconds, "effective_words": kept_done,
                            "effective_words_per_sec": kept_done / seconds, "examples": terms_done,
                            "final_lr": lr})
            m = metrics[-1]
            log.info("epoch %d/%d: loss %.4f, %.0f words/s raw, %.0f words/s effective (after subsampling), %.1fs",
                     epoch + 1, epochs, m["loss"], m["words_per_sec"], m["effective_words_per_sec"], seconds)
            if stop.requested and epoch + 1 < epochs:
                stop_here(epoch + 1, 0)
            checkpoint(epoch + 1, 0)
    bar.close()
    return metrics


def _export(cfg: Config, out_dir: Path, vocab: Vocab, model, metrics: list) -> None:
    """Write vectors (text, binary), vocabulary, resolved config and metrics, each atomically."""
    vectors = model.in_embed.weight.detach().to("cpu").numpy()
    save_word2vec_text(out_dir / "word_embedding.txt", vocab.words, vectors)
    if cfg.output.binary:
        save_word2vec_binary(out_dir / "word_embedding.bin", vocab.words, vectors)
    vocab.save(out_dir / "vocab.txt")
    save_config(cfg, out_dir / "config.yaml")
    with atomic_write(out_dir / "metrics.json", "w") as f:
        json.dump({"epochs": metrics, "vocab_size": len(vocab), "dim": cfg.model.dim}, f, indent=2)
    log.info("wrote %s", out_dir / "word_embedding.txt")
