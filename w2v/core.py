"""The training core: a config, a vocabulary and an encoded corpus in, the trained tables out (no files)."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .backends import build_backend
from .batches import chunk_bounds
from .checkpoint import CHECKPOINT_NAME, Checkpointer, describe_position, load_checkpoint, run_fingerprint
from .config import Config, chunk_tokens_for
from .corpus import EncodedCorpus, corpus_fingerprint
from .distributed import TableSync, session
from .errors import TrainingError
from .heads import build_head
from .loop import Chunks, Positions, run_epochs
from .memory import release_large_blocks_on_free
from .mode import Mode, shared_negatives
from .model import CBOW, SkipGram, SkipGramSharedNegatives
from .pretrained import init_from_file
from .progress import Progress, TrainState
from .samplers import build_sampler, logit_correction
from .scheduling import scheduling_for
from .subsample import keep_probabilities
from .subwords import SubwordIndex
from .vocab import Vocab

log = logging.getLogger("w2v")


@dataclass
class TrainResult:
    """What a training run produced. `input` [V, D] (with subwords [V + buckets, D]: the word rows,
    then the n-gram buckets) and `output` [rows, D] are float32 CPU tensors (the same storage as the
    trained tables on a CPU run); `vectors` [V, D] are the vocabulary's word vectors (`input` itself
    for a word model; with subwords each word's mean over its rows of `subwords`, the SubwordIndex,
    else None); `metrics` are the per-epoch rows of metrics.json; `distributed` describes the
    ranks' syncs under torchrun (empty otherwise)."""
    input: torch.Tensor
    output: torch.Tensor
    metrics: list
    vocab: Vocab
    distributed: dict = dataclasses.field(default_factory=dict)
    vectors: torch.Tensor | None = None
    subwords: SubwordIndex | None = None

    def __post_init__(self):
        if self.vectors is None:
            self.vectors = self.input


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"train.device is '{name}' but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(name)


def settle(cfg: Config, device: torch.device) -> Config:
    """`cfg` with its 'auto' values resolved for `device`, so that the log, the checkpoint
    fingerprint and the chunking agree."""
    return dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, chunk_tokens=chunk_tokens_for(cfg.train, device.type)),
        model=dataclasses.replace(cfg.model, shared_negatives=shared_negatives(cfg.model, device.type)))


def build_model(cfg: Config, vocab_size: int, generator: torch.Generator, head=None,
                subwords: SubwordIndex | None = None):
    """The model `cfg.model` asks for; `head` is its output layer (default: negative sampling);
    `subwords` the vocabulary's n-gram rows (see `subword_index`), None for a word model."""
    mode = Mode.of(cfg.model)
    if mode is Mode.CBOW:
        return CBOW(vocab_size, cfg.model.dim, generator, mean=cfg.model.cbow_mean, head=head, subwords=subwords)
    cls = SkipGramSharedNegatives if mode is Mode.SG_WINDOW else SkipGram
    return cls(vocab_size, cfg.model.dim, generator, head, subwords=subwords)


def subword_index(m, words: list[str]) -> SubwordIndex | None:
    """The vocabulary's n-gram rows for `model.subwords` (a ModelConfig), or None: a word model, or
    model.maxn 0 (no n-grams: exactly the word model, word2vec.c's initialisation included)."""
    if not m.subwords or m.maxn == 0:
        return None
    if len(words) + m.buckets > 2**31 - 1:
        raise TrainingError(f"model.buckets: {len(words):,} words + {m.buckets:,} buckets exceed the 2**31 - 1 "
                            f"input rows that 32-bit ids address; lower model.buckets")
    return SubwordIndex(words, m.minn, m.maxn, m.buckets)


def train_tables(cfg: Config, vocab: Vocab, corpus: EncodedCorpus, *, init=None, callbacks=(), quiet: bool = False,
                 out_dir=None, resume: bool = False, lock=None) -> TrainResult:
    """Train the tables on `corpus` (encoded with `vocab`) as `cfg` says; write nothing unless
    `out_dir` is given, where checkpoints go (and whence `resume` continues one).

    `init`: an (input, output) pair of tables to start from instead of word2vec.c's initialisation
    (without it, `train.init_vectors` starts the rows of the words its file has).
    `lock`: per input row, the factor its updates are scaled by ([V]; 0 keeps a row fixed); without
    it, `train.init_lockf` locks the rows `train.init_vectors` set.
    `callbacks`: objects with any of on_train_begin/on_epoch_begin/on_epoch_end/on_train_end/on_round
    (called with a `progress.TrainState`, on the main rank only). Under torchrun every rank calls this."""
    device = resolve_device(cfg.train.device)
    release_large_blocks_on_free()
    cfg = settle(cfg, device)
    if corpus.num_tokens == 0:
        raise TrainingError("no in-vocabulary tokens to train on")
    if not _has_a_window(corpus):
        raise TrainingError("nothing to train on: every sentence has fewer than two in-vocabulary words, and "
                            "word2vec learns from words that stand next to each other in a sentence (see "
                            "corpus.max_sentence_length, vocab.min_count and vocab.max_vocab_size)")
    if cfg.model.loss == "hs" and len(vocab) < 2:
        raise TrainingError(f"model.loss: hs needs at least 2 words in the vocabulary, got {len(vocab)}")
    if resume and out_dir is None:
        raise TrainingError("resume needs the folder of the checkpoint (out_dir)")
    with session(cfg, device) as (ctx, device):
        return _train_tables(cfg, vocab, corpus, init, callbacks, quiet or not ctx.is_main, out_dir, resume,
                             ctx, device, lock)


