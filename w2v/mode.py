"""The training mode, decided once from the config: per-pair skip-gram, window skip-gram or CBOW."""
from __future__ import annotations

import enum


class Mode(enum.Enum):
    """What one training example is. The values are the C kernel's mode names."""

    SG_PAIR = "sg_pair"      # skip-gram, one example per (centre, context) pair, its own noise words
    SG_WINDOW = "sg_shared"  # skip-gram, one example per centre word: its pairs share K noise words
    CBOW = "cbow"            # one example per centre word, predicted from its combined context

    @classmethod
    def of(cls, model_cfg, device_type: str = "cpu") -> Mode:
        """The mode `model.arch` and `model.shared_negatives` (a ModelConfig) ask for on a device."""
        if model_cfg.arch == "cbow":
            return cls.CBOW
        return cls.SG_WINDOW if shared_negatives(model_cfg, device_type) else cls.SG_PAIR

    @property
    def windowed(self) -> bool:
        """One example per centre word holding its whole window (contexts with a mask, or a span)."""
        return self is not Mode.SG_PAIR


def shared_negatives(model_cfg, device_type: str) -> bool:
    """`model.shared_negatives` of a ModelConfig for a device. 'auto' shares a window's noise words
    on a CPU (2-2.6x the words/s of per-pair draws, the same quality) and draws per pair on a GPU
    with negative sampling, where the Triton kernel ran per pair at 1.8-2.2x the words/s of the
    window form at the same quality (BENCHMARKS.md); hierarchical softmax and the sampled losses
    keep windows (a GPU launch of hs holds at most 64 examples, so pairs would mean more launches)."""
    value = model_cfg.shared_negatives
    if value == "auto":
        return not (device_type == "cuda" and model_cfg.loss == "ns")
    return bool(value)
