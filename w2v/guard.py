"""Numerical guard: NaN or Inf in the loss or the tables stops the run with the likely cause."""
from __future__ import annotations

import torch

from .errors import TrainingError


def nonfinite_tensors(state: dict, in_place=None) -> list[str]:
    """Names of the floating-point tensors in `state` (a state_dict) that hold NaN or Inf.
    `in_place(t)`, if given, checks a tensor where it lies (the C kernel's check: True, False, or
    None where it cannot)."""
    return [name for name, t in state.items()
            if torch.is_tensor(t) and t.is_floating_point() and not _all_finite(t, in_place)]


def _all_finite(t: torch.Tensor, in_place=None, block: int = 1 << 16) -> bool:
    """Read in place by `in_place` where it can (the C kernel: no temporaries, no torch code paged
    in at the epoch end's peak); else a block's float64 sum, which is finite exactly when all its
    elements are (NaN and Inf propagate; 2^16 float32 values cannot overflow it). isfinite over a
    whole table made table-sized temporaries: 53 MB more peak memory on the benchmark's tables."""
    found = in_place(t) if in_place is not None else None
    if found is not None:
        return found
    flat = t.reshape(-1)  # a view for the (contiguous) tables
    return all(bool(torch.isfinite(flat[i:i + block].sum(dtype=torch.float64)))
               for i in range(0, flat.numel(), block))


def diverged(what: str, epoch: int, train_cfg, checkpoint_note: str) -> TrainingError:
    """The error for a run whose numbers blew up: SGD on word2vec diverges when the step is too
    large: train.alpha too high, or (batched torch step) too many summed updates in a batch. The
    fused kernels update per example, so there only train.alpha counts."""
    return TrainingError(f"{what} in epoch {epoch}: the learning rate (train.alpha={train_cfg.alpha}) is "
                         f"probably too high (with train.backend torch: for train.batch_size="
                         f"{train_cfg.batch_size}); lower it and train again. {checkpoint_note}")
