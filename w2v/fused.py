"""Backend choice (`train.backend`) and the fused per-chunk update: C kernel on CPU, Triton on CUDA.

The `torch` backend is the batched PyTorch step of w2v/model.py, the reference. The `fused`
backend trains a whole chunk in one call, example by example with Hogwild threads as word2vec.c
does; each example equals the PyTorch step with batch size 1 (tested).
"""
from __future__ import annotations

import logging

import torch

from . import ckernel
from .batches import Examples, SpanExamples
from .config import ConfigError

log = logging.getLogger("w2v")


def _cuda_kernel():
    """The Triton kernel's `train_chunk` (same signature as this module's); ImportError if absent."""
    from . import triton_sgd
    if not triton_sgd.available():
        raise ImportError("the 'triton' package is not installed (PyTorch's CUDA builds ship it)")
    return triton_sgd.train_chunk


def torch_only_reason(model, sampler, model_cfg) -> str | None:
    """Why these settings need the batched PyTorch step, or None. The kernels take the noise ids
    of each example as given and score them plainly: an output layer with its own update
    (hierarchical softmax, a logQ correction) or a sampler that rescores per batch with the
    current vectors (DNS) is not theirs. The objects decide; the message names the config key."""
    if model.needs_torch_step:
        return "model.loss is 'hs'" if model_cfg.loss == "hs" else "model.logq_correction is on"
    if sampler.refines_batches:
        return f"model.sampler is {model_cfg.sampler!r}"
    return None


def unavailable_reason(device: torch.device) -> str | None:
    """None when the fused kernel can run on `device`, else why not (builds the C kernel on CPU)."""
    if device.type == "cpu":
        try:
            ckernel.load()
        except ckernel.KernelUnavailable as e:
            return str(e)
        return None
    if device.type == "cuda":
        try:
            _cuda_kernel()
        except ImportError as e:
            return f"the Triton kernel is not available ({e})"
        return None
    return f"no fused kernel for device type {device.type!r}"


def resolve_backend(name: str, device: torch.device, torch_only: str | None = None) -> str:
    """'torch' or 'fused' for `train.backend` = name; 'auto' takes fused where it is available.
    Logs the choice; 'fused' where it cannot run is a ConfigError naming the reason.
    `torch_only` is why the model settings need the PyTorch step (see `torch_only_reason`)."""
    if name == "torch":
        log.info("backend: torch (batched PyTorch step)")
        return "torch"
    reason = torch_only or unavailable_reason(device)
    if reason is None:
        log.info("backend: fused (%s)", "C kernel, Hogwild threads" if device.type == "cpu" else "Triton kernel")
        return "fused"
    if name == "fused":
        raise ConfigError(f"train.backend is 'fused' but the fused kernel cannot run on {device}: {reason}; "
                          f"use 'auto' or 'torch'")
    log.info("backend: torch (the fused kernel is unavailable: %s)", reason)
    return "torch"


def kernel_tree(model) -> tuple | None:
    """The Huffman tree (points, labels, lengths) the kernels walk for hierarchical softmax, or None."""
    tree = getattr(model.head, "kernel_tree", None)
    return tree() if tree is not None else None


def _mode(arch: str, shared: bool) -> str:
    return "cbow" if arch == "cbow" else ("sg_shared" if shared else "sg_pair")


def train_chunk(model, ex: Examples, arch: str, shared: bool, cbow_mean: bool, lr0: float, lr1: float,
                threads: int) -> torch.Tensor:
    """SGD over all examples of a chunk in text order, in place on the model's tables; example i of
    N uses lr0 + (lr1 - lr0) * i / N. Returns the loss sum as a 0-dim float64 on the tables' device."""
    in_w, out_w = model.in_embed.weight.data, model.out_embed.weight.data
    if in_w.is_cuda:
        return _cuda_kernel()(model, ex, arch, shared, cbow_mean, lr0, lr1, threads)
    tree = kernel_tree(model)
    if isinstance(ex, SpanExamples):
        loss = ckernel.train_chunk(in_w, out_w, _mode(arch, shared), None, None, ex.targets, ex.negatives,
                                   lr0, lr1, cbow_mean, threads, span_ids=ex.ids, spans=ex.spans,
                                   width=ex.width, tree=tree)
    else:
        loss = ckernel.train_chunk(in_w, out_w, _mode(arch, shared), ex.inputs, ex.mask, ex.targets,
                                   ex.negatives, lr0, lr1, cbow_mean, threads, tree=tree)
    return torch.tensor(loss, dtype=torch.float64)
