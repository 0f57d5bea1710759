"""Data-parallel training over torch.distributed (started by torchrun): ranks, shards, table averaging.

Each rank trains its own chunks of the corpus on its own copy of the two tables, and the copies are
merged every `distributed.sync_every_words` words each rank trains (periodic model merging, as
Intel's pWord2Vec does over MPI). Outside torchrun (no WORLD_SIZE > 1 in the environment) everything here is a no-op,
so a single process runs exactly as before."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Iterator

import torch
import torch.distributed as dist

log = logging.getLogger("w2v")


class DistributedError(RuntimeError):
    """The process group cannot be set up, or a rank failed where all ranks must agree."""


def env_rank() -> int:
    """This process's global rank as torchrun sets it (0 outside torchrun); readable before init."""
    return int(os.environ.get("RANK", "0") or 0)


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


@dataclass
class Context:
    """Where this process sits among the ranks; world_size 1 means no process group at all."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = ""
    sync_stats: dict = field(default_factory=lambda: {"syncs": 0, "seconds": 0.0, "rows": 0})

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def default_threads(self) -> int:
        """`train.threads: 0` means all cores, shared among the ranks of this node."""
        return max(1, (os.cpu_count() or 1) // self.local_world_size)

    def fingerprint(self, cfg) -> dict:
        """What a resume must match besides the single-process settings: the world size, and how the
        ranks were kept in step (it changes the trajectory)."""
        fp = {"world_size": self.world_size}
        if self.enabled:
            d = cfg.distributed
            fp.update(sync=d.sync, merge=d.merge, sync_every_words=d.sync_every_words)
        return fp

    def chunks_of_round(self, first: int, per_rank: int, n_chunks: int) -> list[int]:
        """This rank's chunks of the round starting at chunk `first`: round-robin blocks of `per_rank`
        (one per Hogwild worker). Every rank sees the whole corpus spread over the epoch, so the
        replicas that are averaged have seen the same kind of text, and a chunk's position in the
        corpus still measures global progress for the learning rate."""
        lo = first + self.rank * per_rank
        return list(range(lo, min(lo + per_rank, n_chunks)))

    # --- agreement: run something on some ranks, and fail on every rank if it failed on one ---

    def in_turn(self, fn: Callable, runs_here: bool):
        """Run `fn` on the ranks where `runs_here`, then wait for all; if it raised anywhere, raise
        that error on every rank (so no rank waits forever on a collective the failed one never
        reaches). Returns fn's result, or None where it did not run."""
        result, error = None, None
        if runs_here:
            try:
                result = fn()
            except Exception as e:  # re-raised below, on every rank
                error = e
        if not self.enabled:
            if error is not None:
                raise error
            return result
        errors = [None] * self.world_size
        dist.all_gather_object(errors, error)
        failed = [(r, e) for r, e in enumerate(errors) if e is not None]
        if failed:
            if error is not None:
                raise error
            raise failed[0][1]
        return result

    def from_main(self, fn: Callable):
        """Run `fn` on rank 0 only and hand its (picklable) result to every rank."""
        value = self.in_turn(fn, self.is_main)
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def encode_once(self, encode: Callable):
        """Every rank needs the encoded corpus, but only one process per cache file may write it:
        rank 0 encodes first; then the first rank of each other node (a no-op where the cache is on
        a shared filesystem, since the file now exists); then everyone else opens the cache."""
        corpus = self.in_turn(encode, self.is_main)
        corpus = self.in_turn(encode, self.local_rank == 0 and not self.is_main) or corpus
        return self.in_turn(encode, corpus is None) or corpus

    # --- collectives on tensors ---

    def any_rank(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if it is True on any (e.g. a Ctrl-C that reached only some ranks)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)], dtype=torch.int32, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sum_over_ranks(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum of a few numbers over the ranks (epoch loss, words, examples)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def broadcast_tables(self, tables: list[torch.Tensor]) -> None:
        """Rank 0's tables everywhere: the replicas start identical (initialisation or resume)."""
        if self.enabled:
            for t in tables:
                dist.broadcast(t, src=0)

    def gather_objects(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def table_checksums(self, tables: list[torch.Tensor]) -> list[str]:
        """Each rank's hash of its own tables, gathered: after the final sync they must all agree."""
        h = hashlib.sha256()
        for t in tables:
            h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
        return self.gather_objects(h.hexdigest()[:16])


def _backend(requested: str, device: torch.device) -> str:
    backend = requested if requested != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise DistributedError("distributed.backend is 'nccl' but the training device is the CPU; NCCL "
                               "works on CUDA tensors only: use 'gloo' (or 'auto') or train.device: cuda")
    return backend


@contextlib.contextmanager
def session(cfg, device: torch.device) -> Iterator[tuple[Context, torch.device]]:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) and leave it at the end. A CUDA run takes GPU LOCAL_RANK of its node.
    Inside a session, entering another one yields the same context and device."""
    if _active is not None:  # already inside a session (the CLI holds one around vocabulary and training)
        yield _active
        return
    world = env_world_size()
    if world <= 1:
        yield Context(), device
        return
    rank, local_rank = env_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if device.type == "cuda":
        if cfg.train.device.startswith("cuda:"):
            raise DistributedError(f"train.device is '{cfg.train.device}', but under torchrun each rank "
                                   "takes GPU LOCAL_RANK of its node; use 'cuda' or 'auto'")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = _backend(cfg.distributed.backend, device)
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise DistributedError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: start the ranks "
                               "with torchrun (see README, 'Multi-GPU and multi-node')")
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(minutes=30))
    ctx = Context(rank, world, local_rank, local_world, backend)
    log.info("rank %d of %d (local rank %d), backend %s, device %s", rank, world, local_rank, backend, device)
    _set_active((ctx, device))
    try:
        yield ctx, device
    finally:
        _set_active(None)
        dist.destroy_process_group()


_active: tuple[Context, torch.device] | None = None


def _set_active(value: tuple[Context, torch.device] | None) -> None:
    global _active
    _active = value


class TableSync:
    """Keeps the ranks' tables in step: every `rounds_between` rounds (a round is one chunk per worker
    per rank), each table is merged over the ranks.

    merge `sum` (default): the table as of the last sync plus every rank's change since then, so each
    update counts once, as with word2vec.c's Hogwild threads. merge `average`: the mean of the
    replicas (pWord2Vec): a change made by one rank counts 1/N, as if its learning rate were alpha/N.

    sync `all` reduces both whole tables: 2·V·D floats per sync, whatever was trained. sync `touched`
    first agrees on the rows any rank changed since the last sync (an all_reduce of one byte per
    word), then reduces only those rows. A row no rank touched is the same on every rank already, so
    both give the same tables (bit for bit with `sum`, and with `average` when N is a power of two;
    otherwise up to the rounding of N·x/N); `touched` sends less when a sync touches few rows."""

    def __init__(self, ctx: Context, tables: list[torch.Tensor], mode: str, merge: str, rounds_between: int,
                 input_rows=None):
        self.ctx, self.tables, self.rounds_between = ctx, tables, rounds_between
        # word ids -> the input rows they update (a subword model's n-gram rows too); None: the ids
        self.input_rows = input_rows
        self.base = [t.clone() for t in tables] if merge == "sum" else None
        self.touched = [torch.zeros(t.shape[0], dtype=torch.uint8, device=t.device) for t in tables] \
            if mode == "touched" else None
        self.rounds = 0

    def note(self, ex) -> None:
        """Mark the rows a chunk's examples (`batches.Examples`) will update: input rows of the
        context words, output rows of the centre and noise words. Window padding marks a few extra
        rows, which is harmless (see the class doc)."""
        if self.touched is not None:
            in_mark, out_mark = self.touched
            ids = ex.input_ids()
            in_mark[self.input_rows(ids) if self.input_rows is not None else ids] = 1
            out_mark[ex.targets] = 1
            out_mark[ex.negatives.reshape(-1)] = 1

    def after_round(self) -> bool:
        """Sync when due; returns whether it did. Ranks agree on a stop or a checkpoint only right
        after a sync, where their tables are identical (so one copy in the checkpoint is enough)."""
        self.rounds += 1
        if self.rounds < self.rounds_between:
            return False
        self.sync()
        return True

    def flush(self) -> None:
        """Sync if anything was trained since the last sync (epoch end: the replicas leave identical)."""
        if self.rounds:
            self.sync()

    @torch.no_grad()
    def sync(self) -> None:
        t0, rows_sent = time.perf_counter(), 0
        for i, table in enumerate(self.tables):
            base = self.base[i] if self.base is not None else None
            if self.touched is None:
                self._merge(table, base)
                if base is not None:
                    base.copy_(table)
                rows_sent += table.shape[0]
                continue
            mark = self.touched[i]
            dist.all_reduce(mark, op=dist.ReduceOp.MAX)
            rows = mark.nonzero().squeeze(1)
            values = table.index_select(0, rows)
            self._merge(values, base.index_select(0, rows) if base is not None else None)
            table.index_copy_(0, rows, values)
            if base is not None:
                base.index_copy_(0, rows, values)
            mark.zero_()
            rows_sent += rows.shape[0]
        self.rounds = 0
        stats = self.ctx.sync_stats
        stats["syncs"] += 1
        stats["rows"] += rows_sent
        stats["seconds"] += time.perf_counter() - t0

    def _merge(self, values: torch.Tensor, base: torch.Tensor | None) -> None:
        """In place over the ranks: base + the sum of the changes (`sum`), or the mean (`average`)."""
        if base is None:
            dist.all_reduce(values)
            values.div_(self.ctx.world_size)
        else:
            values.sub_(base)
            dist.all_reduce(values)
            values.add_(base)
