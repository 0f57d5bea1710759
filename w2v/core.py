"""The training core: a config, a vocabulary and an encoded corpus in, the trained tables out (no files)."""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import fused
from .batches import chunk_bounds
from .checkpoint import CHECKPOINT_NAME, Checkpointer, describe_position, load_checkpoint, run_fingerprint
from .config import Config, chunk_tokens_for
from .corpus import EncodedCorpus, corpus_fingerprint
from .distributed import TableSync, session
from .errors import TrainingError
from .heads import build_head
from .loop import run_epochs
from .memory import release_large_blocks_on_free
from .model import CBOW, SkipGram, SkipGramSharedNegatives
from .samplers import build_sampler, logit_correction
from .subsample import keep_probabilities
from .vocab import Vocab

log = logging.getLogger("w2v")


@dataclass
class TrainResult:
    """What a training run produced. `input` [V, D] and `output` [rows, D] are float32 CPU tensors
    (the same storage as the trained tables on a CPU run); `metrics` are the per-epoch rows of
    metrics.json; `distributed` describes the ranks' syncs under torchrun (empty otherwise)."""
    input: torch.Tensor
    output: torch.Tensor
    metrics: list
    vocab: Vocab
    distributed: dict = dataclasses.field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"train.device is '{name}' but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(name)


def settle(cfg: Config, device: torch.device) -> Config:
    """`cfg` with its 'auto' values resolved for `device`, so that the log, the checkpoint
    fingerprint and the chunking agree."""
    return dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, chunk_tokens=chunk_tokens_for(cfg.train, device.type)))


def build_model(cfg: Config, vocab_size: int, generator: torch.Generator, head=None):
    """The model `cfg.model` asks for; `head` is its output layer (default: negative sampling)."""
    if cfg.model.arch == "skipgram":
        cls = SkipGramSharedNegatives if cfg.model.shared_negatives else SkipGram
        return cls(vocab_size, cfg.model.dim, generator, head)
    return CBOW(vocab_size, cfg.model.dim, generator, mean=cfg.model.cbow_mean, head=head)


def train_tables(cfg: Config, vocab: Vocab, corpus: EncodedCorpus, *, init=None, callbacks=(), quiet: bool = False,
                 out_dir=None, resume: bool = False) -> TrainResult:
    """Train the tables on `corpus` (encoded with `vocab`) as `cfg` says; write nothing unless
    `out_dir` is given, where checkpoints go (and whence `resume` continues one).

    `init`: an (input, output) pair of tables to start from instead of word2vec.c's initialisation.
    `callbacks`: objects with any of on_train_begin/on_epoch_begin/on_epoch_end/on_train_end/on_round
    (called with a `loop.TrainState`, on the main rank only). Under torchrun every rank calls this."""
    device = resolve_device(cfg.train.device)
    release_large_blocks_on_free()
    cfg = settle(cfg, device)
    if corpus.num_tokens == 0:
        raise TrainingError("no in-vocabulary tokens to train on")
    if cfg.model.loss == "hs" and len(vocab) < 2:
        raise TrainingError(f"model.loss: hs needs at least 2 words in the vocabulary, got {len(vocab)}")
    if resume and out_dir is None:
        raise TrainingError("resume needs the folder of the checkpoint (out_dir)")
    with session(cfg, device) as (ctx, device):
        return _train_tables(cfg, vocab, corpus, init, callbacks, quiet or not ctx.is_main, out_dir, resume,
                             ctx, device)


def _train_tables(cfg, vocab, corpus, init, callbacks, quiet, out_dir, resume, ctx, device) -> TrainResult:
    workers = cfg.train.workers
    threads = max(1, (cfg.train.threads or ctx.default_threads()) // workers)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.train.seed)
    # Worker 0's generator also initialises the tables, so one worker is exactly the sequential
    # run; further workers, and the workers of further ranks, get their own seeded streams.
    first = ctx.rank * workers
    generators = [torch.Generator(device=device).manual_seed(cfg.train.seed + 7919 * i)
                  for i in range(first, first + workers)]
    counts = torch.from_numpy(vocab.counts)
    keep_prob = keep_probabilities(counts, cfg.model.sample)
    sampler = build_sampler(cfg.model, counts, keep_prob, cfg.train.batch_size)
    head = build_head(cfg.model, vocab.counts, logit_correction(cfg.model, sampler))
    model = build_model(cfg, len(vocab), generators[0], head).to(device)
    if init is not None:
        _load_init(model, init)
    sampler, keep_prob = sampler.to(device), keep_prob.to(device)
    backend = fused.resolve_backend(cfg.train.backend, device, fused.torch_only_reason(model, sampler, cfg.model))
    if backend == "fused" and device.type == "cpu":
        # The kernel runs `threads` threads of its own; torch's idle OpenMP threads, spinning
        # beside them after each example-making op, cost 3x in wall time (measured).
        torch.set_num_threads(1)
    bounds = chunk_bounds(corpus, cfg.train.chunk_tokens)

    ckpt, fingerprint = None, None
    start_epoch, start_chunk, metrics, partial = 0, 0, [], None
    if out_dir is not None:
        fingerprint = run_fingerprint(cfg, vocab.fingerprint(),
                                      corpus_fingerprint(cfg.corpus.paths, cfg.corpus.lowercase,
                                                         cfg.corpus.max_sentence_length, vocab), backend)
        fingerprint.update(ctx.fingerprint(cfg))
        if ctx.is_main:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        ckpt = Checkpointer(Path(out_dir) / CHECKPOINT_NAME, cfg.train)
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

    metrics = run_epochs(cfg, model, sampler, keep_prob, corpus, bounds, generators, device, fingerprint,
                         ckpt, start_epoch, start_chunk, metrics, partial, quiet, ctx, tsync,
                         callbacks if ctx.is_main else (), vocab, backend, threads)
    extra = {}
    if ctx.enabled:
        checksums = ctx.table_checksums(tables)
        if len(set(checksums)) > 1:
            log.warning("the ranks' tables differ after the final sync: %s", checksums)
        extra = {"world_size": ctx.world_size, "backend": ctx.backend, "sync": d.sync,
                 "merge": d.merge, "sync_every_words": d.sync_every_words,
                 "rounds_between_syncs": rounds_between, **ctx.sync_stats,
                 "table_checksums": checksums}
    return TrainResult(model.in_embed.weight.detach().to("cpu"), model.out_embed.weight.detach().to("cpu"),
                       metrics, vocab, extra)


def _load_init(model, init) -> None:
    """Copy the (input, output) pair `init` into the model's tables; their shapes must match."""
    pairs = (("input", model.in_embed.weight), ("output", model.out_embed.weight))
    if len(init) != 2:
        raise TrainingError("init must be an (input, output) pair of tables")
    with torch.no_grad():
        for (name, table), given in zip(pairs, init):
            given = torch.as_tensor(np.asarray(given) if not torch.is_tensor(given) else given)
            if tuple(given.shape) != tuple(table.shape):
                raise TrainingError(f"init: the {name} table is {tuple(given.shape)}, the model's is "
                                    f"{tuple(table.shape)} (vocabulary size x model.dim)")
            table.copy_(given.to(table.device, torch.float32))
