"""The training mode, decided once from the config: per-pair skip-gram, window skip-gram or CBOW."""
from __future__ import annotations

import enum


class Mode(enum.Enum):
    """What one training example is. The values are the C kernel's mode names."""

    SG_PAIR = "sg_pair"      # skip-gram, one example per (centre, context) pair, its own noise words
    SG_WINDOW = "sg_shared"  # skip-gram, one example per centre word: its pairs share K noise words
    CBOW = "cbow"            # one example per centre word, predicted from its combined context

    @classmethod
    def of(cls, model_cfg) -> Mode:
        """The mode `model.arch` and `model.shared_negatives` (a ModelConfig) ask for."""
        if model_cfg.arch == "cbow":
            return cls.CBOW
        return cls.SG_WINDOW if model_cfg.shared_negatives else cls.SG_PAIR

    @property
    def windowed(self) -> bool:
        """One example per centre word holding its whole window (contexts with a mask, or a span)."""
        return self is not Mode.SG_PAIR
