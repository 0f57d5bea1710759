"""The epoch loop: rounds of chunks trained by the backend, with checkpoints, stops and progress."""
from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .batches import make_examples, token_chunk
from .checkpoint import Checkpointer
from .guard import diverged
from .schedule import linear_lr

log = logging.getLogger("w2v")


class Interrupted(Exception):
    """Training stopped by Ctrl-C after a checkpoint was written."""


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


@dataclass
class ChunkResult:
    loss: torch.Tensor  # 0-dim float64 loss sum
    terms: int          # loss terms (pairs for skip-gram, centre words for CBOW)
    kept: int           # tokens left after subsampling
    words: int          # in-vocabulary words of the chunk, before subsampling
    lr: float           # the learning rate past its last example


class Chunks:
    """The corpus cut into chunks at sentence indices `bounds`: how chunk c is made into examples
    and trained by the backend, its learning rate linear in the words processed before it."""

    def __init__(self, cfg, corpus, bounds, model, backend, sampler, keep_prob, device, tsync=None):
        self.cfg, self.corpus, self.bounds = cfg, corpus, bounds
        self.model, self.backend, self.sampler, self.keep_prob = model, backend, sampler, keep_prob
        self.device, self.tsync = device, tsync
        self.n = len(bounds) - 1
        self.words_per_epoch = corpus.num_tokens
        self.words_total = cfg.train.epochs * corpus.num_tokens
        # The C kernel makes the examples itself where it can; a rank under torchrun marks the
        # rows each chunk's examples touch, so it needs them made here.
        self.from_tokens = tsync is None and backend.takes_tokens(model, sampler, keep_prob)

    def words_before(self, c: int) -> int:
        """In-vocabulary words of the epoch before chunk c."""
        return int(self.corpus.offsets[self.bounds[c]])

    def examples(self, c: int, generator: torch.Generator):
        self.sampler.prepare(self.model, c)    # e.g. the neighbour sampler's pools, before the draw
        if self.from_tokens:
            return token_chunk(self.corpus, int(self.bounds[c]), int(self.bounds[c + 1]), self.cfg.model.window,
                               generator)
        ex = make_examples(self.corpus, int(self.bounds[c]), int(self.bounds[c + 1]), self.model.mode,
                           self.cfg.model.window, self.keep_prob, self.sampler, generator, self.device,
                           self.backend.spans)
        if self.tsync is not None:
            self.tsync.note(ex)
        return ex

    def train(self, epoch: int, c: int, generator: torch.Generator, ex=None) -> ChunkResult:
        """Make chunk c's examples (unless given), then SGD over them."""
        ex = ex if ex is not None else self.examples(c, generator)
        done = epoch * self.words_per_epoch + self.words_before(c)
        words = self.words_before(c + 1) - self.words_before(c)
        t = self.cfg.train
        lr_start = linear_lr(t.alpha, t.min_alpha, done, self.words_total)
        lr_end = linear_lr(t.alpha, t.min_alpha, done + words, self.words_total)
        if len(ex):
            loss = self.backend.train_chunk(self.model, ex, lr_start, lr_end, generator)
        else:  # e.g. a chunk of one-word sentences: no window, nothing to train
            loss = torch.zeros((), dtype=torch.float64)
        return ChunkResult(loss, ex.loss_terms, ex.kept_tokens, words, lr_end)


@dataclass
class EpochTally:
    """An epoch's running loss and counters; `partial` continues a resumed epoch's, so its
    metrics come out whole."""
    device: torch.device
    partial: dict | None = None
    loss_sum: torch.Tensor = field(init=False)

    def __post_init__(self):
        p = self.partial or {}
        self.loss_sum = torch.tensor(p.get("loss_sum", 0.0), dtype=torch.float64, device=self.device)
        self.terms, self.kept, self.words = p.get("terms", 0), p.get("kept", 0), p.get("words", 0)
        self.started = time.perf_counter() - p.get("seconds", 0.0)

    def add(self, results: list[ChunkResult]) -> None:
        for r in results:
            self.loss_sum += r.loss
            self.terms, self.kept, self.words = self.terms + r.terms, self.kept + r.kept, self.words + r.words

    def mean_loss(self) -> float:
        return self.loss_sum.item() / max(self.terms, 1)  # one host sync

    def so_far(self) -> dict:
        """What a mid-epoch checkpoint keeps of the epoch."""
        return {"loss_sum": self.loss_sum.item(), "terms": self.terms, "kept": self.kept, "words": self.words,
                "seconds": time.perf_counter() - self.started}

    def sum_over_ranks(self, ctx) -> None:
        loss, terms, kept, words = ctx.sum_over_ranks([self.loss_sum.item(), self.terms, self.kept, self.words],
                                                      self.device)
        self.loss_sum = torch.tensor(loss, dtype=torch.float64)
        self.terms, self.kept, self.words = int(terms), int(kept), int(words)

    def row(self, epoch: int, lr: float) -> dict:
        """The epoch's metrics.json row."""
        seconds = time.perf_counter() - self.started
        return {"epoch": epoch + 1, "loss": self.loss_sum.item() / max(self.terms, 1),
                "seconds": round(seconds, 6), "words": self.words, "words_per_sec": self.words / seconds,
                "effective_words": self.kept, "effective_words_per_sec": self.kept / seconds,
                "examples": self.terms, "final_lr": lr}


