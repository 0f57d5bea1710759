"""The run as a curve: running loss, learning rate and words/s at regular points of the words processed."""
from __future__ import annotations

# A point every 1% of the run's words, so a curve has about 100 points whatever the corpus size.
POINTS_PER_RUN = 100


class Curve:
    """A training callback (see `w2v.core.train_tables`) that records a point whenever another
    1/`points` of the run's words has been trained, and once more at the end of training.

    A point is taken at the end of a round of chunks (`on_round`), so a run of fewer rounds than
    `points` gets one point per round. Each point holds `words` (in-vocabulary words trained so
    far, every epoch counted, strictly increasing), `epoch` (1-based), `loss` (the running mean
    loss of that epoch so far), `lr` (the learning rate then), `seconds` (since training began)
    and `words_per_sec` (over the words since the previous point). After `--resume` the curve
    starts at the resumed position."""

    def __init__(self, points: int = POINTS_PER_RUN):
        if points < 1:
            raise ValueError(f"points must be >= 1, got {points}")
        self.points_per_run = points
        self.points: list[dict] = []
        self._next = 0.0                  # words_done at which the next point is due
        self._last_words: int | None = None
        self._last_seconds = 0.0

    def on_train_begin(self, state) -> None:
        self.points = []
        self._last_words, self._last_seconds = int(state.words_done), float(state.seconds)
        self._next = self._last_words + self._step(state)

    def _step(self, state) -> float:
        return max(1.0, state.words_total / self.points_per_run)

    def on_round(self, state) -> None:
        if self._last_words is None:  # no on_train_begin: start from this round
            self._last_words, self._last_seconds = 0, 0.0
            self._next = self._step(state)
        if state.words_done >= self._next:
            self._record(state)
            # The next mark after the words done, so a long round does not leave a burst of marks due.
            step = self._step(state)
            self._next = (state.words_done // step + 1) * step

    def on_train_end(self, state) -> None:
        self._record(state)

    def _record(self, state) -> None:
        words, seconds = int(state.words_done), float(state.seconds)
        if self._last_words is not None and words <= self._last_words:
            return  # nothing trained since the last point: keep the word counts strictly increasing
        elapsed = seconds - self._last_seconds
        rate = (words - (self._last_words or 0)) / elapsed if elapsed > 0 else None
        self.points.append({"words": words, "epoch": int(state.epoch) + 1, "loss": float(state.loss),
                            "lr": float(state.lr), "seconds": round(seconds, 3),
                            "words_per_sec": rate})
        self._last_words, self._last_seconds = words, seconds
