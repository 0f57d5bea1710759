"""Who trains the chunks of a round: this rank in turn, with the next chunk's examples made meanwhile,
or Hogwild worker threads. A round is one chunk per worker per rank; under torchrun each rank takes
its own chunks of it (`Context.chunks_of_round`)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


class InTurn:
    """This rank's chunks of each round, one after another, on worker 0's random stream.
    `chunks` makes and trains a chunk (loop.Chunks); `generators` has one stream per worker."""

    def __init__(self, chunks, generators: list, ctx):
        self.chunks, self.generators, self.ctx = chunks, generators, ctx

    @property
    def chunks_per_round(self) -> int:
        return len(self.generators) * self.ctx.world_size

    def round(self, epoch: int, first: int) -> list:
        """Train this rank's chunks of the round that starts at chunk `first`; their ChunkResults."""
        own = self.ctx.chunks_of_round(first, len(self.generators), self.chunks.n)
        return [self.chunks.train(epoch, c, self.generators[0]) for c in own]

    def rng_states(self) -> list | None:
        """The generator states a checkpoint before the next round must hold; None: as they are now."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


class Prefetching(InTurn):
    """One process, one worker, a backend that releases the GIL while it trains (the C kernel):
    one thread makes chunk c+1's examples while chunk c trains (+30% words/s for CBOW, +8%
    skip-gram on 2 cores). The draws stay in chunk order, so the run is the same as in turn."""

    def __enter__(self):
        self._maker = ThreadPoolExecutor(max_workers=1)
        self._ahead, self._rng_after = None, None
        return self

    def __exit__(self, *exc) -> None:
        self._maker.shutdown()

    def round(self, epoch: int, first: int) -> list:
        g, n = self.generators[0], self.chunks.n
        ex = self._ahead.result() if self._ahead is not None else self.chunks.examples(first, g)
        self._rng_after = [g.get_state()]   # before chunk first+1's draws: what a checkpoint holds
        self._ahead = self._maker.submit(self.chunks.examples, first + 1, g) if first + 1 < n else None
        return [self.chunks.train(epoch, first, g, ex)]

    def rng_states(self) -> list | None:
        return self._rng_after


class Hogwild(InTurn):
    """`train.workers` threads train the chunks of a round at once on the shared tables, without
    locks (as word2vec.c's pthreads), each with its own random stream."""

    def __enter__(self):
        self._pool = ThreadPoolExecutor(max_workers=len(self.generators))
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown()

    def round(self, epoch: int, first: int) -> list:
        own = self.ctx.chunks_of_round(first, len(self.generators), self.chunks.n)
        return list(self._pool.map(lambda c, g: self.chunks.train(epoch, c, g), own, self.generators))


def scheduling_for(chunks, generators: list, ctx, backend) -> InTurn:
    """Hogwild with more than one worker; else prefetching where the backend lets Python work
    meanwhile and no other rank waits on this one's rounds; else in turn."""
    if len(generators) > 1:
        return Hogwild(chunks, generators, ctx)
    if backend.overlaps_python and not ctx.enabled:
        return Prefetching(chunks, generators, ctx)
    return InTurn(chunks, generators, ctx)