class Positions:
    """Writes the run's position (`Checkpointer`; none without an output folder): everything a
    resume needs to continue bit for bit, tables, position, RNG states, metrics. Written by rank 0
    at a sync (identical tables), with every rank's generators and partial epoch counters in rank
    order."""

    def __init__(self, ckpt: Checkpointer | None, ctx, model, generators, fingerprint, cfg, n_chunks, metrics):
        self.ckpt, self.ctx, self.model, self.generators = ckpt, ctx, model, generators
        self.fingerprint, self.cfg, self.n_chunks, self.metrics = fingerprint, cfg, n_chunks, metrics

    def due(self) -> bool:
        return self.ckpt is not None and self.ckpt.due()

    def note(self) -> str:
        return self.ckpt.note() if self.ckpt is not None else "No checkpoint is written (no output folder)."

    def save(self, epoch: int, chunk: int, partial: dict | None = None, rng_states: list | None = None) -> None:
        if self.ckpt is None:
            return
        ctx = self.ctx
        local = rng_states or [g.get_state() for g in self.generators]
        states = [s for rank_states in ctx.gather_objects(local) for s in rank_states]
        partials = ctx.gather_objects(partial)
        if ctx.is_main:
            self.ckpt.save({"model": self.model.state_dict(), "epoch": epoch, "chunk": chunk,
                            "chunks": self.n_chunks, "generators": states, "metrics": self.metrics,
                            "partial": partials if ctx.enabled else partial,
                            "fingerprint": self.fingerprint, "config": self.cfg.to_dict()})

    def stop(self, epoch: int, chunk: int, partial: dict | None = None, rng_states: list | None = None
             ) -> Interrupted:
        """Save, then the exception that ends the run."""
        self.save(epoch, chunk, partial, rng_states)
        if self.ckpt is None:
            return Interrupted("interrupted (no output folder: nothing to resume from)")
        return Interrupted(f"interrupted; checkpoint written to {self.ckpt.path}; continue with --resume")


def _stop_or_save(requested: bool, positions: Positions, ctx, tsync, device) -> tuple[bool, bool]:
    """After a round: (stop now, checkpoint now). Under torchrun the ranks agree on either only at a
    sync, where the tables are identical, so one copy of them in the checkpoint is enough; rank 0's
    clock decides when a timed checkpoint is due (it is the one that writes)."""
    if tsync is None:
        return requested, positions.due()
    if tsync.after_round():
        return ctx.any_rank(requested, device), ctx.any_rank(ctx.is_main and positions.due(), device)
    return False, False


def run_epochs(cfg, chunks: Chunks, schedule, positions: Positions, progress, ctx, tsync, device,
               start_epoch: int = 0, start_chunk: int = 0, partial: dict | None = None) -> list:
    """Epochs of SGD from (start_epoch, start_chunk), a round of chunks at a time; returns the
    metrics rows (positions.metrics, appended to)."""
    epochs, n, metrics = cfg.train.epochs, chunks.n, positions.metrics
    lr = progress.state.lr = cfg.train.alpha  # a rank of a tiny corpus may get no chunk at all
    progress.call("on_train_begin")
    with _StopFlag() as stop, schedule:
        for epoch in range(start_epoch, epochs):
            first = start_chunk if epoch == start_epoch else 0
            tally = EpochTally(device, partial if epoch == start_epoch and first else None)
            progress.epoch_begin(epoch)
            for r in range(first, n, schedule.chunks_per_round):
                results = schedule.round(epoch, r)
                tally.add(results)
                lr = results[-1].lr if results else lr
                mean_loss = tally.mean_loss()
                if not np.isfinite(mean_loss):
                    raise diverged(f"loss became {mean_loss}", epoch + 1, cfg.train, positions.note())
                nxt = min(r + schedule.chunks_per_round, n)
                # The words of the whole round (all ranks'), so rank 0's bar shows global words/s.
                progress.round(chunks.words_before(nxt) - chunks.words_before(r),
                               epoch * chunks.words_per_epoch + chunks.words_before(nxt), epochs, mean_loss, lr)
                stopping, due = _stop_or_save(stop.requested, positions, ctx, tsync, device)
                if nxt < n and stopping:
                    progress.close()
                    raise positions.stop(epoch, nxt, tally.so_far(), schedule.rng_states())
                if nxt < n and due:
                    positions.save(epoch, nxt, tally.so_far(), schedule.rng_states())
                    log.info("checkpoint: epoch %d, chunk %d of %d", epoch + 1, nxt, n)
            if tsync is not None:
                tsync.flush()
                tally.sum_over_ranks(ctx)
            m = tally.row(epoch, lr)
            m.update(chunks.sampler.stats())   # acceptance rates, neighbour-pool seconds
            metrics.append(m)
            log.info("epoch %d/%d: loss %.4f, %.0f words/s raw, %.0f words/s effective (after subsampling), %.1fs",
                     epoch + 1, epochs, m["loss"], m["words_per_sec"], m["effective_words_per_sec"], m["seconds"])
            extra = {k: v for k, v in m.items() if k.startswith(("mh_", "rejection_", "neighbour_"))}
            if extra:
                log.info("epoch %d sampler: %s", epoch + 1, ", ".join(f"{k} {v:.4g}" for k, v in extra.items()))
            if ctx.any_rank(stop.requested, device) and epoch + 1 < epochs:
                progress.close()
                raise positions.stop(epoch + 1, 0)
            positions.save(epoch + 1, 0)
            progress.epoch_end((epoch + 1) * chunks.words_per_epoch, m["loss"], lr)
    progress.close()
    progress.call("on_train_end")
    return metrics
