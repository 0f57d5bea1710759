"""What a run reports while it trains: the progress bar, and the callbacks with the state they see."""
from __future__ import annotations

import time

import numpy as np

from . import logs


class TrainState:
    """What callbacks see: `epoch` (0-based), `metrics` (rows so far), `words_done` and
    `words_total` (in-vocabulary words, all epochs), `loss` (running mean of this epoch), `lr`,
    `seconds` (since training began), `vocab`, and `vectors()`, the input table as numpy."""

    def __init__(self, metrics: list, words_done: int, words_total: int, epoch: int, vocab, model):
        self.metrics, self.words_done, self.words_total, self.epoch = metrics, words_done, words_total, epoch
        self.vocab = vocab
        self.loss, self.lr = 0.0, 0.0
        self._model, self._t0 = model, time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._t0

    def vectors(self, copy: bool = False) -> np.ndarray:
        """The word vectors [V, D] as numpy (the input table; with subwords each word's mean over its
        rows): on a CPU run of a word model a view of the live table unless `copy`."""
        v = self._model.word_vectors().detach().to("cpu").numpy()
        return v.copy() if copy else v


class Progress:
    """The bar (words of every rank, so rank 0's shows global words/s) and the callbacks: objects
    with any of on_train_begin, on_epoch_begin, on_epoch_end, on_train_end and on_round (after each
    round of chunks), each called with the TrainState; an object need not define them all."""

    def __init__(self, state: TrainState, callbacks=(), quiet: bool = False):
        self.state, self.callbacks = state, list(callbacks or ())
        self.bar = logs.progress(total=state.words_total, initial=state.words_done, disable=quiet, desc="train")

    def call(self, hook: str) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self.state)

    def epoch_begin(self, epoch: int) -> None:
        self.state.epoch = epoch
        self.call("on_epoch_begin")

    def round(self, words: int, words_done: int, epochs: int, loss: float, lr: float) -> None:
        """A round trained `words` more words, `words_done` in all so far."""
        s = self.state
        s.words_done, s.loss, s.lr = words_done, loss, lr
        self.bar.update(words)
        self.bar.set_postfix(epoch=f"{s.epoch + 1}/{epochs}", loss=f"{loss:.4f}", lr=f"{lr:.5f}", refresh=False)
        self.call("on_round")

    def epoch_end(self, words_done: int, loss: float, lr: float) -> None:
        s = self.state
        s.words_done, s.loss, s.lr = words_done, loss, lr
        self.call("on_epoch_end")

    def close(self) -> None:
        self.bar.close()