def _train_tables(cfg, vocab, corpus, init, callbacks, quiet, out_dir, resume, ctx, device, lock) -> TrainResult:
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
    subwords = subword_index(cfg.model, vocab.words)
    model = build_model(cfg, len(vocab), generators[0], head, subwords).to(device)
    if init is not None:
        _load_init(model, init)
    elif cfg.train.init_vectors:
        file_lock = init_from_file(model, vocab.words, cfg)
        lock = file_lock if lock is None else lock
    model.set_lock(lock)
    sampler, keep_prob = sampler.to(device), keep_prob.to(device)
    backend = build_backend(cfg.train, device, model, sampler, threads)
    torch.set_num_threads(backend.torch_threads)

    ckpt, fingerprint = None, None
    start = {"epoch": 0, "chunk": 0, "metrics": [], "partial": None}
    if out_dir is not None:
        fingerprint = run_fingerprint(cfg, vocab.fingerprint(),
                                      corpus_fingerprint(cfg.corpus.paths, cfg.corpus.lowercase,
                                                         cfg.corpus.max_sentence_length, vocab), backend.name)
        fingerprint.update(ctx.fingerprint(cfg))
        # The cache entry trained on: `--resume --accept-changed-corpus` compares its content (touched.py).
        fingerprint["corpus_entry"] = Path(corpus.ids.path).stem
        if ctx.is_main:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        ckpt = Checkpointer(Path(out_dir) / CHECKPOINT_NAME, cfg.train, in_place=backend.all_finite)
    if resume:
        start = _resume(ckpt, fingerprint, model, generators, ctx, first)
    tables = [model.in_embed.weight.data, model.out_embed.weight.data]
    ctx.broadcast_tables(tables)
    d = cfg.distributed  # a round trains one chunk per worker per rank
    rounds_between = max(1, round(d.sync_every_words / (cfg.train.chunk_tokens * workers)))
    tsync = TableSync(ctx, tables, d.sync, d.merge, rounds_between, model.input_rows) if ctx.enabled else None

    chunks = Chunks(cfg, corpus, chunk_bounds(corpus, cfg.train.chunk_tokens), model, backend, sampler, keep_prob,
                    device, tsync)
    positions = Positions(ckpt, ctx, model, generators, fingerprint, cfg, chunks.n, start["metrics"])
    state = TrainState(start["metrics"], start["epoch"] * chunks.words_per_epoch + chunks.words_before(start["chunk"]),
                       chunks.words_total, start["epoch"], vocab, model)
    progress = Progress(state, callbacks if ctx.is_main else (), quiet)
    metrics = run_epochs(cfg, chunks, scheduling_for(chunks, generators, ctx, backend), positions, progress, ctx,
                         tsync, device, start["epoch"], start["chunk"], start["partial"])
    extra = {}
    if ctx.enabled:
        checksums = ctx.table_checksums(tables)
        if len(set(checksums)) > 1:
            log.warning("the ranks' tables differ after the final sync: %s", checksums)
        extra = {"world_size": ctx.world_size, "backend": ctx.backend, "sync": d.sync,
                 "merge": d.merge, "sync_every_words": d.sync_every_words,
                 "rounds_between_syncs": rounds_between, **ctx.sync_stats,
                 "table_checksums": checksums}
    vectors = None if subwords is None else model.word_vectors().to("cpu")
    return TrainResult(model.in_embed.weight.detach().to("cpu"), model.out_embed.weight.detach().to("cpu"),
                       metrics, vocab, extra, vectors, subwords)


def _resume(ckpt: Checkpointer, fingerprint: dict, model, generators: list, ctx, first: int) -> dict:
    """Rank 0 reads the checkpoint into the model; every rank gets the position and its own
    generators from it (the tables reach the others by broadcast). Returns where to start."""
    full = ctx.in_turn(lambda: load_checkpoint(ckpt.path, fingerprint), ctx.is_main)
    state = ctx.from_main(lambda: {k: v for k, v in full.items() if k != "model"})
    if ctx.is_main:
        model.load_state_dict(full["model"])
    for g, g_state in zip(generators, state["generators"][first:first + len(generators)]):
        g.set_state(g_state)
    partials = state.get("partial")  # under torchrun: one per rank, in rank order
    ckpt.resumed(state)
    log.info("resumed from %s (%s)", ckpt.path, describe_position(state))
    return {"epoch": state["epoch"], "chunk": state["chunk"], "metrics": state["metrics"],
            "partial": partials[ctx.rank] if isinstance(partials, list) else partials}


def _has_a_window(corpus: EncodedCorpus, block: int = 1 << 20) -> bool:
    """Whether some sentence has two in-vocabulary words (read a block of offsets at a time)."""
    n = len(corpus.offsets) - 1
    for a in range(0, n, block):
        if (np.diff(corpus.offsets[a:min(a + block, n) + 1]) >= 2).any():
            return True
    return False


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
                                    f"{tuple(table.shape)} (vocabulary size, plus model.buckets for the "
                                    f"input table of a subword model, x model.dim)")
            table.copy_(given.to(table.device, torch.float32))
