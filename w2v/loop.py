"""The epoch loop: rounds of chunks, each trained by the backend, with checkpoints and progress."""
from __future__ import annotations

import contextlib
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm import tqdm

from . import fused
from .batches import make_examples
from .checkpoint import Checkpointer
from .corpus import EncodedCorpus
from .distributed import Context, TableSync
from .guard import diverged
from .schedule import linear_lr

log = logging.getLogger("w2v")


class Interrupted(Exception):
    """Training stopped by Ctrl-C after a checkpoint was written."""


class TrainState:
    """What callbacks see: `epoch` (0-based), `metrics` (rows so far), `words_done` and
    `words_total` (in-vocabulary words, all epochs), `loss` (running mean of this epoch), `lr`,
    `seconds` (since training began), `vocab`, and `vectors()`, the input table as numpy."""

    def __init__(self, metrics: list, words_total: int, vocab, model, t0: float, words_done: int, epoch: int):
        self.metrics, self.words_total, self.vocab = metrics, words_total, vocab
        self.words_done, self.epoch = words_done, epoch
        self.loss, self.lr = 0.0, 0.0
        self._model, self._t0 = model, t0

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._t0

    def vectors(self, copy: bool = False) -> np.ndarray:
        """The input vectors [V, D] as numpy: on a CPU run a view of the live table unless `copy`."""
        v = self._model.in_embed.weight.detach().to("cpu").numpy()
        return v.copy() if copy else v


class Callbacks:
    """Calls the hooks each callback object has (any of on_train_begin, on_epoch_begin,
    on_epoch_end, on_train_end, on_round); an object need not define them all."""

    def __init__(self, callbacks):
        self.callbacks = list(callbacks or ())

    def call(self, hook: str, state: TrainState) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(state)


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


def run_epochs(cfg, model, sampler, keep_prob, corpus: EncodedCorpus, bounds, generators, device,
               fingerprint, ckpt: Checkpointer | None, start_epoch, start_chunk, metrics, partial, quiet,
               ctx: Context, tsync: TableSync | None, callbacks=(), vocab=None, backend="torch",
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
        if ckpt is None:
            return
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
        if ckpt is None:
            raise Interrupted("interrupted")
        raise Interrupted(f"interrupted; checkpoint written to {ckpt.path}; continue with --resume")

    def note() -> str:
        return ckpt.note() if ckpt is not None else "No checkpoints are written (no output folder)."

    hooks = Callbacks(callbacks)
    t_train = time.perf_counter()
    done_before = start_epoch * words_per_epoch + int(offsets[bounds[start_chunk]])
    state = TrainState(metrics, int(words_total), vocab, model, t_train, done_before, start_epoch)
    bar = tqdm(total=int(words_total), initial=done_before, unit="w", unit_scale=True, disable=quiet,
               dynamic_ncols=True, smoothing=0.1, desc="train")
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    lr = cfg.train.alpha  # a rank of a tiny corpus may get no chunk at all
    # The C kernel releases the GIL, so one thread can make chunk c+1's examples while it trains
    # chunk c (+30% words/s for CBOW, +8% skip-gram on 2 cores); the draws stay in chunk order.
    maker = (ThreadPoolExecutor(max_workers=1)
             if backend == "fused" and pool is None and device.type == "cpu" and not ctx.enabled else None)
    ahead, rng_after = None, None
    hooks.call("on_train_begin", state)
    with _StopFlag() as stop, (pool or contextlib.nullcontext()), (maker or contextlib.nullcontext()):
        for epoch in range(start_epoch, epochs):
            first = start_chunk if epoch == start_epoch else 0
            p = (partial or {}) if epoch == start_epoch and first else {}
            loss_sum = torch.tensor(p.get("loss_sum", 0.0), dtype=torch.float64, device=device)
            terms_done, kept_done, epoch_words = p.get("terms", 0), p.get("kept", 0), p.get("words", 0)
            t_epoch = time.perf_counter() - p.get("seconds", 0.0)
            state.epoch = epoch
            hooks.call("on_epoch_begin", state)
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
                    raise diverged(f"loss became {mean_loss}", epoch + 1, cfg.train, note())
                # The words of the whole round (all ranks'), so rank 0's bar shows global words/s.
                nxt = min(r + step, n_chunks)
                bar.update(int(offsets[bounds[nxt]] - offsets[bounds[r]]))
                bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{mean_loss:.4f}", lr=f"{lr:.5f}",
                                refresh=False)
                state.words_done = epoch * words_per_epoch + int(offsets[bounds[nxt]])
                state.loss, state.lr = mean_loss, lr
                hooks.call("on_round", state)
                requested = stop.requested
                if tsync is None:
                    stopping, due = requested, ckpt is not None and ckpt.due()
                elif tsync.after_round():
                    # Ranks agree on a stop or a timed checkpoint only at a sync, where the tables
                    # are identical, so one copy of them in the checkpoint is enough.
                    # Rank 0's clock decides when a timed checkpoint is due (it is the one that writes).
                    stopping, due = ctx.any_rank(requested, device), ctx.any_rank(ctx.is_main and ckpt is not None and ckpt.due(), device)
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
            state.words_done, state.loss, state.lr = (epoch + 1) * words_per_epoch, m["loss"], lr
            hooks.call("on_epoch_end", state)
    bar.close()
    hooks.call("on_train_end", state)
    return metrics


