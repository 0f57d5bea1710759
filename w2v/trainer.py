"""The training run: vocabulary -> encoded corpus -> epochs of SGD -> exported vectors."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import fused
from .atomic import atomic_write, remove_stale_temps
from .batches import chunk_bounds, make_examples
from .checkpoint import CHECKPOINT_NAME, Checkpointer, describe_position, load_checkpoint, run_fingerprint
from .config import Config, chunk_tokens_for, save_config
from .corpus import EncodedCorpus, corpus_fingerprint
from .distributed import Context, TableSync, session
from .errors import TrainingError
from .export import save_word2vec_binary, save_word2vec_text
from .guard import diverged
from .heads import build_head
from .memory import check_memory, release_large_blocks_on_free
from .model import CBOW, SkipGram, SkipGramSharedNegatives
from .pipeline import prepare_corpus
from .reader import ReadStats, iter_sentences
from .samplers import build_sampler, logit_correction
from .schedule import linear_lr
from .subsample import keep_probabilities
from .vocab import Vocab, build_vocab, count_words

log = logging.getLogger("w2v")

# Files a run writes into output.dir (all through atomic_write).
OUTPUT_NAMES = (CHECKPOINT_NAME, "word_embedding.txt", "word_embedding.bin", "vocab.txt", "config.yaml",
                "metrics.json")


class Interrupted(Exception):
    """Training stopped by Ctrl-C after a checkpoint was written."""


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
    # The kept words are strings scattered among those of every word counted, and would keep that
    # memory resident: with the words packed, freeing the counts frees them all, and the kept ones
    # are made anew, together, when next read. 10 MB less for the whole run on the benchmark corpus.
    vocab.pack()
    return vocab


def build_model(cfg: Config, vocab_size: int, generator: torch.Generator, head=None):
    """The model `cfg.model` asks for; `head` is its output layer (default: negative sampling)."""
    if cfg.model.arch == "skipgram":
        cls = SkipGramSharedNegatives if cfg.model.shared_negatives else SkipGram
        return cls(vocab_size, cfg.model.dim, generator, head)
    return CBOW(vocab_size, cfg.model.dim, generator, mean=cfg.model.cbow_mean, head=head)


class _StopFlag:
    """First Ctrl-C (or SIGTERM, as a pre-empted machine gets) asks for a clean stop at the next
    chunk boundary; a second one stops at once."""

    REPEAT_SECONDS = 2.0

    def __init__(self):
        self.requested = False
        self._previous = None
        self._first_at = 0.0

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:
                if time.monotonic() - self._first_at > self.REPEAT_SECONDS:
                    raise KeyboardInterrupt
                return
            self.requested, self._first_at = True, time.monotonic()
            log.warning("interrupt: finishing this chunk, then writing a checkpoint (Ctrl-C again to abort)")
        try:
            self._previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not in the main thread
            self._previous = None
        return self

    def __exit__(self, *exc):
        for sig, previous in (self._previous or {}).items():
            signal.signal(sig, previous)


def train(cfg: Config, resume: bool = False, quiet: bool = False, on_epoch=None) -> dict:
    """Run the whole job described by `cfg`; returns the metrics written to metrics.json.
    Under torchrun every rank calls this; see w2v/distributed.py.

    `on_epoch(metrics_row, words, vectors)`, if given, is called after each epoch (outside its
    timing) with the input vectors on the CPU, e.g. to evaluate per epoch (scripts/study_samplers.py)."""
    device = resolve_device(cfg.train.device)
    release_large_blocks_on_free()
    # Settle 'auto' values once, so that the log, the checkpoint fingerprint and the chunking agree.
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, chunk_tokens=chunk_tokens_for(cfg.train, device.type)))
    with session(cfg, device) as (ctx, device):
        return _train(cfg, resume, quiet or not ctx.is_main, ctx, device, on_epoch)


def _prepare_output(out_dir: Path) -> None:
    _check_writable(out_dir)
    if remove_stale_temps(out_dir, OUTPUT_NAMES):
        log.info("removed temporary files left by a killed run in %s", out_dir)


def _train(cfg: Config, resume: bool, quiet: bool, ctx: Context, device: torch.device, on_epoch=None) -> dict:
    out_dir = Path(cfg.output.dir)
    workers = cfg.train.workers
    threads = max(1, (cfg.train.threads or ctx.default_threads()) // workers)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.train.seed)
    # Worker 0's generator also initialises the tables, so one worker is exactly the sequential
    # run; further workers, and the workers of further ranks, get their own seeded streams.
    first = ctx.rank * workers
    generators = [torch.Generator(device=device).manual_seed(cfg.train.seed + 7919 * i)
                  for i in range(first, first + workers)]

    # Only rank 0 writes outputs and counts words; the vocabulary reaches the others by broadcast.
    cache_dir = cfg.corpus.cache_dir or str(out_dir / "cache")
    made = {}  # rank 0's (vocab, corpus) from the one pass over the text; other ranks open the cache

    def prepare_on_main():
        _prepare_output(out_dir)
        # The memory check runs once the vocabulary is known, before the corpus is cached.
        made["vc"] = prepare_corpus(cfg, cache_dir, quiet, check=lambda v: check_memory(cfg, len(v), device))
        return made["vc"][0]
    vocab = ctx.from_main(prepare_on_main)
    if not ctx.is_main:
        check_memory(cfg, len(vocab), device)
    t0 = time.perf_counter()
    corpus = ctx.encode_once(lambda: made["vc"][1] if made else prepare_corpus(cfg, cache_dir, quiet)[1])
    if corpus.num_tokens == 0:
        raise TrainingError("no in-vocabulary tokens to train on")
    vocab.pack()  # not read again before the export (or an on_epoch callback)
    log.info("encoded corpus: %d in-vocabulary tokens of %d, %d sentences, %.1fs",
             corpus.num_tokens, corpus.raw_tokens, len(corpus.offsets) - 1, time.perf_counter() - t0)
    if cfg.model.loss == "hs" and len(vocab) < 2:
        raise TrainingError(f"model.loss: hs needs at least 2 words in the vocabulary, got {len(vocab)}")
    counts = torch.from_numpy(vocab.counts)
    keep_prob = keep_probabilities(counts, cfg.model.sample)
    sampler = build_sampler(cfg.model, counts, keep_prob, cfg.train.batch_size)
    head = build_head(cfg.model, vocab.counts, logit_correction(cfg.model, sampler))
    model = build_model(cfg, len(vocab), generators[0], head).to(device)
    sampler, keep_prob = sampler.to(device), keep_prob.to(device)
    backend = fused.resolve_backend(cfg.train.backend, device, fused.torch_only_reason(model, sampler, cfg.model))
    if backend == "fused" and device.type == "cpu":
        # The kernel runs `threads` threads of its own; torch's idle OpenMP threads, spinning
        # beside them after each example-making op, cost 3x in wall time (measured).
        torch.set_num_threads(1)
    fingerprint = run_fingerprint(cfg, vocab.fingerprint(),
                                  corpus_fingerprint(cfg.corpus.paths, cfg.corpus.lowercase,
                                                     cfg.corpus.max_sentence_length, vocab), backend)
    fingerprint.update(ctx.fingerprint(cfg))
    bounds = chunk_bounds(corpus, cfg.train.chunk_tokens)

    ckpt = Checkpointer(out_dir / CHECKPOINT_NAME, cfg.train)
    start_epoch, start_chunk, metrics, partial = 0, 0, [], None
    if resume:
        # Rank 0 reads the checkpoint; the others get the position and their own generators from it,
        # and the tables by the broadcast below.
        full = ctx.in_turn(lambda: load_checkpoint(ckpt.path, fingerprint), ctx.is_main)
        state = ctx.from_main(lambda: {k: v for k, v in full.items() if k != "model"})
        if ctx.is_main:
            model.load_state_dict(full["model"])
        for g, g_state in zip(generators, state["generators"][first:first + workers]):
            g.set_state(g_state)
        start_epoch, start_chunk, metrics = state["epoch"], state["chunk"], state["metrics"]
        partials = state.get("partial")  # under torchrun: one per rank, in rank order
        partial = partials[ctx.rank] if isinstance(partials, list) else partials
        ckpt.resumed(state)
        log.info("resumed from %s (%s)", ckpt.path, describe_position(state))
    tables = [model.in_embed.weight.data, model.out_embed.weight.data]
    ctx.broadcast_tables(tables)
    d = cfg.distributed  # a round trains one chunk per worker per rank
    rounds_between = max(1, round(d.sync_every_words / (cfg.train.chunk_tokens * workers)))
    tsync = TableSync(ctx, tables, d.sync, d.merge, rounds_between) if ctx.enabled else None

    after_epoch = None if on_epoch is None or not ctx.is_main else (
        lambda row: on_epoch(row, vocab.words, model.in_embed.weight.detach().to("cpu").numpy()))
    metrics = _run_epochs(cfg, model, sampler, keep_prob, corpus, bounds, generators, device, fingerprint,
                          ckpt, start_epoch, start_chunk, metrics, partial, quiet, ctx, tsync, after_epoch,
                          backend, threads)
    extra = {}
    if ctx.enabled:
        checksums = ctx.table_checksums(tables)
        if len(set(checksums)) > 1:
            log.warning("the ranks' tables differ after the final sync: %s", checksums)
        extra["distributed"] = {"world_size": ctx.world_size, "backend": ctx.backend, "sync": d.sync,
                                "merge": d.merge, "sync_every_words": d.sync_every_words,
                                "rounds_between_syncs": rounds_between, **ctx.sync_stats,
                                "table_checksums": checksums}
    if ctx.is_main:
        _export(cfg, out_dir, vocab, model, metrics, extra)
    return {"epochs": metrics, "vocab_size": len(vocab), **extra}


def _run_epochs(cfg, model, sampler, keep_prob, corpus: EncodedCorpus, bounds, generators, device,
                fingerprint, ckpt: Checkpointer, start_epoch, start_chunk, metrics, partial, quiet,
                ctx: Context, tsync: TableSync | None, after_epoch=None, backend="torch",
                kernel_threads=1) -> list:
    """Epochs of SGD. With `train.workers` > 1 the chunks of a round are trained at once by that
    many threads on the shared tables (Hogwild, as word2vec.c's pthreads), each with its own RNG.
    Under torchrun a round spans every rank's workers; each rank trains its own chunks of it.
    `partial` is a resumed epoch's running loss and counters, so its metrics come out whole."""
    epochs, batch, workers = cfg.train.epochs, cfg.train.batch_size, len(generators)
    step = workers * ctx.world_size  # chunks per round
    words_per_epoch = corpus.num_tokens
    words_total = float(epochs * words_per_epoch)
    offsets = corpus.offsets
    n_chunks = len(bounds) - 1

    def checkpoint(epoch: int, chunk: int, partial: dict | None = None, rng_states: list | None = None) -> None:
        """Everything a resume needs to continue bit for bit: tables, position, RNG states, metrics.
        Written by rank 0 at a sync (identical tables), with every rank's generators and partial
        epoch counters in rank order."""
        local = rng_states or [g.get_state() for g in generators]
        states = [s for rank_states in ctx.gather_objects(local) for s in rank_states]
        partials = ctx.gather_objects(partial)
        if ctx.is_main:
            ckpt.save({"model": model.state_dict(), "epoch": epoch, "chunk": chunk, "chunks": n_chunks,
                       "generators": states, "metrics": metrics,
                       "partial": partials if ctx.enabled else partial,
                       "fingerprint": fingerprint, "config": cfg.to_dict()})

    # The C kernel reads windows as spans (lo, centre, hi): the same examples in a fifth of the memory.
    spans = backend == "fused" and device.type == "cpu"

    def examples(c: int, generator: torch.Generator):
        ex = make_examples(corpus, int(bounds[c]), int(bounds[c + 1]), cfg.model.arch, cfg.model.window,
                           keep_prob, sampler, generator, device, cfg.model.shared_negatives, spans)
        if tsync is not None:
            tsync.note(ex)
        return ex

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
            return loss, ex.loss_terms, ex.kept_tokens, chunk_words, lr_end
        for start in range(0, n, batch):
            lr = linear_lr(cfg.train.alpha, cfg.train.min_alpha, done + chunk_words * start / max(n, 1), words_total)
            args = ex.batch(start, start + batch)
            if sampler.refines_batches:  # DNS scores its candidates with the vectors as they are now
                args = sampler.refine(model, args, generator)
            loss += model.sgd_step(*args, lr)
        return loss, ex.loss_terms, ex.kept_tokens, chunk_words, lr

    def stop_here(epoch: int, chunk: int, partial: dict | None = None, rng_states: list | None = None) -> None:
        checkpoint(epoch, chunk, partial, rng_states)
        bar.close()
        raise Interrupted(f"interrupted; checkpoint written to {ckpt.path}; continue with --resume")

    done_before = start_epoch * words_per_epoch + int(offsets[bounds[start_chunk]])
    bar = tqdm(total=int(words_total), initial=done_before, unit="w", unit_scale=True, disable=quiet,
               dynamic_ncols=True, smoothing=0.1, desc="train")
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    lr = cfg.train.alpha  # a rank of a tiny corpus may get no chunk at all
    # The C kernel releases the GIL, so one thread can make chunk c+1's examples while it trains
    # chunk c (+30% words/s for CBOW, +8% skip-gram on 2 cores); the draws stay in chunk order.
    maker = (ThreadPoolExecutor(max_workers=1)
             if backend == "fused" and pool is None and device.type == "cpu" and not ctx.enabled else None)
    ahead, rng_after = None, None
    with _StopFlag() as stop, (pool or contextlib.nullcontext()), (maker or contextlib.nullcontext()):
        for epoch in range(start_epoch, epochs):
            first = start_chunk if epoch == start_epoch else 0
            p = (partial or {}) if epoch == start_epoch and first else {}
            loss_sum = torch.tensor(p.get("loss_sum", 0.0), dtype=torch.float64, device=device)
            terms_done, kept_done, epoch_words = p.get("terms", 0), p.get("kept", 0), p.get("words", 0)
            t_epoch = time.perf_counter() - p.get("seconds", 0.0)
            for r in range(first, n_chunks, step):
                chunks = ctx.chunks_of_round(r, workers, n_chunks)
                if maker is not None:
                    ex = ahead.result() if ahead is not None else examples(r, generators[0])
                    rng_after = [generators[0].get_state()]   # what a checkpoint before chunk r+1 holds
                    ahead = maker.submit(examples, r + 1, generators[0]) if r + 1 < n_chunks else None
                    results = [run_chunk(epoch, r, generators[0], ex)]
                elif pool is None:
                    results = [run_chunk(epoch, c, generators[0]) for c in chunks]
                else:
                    results = list(pool.map(run_chunk, [epoch] * len(chunks), chunks, generators))
                for loss, terms, kept, words, lr in results:
                    loss_sum += loss
                    terms_done, kept_done, epoch_words = terms_done + terms, kept_done + kept, epoch_words + words
                mean_loss = loss_sum.item() / max(terms_done, 1)  # one host sync per round
                if not np.isfinite(mean_loss):
                    raise diverged(f"loss became {mean_loss}", epoch + 1, cfg.train, ckpt.note())
                # The words of the whole round (all ranks'), so rank 0's bar shows global words/s.
                nxt = min(r + step, n_chunks)
                bar.update(int(offsets[bounds[nxt]] - offsets[bounds[r]]))
                bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{mean_loss:.4f}", lr=f"{lr:.5f}",
                                refresh=False)
                requested = stop.requested
                if tsync is None:
                    stopping, due = requested, ckpt.due()
                elif tsync.after_round():
                    # Ranks agree on a stop or a timed checkpoint only at a sync, where the tables
                    # are identical, so one copy of them in the checkpoint is enough.
                    # Rank 0's clock decides when a timed checkpoint is due (it is the one that writes).
                    stopping, due = ctx.any_rank(requested, device), ctx.any_rank(ctx.is_main and ckpt.due(), device)
                else:
                    stopping = due = False
                if nxt < n_chunks and (stopping or due):
                    so_far = {"loss_sum": loss_sum.item(), "terms": terms_done, "kept": kept_done,
                              "words": epoch_words, "seconds": time.perf_counter() - t_epoch}
                    if stopping:
                        stop_here(epoch, nxt, so_far, rng_after)
                    checkpoint(epoch, nxt, so_far, rng_after)
                    log.info("checkpoint: epoch %d, chunk %d of %d", epoch + 1, nxt, n_chunks)
            if tsync is not None:
                tsync.flush()
                loss_total, terms_done, kept_done, epoch_words = ctx.sum_over_ranks(
                    [loss_sum.item(), terms_done, kept_done, epoch_words], device)
                terms_done, kept_done, epoch_words = int(terms_done), int(kept_done), int(epoch_words)
                loss_sum = torch.tensor(loss_total, dtype=torch.float64)
            seconds = time.perf_counter() - t_epoch
            metrics.append({"epoch": epoch + 1, "loss": loss_sum.item() / max(terms_done, 1),
                            "seconds": round(seconds, 3), "words": epoch_words,
                            "words_per_sec": epoch_words / seconds, "effective_words": kept_done,
                            "effective_words_per_sec": kept_done / seconds, "examples": terms_done,
                            "final_lr": lr})
            m = metrics[-1]
            log.info("epoch %d/%d: loss %.4f, %.0f words/s raw, %.0f words/s effective (after subsampling), %.1fs",
                     epoch + 1, epochs, m["loss"], m["words_per_sec"], m["effective_words_per_sec"], seconds)
            if ctx.any_rank(stop.requested, device) and epoch + 1 < epochs:
                stop_here(epoch + 1, 0)
            checkpoint(epoch + 1, 0)
            if after_epoch is not None:
                after_epoch(m)
    bar.close()
    return metrics


def _export(cfg: Config, out_dir: Path, vocab: Vocab, model, metrics: list, extra: dict) -> None:
    """Write vectors (text, binary), vocabulary, resolved config and metrics, each atomically."""
    vectors = model.in_embed.weight.detach().to("cpu").numpy()
    save_word2vec_text(out_dir / "word_embedding.txt", vocab.words, vectors)
    if cfg.output.binary:
        save_word2vec_binary(out_dir / "word_embedding.bin", vocab.words, vectors)
    vocab.save(out_dir / "vocab.txt")
    save_config(cfg, out_dir / "config.yaml")
    with atomic_write(out_dir / "metrics.json", "w") as f:
        json.dump({"epochs": metrics, "vocab_size": len(vocab), "dim": cfg.model.dim, **extra}, f, indent=2)
    log.info("wrote %s", out_dir / "word_embedding.txt")
