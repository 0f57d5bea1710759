"""The Curve callback against the training-state contract (words_done, words_total, epoch, loss, lr, seconds)."""
from types import SimpleNamespace

import pytest

from w2v.curve import Curve


def _feed(curve, rounds, words_total, epochs=1):
    """Drive the callback like the trainer: rounds of `words_total / rounds` words, one second each."""
    per_round = words_total // rounds
    state = SimpleNamespace(epoch=0, words_done=0, words_total=words_total, loss=5.0, lr=0.025, seconds=0.0)
    curve.on_train_begin(state)
    for r in range(1, rounds + 1):
        state.words_done = r * per_round
        state.epoch = min(epochs - 1, (r - 1) * epochs // rounds)
        state.loss = 5.0 / r
        state.lr = 0.025 * (1 - state.words_done / words_total)
        state.seconds = float(r)
        curve.on_round(state)
    curve.on_train_end(state)
    return curve.points, per_round


def test_one_point_per_percent_when_rounds_are_finer():
    points, per_round = _feed(Curve(), rounds=1000, words_total=1_000_000)
    # Every 1% (10,000 words = 10 rounds): 100 points, the last at the end of training.
    assert len(points) == 100
    assert [p["words"] for p in points] == [10_000 * (i + 1) for i in range(100)]
    # Ten one-second rounds between two points: the rate over the interval, not since the start.
    assert all(p["words_per_sec"] == pytest.approx(10 * per_round / 10) for p in points)
    assert points[0]["loss"] == pytest.approx(5.0 / 10)
    assert points[-1]["lr"] == pytest.approx(0.0)


def test_coarse_rounds_give_a_point_each_and_words_strictly_increase():
    points, _ = _feed(Curve(), rounds=60, words_total=600_000, epochs=3)
    assert len(points) == 60  # each round covers more than 1%
    words = [p["words"] for p in points]
    assert all(b > a for a, b in zip(words, words[1:]))
    assert [p["epoch"] for p in points][::20] == [1, 2, 3]


def test_end_of_training_adds_the_last_words_once():
    curve = Curve(points=4)
    state = SimpleNamespace(epoch=0, words_done=0, words_total=1000, loss=1.0, lr=0.01, seconds=0.0)
    curve.on_train_begin(state)
    for done in (100, 260, 300, 990):
        state.words_done, state.seconds = done, done / 100
        curve.on_round(state)
    assert [p["words"] for p in curve.points] == [260, 990]  # due at 250, then at the next mark past 260: 500
    curve.on_train_end(state)  # nothing new since 990
    assert [p["words"] for p in curve.points] == [260, 990]
    state.words_done = 1000
    curve.on_train_end(state)
    assert [p["words"] for p in curve.points] == [260, 990, 1000]


def test_resumed_run_starts_at_the_resumed_position():
    curve = Curve(points=10)
    state = SimpleNamespace(epoch=1, words_done=500, words_total=1000, loss=2.0, lr=0.01, seconds=40.0)
    curve.on_train_begin(state)
    state.words_done, state.seconds = 560, 41.0
    curve.on_round(state)
    assert curve.points == []  # next mark is 600, a tenth of the run after the resumed position
    state.words_done, state.seconds = 620, 42.0
    curve.on_round(state)
    assert curve.points[0]["words"] == 620 and curve.points[0]["epoch"] == 2
    assert curve.points[0]["words_per_sec"] == pytest.approx(120 / 2.0)


def test_points_must_be_positive():
    with pytest.raises(ValueError):
        Curve(points=0)
