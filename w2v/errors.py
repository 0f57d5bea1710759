"""The error a run stops with when it cannot go on; the CLI prints its message and exits 2."""


class TrainingError(RuntimeError):
    """Training cannot go on (the loss became NaN, the tables do not fit, ...); the message says
    why and what to change."""
