"""Update backends behind one interface: the batched PyTorch step, the C kernel, the Triton kernel.

`train.backend: torch` is the batched PyTorch step of w2v/model.py, the reference. `fused` trains a
whole chunk in one call, example by example with Hogwild threads as word2vec.c does: the C kernel
on a CPU, the Triton kernel on CUDA; each example equals the PyTorch step with batch size 1
(tested). Each backend owns its examples' layout and its threads; the epoch loop only calls
`train_chunk(model, examples, lr_start, lr_end)`.
"""
from __future__ import annotations

import logging

import torch

from . import ckernel
from .batches import Examples, SpanExamples, TokenChunk
from .config import ConfigError
from .heads import HierarchicalSoftmaxHead
from .samplers import NoNegatives, UniformSampler, UnigramSampler

log = logging.getLogger("w2v")


class Backend:
    """Interface. `name` is the `train.backend` value it stands for (part of a checkpoint's
    fingerprint); `spans`: whether it takes windowed examples as SpanExamples; `overlaps_python`:
    whether it releases the GIL while it trains, so the next chunk's examples can be made meanwhile;
    `torch_threads`: how many intra-op threads torch may use beside it."""

    name = ""
    spans = False
    overlaps_python = False

    def __init__(self, threads: int = 1):
        self.threads = threads

    @property
    def torch_threads(self) -> int:
        return self.threads

    def unsupported_reason(self, model, sampler) -> str | None:
        """Why this backend cannot train `model` with `sampler` here, or None."""
        raise NotImplementedError

    def train_chunk(self, model, examples, lr_start: float, lr_end: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """SGD over all `examples` of a chunk in text order, in place on the model's tables; the
        learning rate goes linearly from lr_start (first example) to lr_end (past the last).
        `generator` is the stream of any draw made while training (DNS's choice per batch).
        Returns the loss sum as a 0-dim float64 tensor."""
        raise NotImplementedError

    def all_finite(self, t: torch.Tensor) -> bool | None:
        """Whether `t` holds no NaN or Inf, checked in place where this backend can; else None."""
        return None

    def takes_tokens(self, model, sampler, keep_prob: torch.Tensor) -> bool:
        """Whether this backend makes the examples of `model`'s chunks itself, from their tokens
        (`batches.TokenChunk`), with `sampler`'s noise words and subsampling by `keep_prob`."""
        return False


class TorchStep(Backend):
    """The batched PyTorch step (`model.sgd_step`), `batch_size` examples at a time; the learning
    rate is that of each batch's first example."""

    name = "torch"

    def __init__(self, batch_size: int, sampler, threads: int = 1):
        super().__init__(threads)
        self.batch_size, self.sampler = batch_size, sampler

    def unsupported_reason(self, model, sampler) -> str | None:
        return None

    def train_chunk(self, model, examples, lr_start, lr_end, generator=None):
        n, loss = len(examples), torch.zeros((), dtype=torch.float64, device=model.in_embed.weight.device)
        for start in range(0, n, self.batch_size):
            batch = examples.batch(start, start + self.batch_size)
            if self.sampler.refines_batches:  # DNS, rejection, MH score candidates with the vectors as they are now
                batch = self.sampler.refine(model, batch, generator)
            loss += model.sgd_step(*batch, lr_start + (lr_end - lr_start) * start / n)
        return loss


def torch_only_reason(model, sampler) -> str | None:
    """Why these settings need the batched PyTorch step, or None. The kernels take the noise ids
    of each example as given and score them plainly (or walk the Huffman tree, for hierarchical
    softmax): a logQ correction of the logits or a sampler that rescores per batch with the
    current vectors (DNS) is not theirs. The message names the config key."""
    if model.lock is not None:
        return "input rows are locked (train.init_lockf below 1, or Word2Vec's lockf)"
    if model.needs_torch_step:
        return model.head.torch_step_reason
    if sampler.refines_batches:
        return f"model.sampler rescores each batch with the current vectors ({sampler.key})"
    return None


class CKernel(Backend):
    """The C Hogwild kernel (w2v/csrc/sgd.c) on the CPU: `threads` threads of its own, torch's
    left at one (its idle OpenMP threads, spinning beside the kernel's after each example-making
    op, cost 3x in wall time, measured). Windowed examples come as spans (lo, centre, hi): the
    same examples in a fifth of the memory."""

    name = "fused"
    spans = True
    overlaps_python = True

    def __init__(self, threads: int = 1, native_examples: bool = True):
        super().__init__(threads)
        self.native_examples = native_examples  # False: examples from make_examples (the torch reference)
        self._token_tables = None               # (keep, noise alias table or None, K) once takes_tokens

    @property
    def torch_threads(self) -> int:
        return 1

    def unsupported_reason(self, model, sampler) -> str | None:
        return torch_only_reason(model, sampler) or _c_kernel_missing()

    def takes_tokens(self, model, sampler, keep_prob):
        """Yes (and builds the noise table) for noise words from a fixed distribution, unigram or
        uniform (an exact subclass: SharedSampler's draws are grouped), or hierarchical softmax;
        word or subword models alike."""
        if not self.native_examples:
            return False
        if isinstance(sampler, NoNegatives) and kernel_tree(model) is not None:
            noise, k = None, 0
        elif type(sampler) in (UnigramSampler, UniformSampler):
            noise, k = ckernel.alias_table(sampler.probabilities()), sampler.k
        else:
            return False
        self._token_tables = (keep_prob.detach().to("cpu", torch.float32).contiguous(), noise, k)
        return True

    def train_chunk(self, model, examples, lr_start, lr_end, generator=None):
        in_w, out_w = model.in_embed.weight.data, model.out_embed.weight.data
        mean = getattr(model, "mean", True)
        tree, subwords = kernel_tree(model), model.subwords
        if isinstance(examples, TokenChunk):
            keep, noise, k = self._token_tables
            loss, examples.kept_tokens, examples.loss_terms = ckernel.train_tokens(
                in_w, out_w, model.mode.value, examples.ids, examples.offsets, keep, examples.window, noise, k,
                lr_start, lr_end, mean, self.threads, examples.seed, tree, subwords)
        elif isinstance(examples, SpanExamples):
            loss = ckernel.sgd_chunk(in_w, out_w, model.mode.value, None, None, examples.targets,
                                     examples.negatives, lr_start, lr_end, mean, self.threads,
                                     span_ids=examples.ids, spans=examples.spans, width=examples.width, tree=tree,
                                     subwords=subwords)
        else:
            loss = ckernel.sgd_chunk(in_w, out_w, model.mode.value, examples.inputs, examples.mask,
                                     examples.targets, examples.negatives, lr_start, lr_end, mean, self.threads,
                                     tree=tree, subwords=subwords)
        return torch.tensor(loss, dtype=torch.float64)

    def all_finite(self, t):
        return ckernel.all_finite(t)


class TritonKernel(Backend):
    """The Triton kernel (w2v/triton_sgd.py) on CUDA: one program per example, the GPU's own
    parallelism (no threads to set); examples in the dense form."""

    name = "fused"

    def unsupported_reason(self, model, sampler) -> str | None:
        return torch_only_reason(model, sampler) or _triton_missing()

    def train_chunk(self, model, examples: Examples, lr_start, lr_end, generator=None):
        from . import triton_sgd  # imported only where used: importing triton takes a while
        return triton_sgd.sgd_chunk(model.in_embed.weight.data, model.out_embed.weight.data, examples,
                                    model.mode, getattr(model, "mean", True), lr_start, lr_end,
                                    kernel_tree(model), model.subwords)


def kernel_tree(model) -> tuple | None:
    """The Huffman tree (points, labels, lengths) the kernels walk for hierarchical softmax, or None."""
    head = model.head
    return head.kernel_tree() if isinstance(head, HierarchicalSoftmaxHead) else None


def _c_kernel_missing() -> str | None:
    try:
        ckernel.load()
    except ckernel.KernelUnavailable as e:
        return str(e)
    return None


def _triton_missing() -> str | None:
    from . import triton_sgd
    if not triton_sgd.available():
        return "the Triton kernel is not available (the 'triton' package is not installed; " \
               "PyTorch's CUDA builds ship it)"
    return None


def unavailable_reason(device: torch.device) -> str | None:
    """None when the fused kernel can run on `device`, else why not (builds the C kernel on CPU)."""
    if device.type == "cpu":
        return _c_kernel_missing()
    if device.type == "cuda":
        return _triton_missing()
    return f"no fused kernel for device type {device.type!r}"


def resolve_backend(name: str, device: torch.device, why_not: str | None = None) -> str:
    """'torch' or 'fused' for `train.backend` = name; 'auto' takes fused where it is available.
    Logs the choice; 'fused' where it cannot run is a ConfigError naming the reason. `why_not` is
    why the kernel cannot train these settings (its `unsupported_reason`), if known."""
    if name == "torch":
        log.info("backend: torch (batched PyTorch step)")
        return "torch"
    reason = why_not or unavailable_reason(device)
    if reason is None:
        log.info("backend: fused (%s)", "C kernel, Hogwild threads" if device.type == "cpu" else "Triton kernel")
        return "fused"
    if name == "fused":
        raise ConfigError(f"train.backend is 'fused' but the fused kernel cannot run on {device}: {reason}; "
                          f"use 'auto' or 'torch'")
    log.info("backend: torch (the fused kernel is unavailable: %s)", reason)
    return "torch"


def build_backend(train_cfg, device: torch.device, model, sampler, threads: int) -> Backend:
    """The backend `train.backend` asks for on `device` (see `resolve_backend`), with `threads`
    threads per worker."""
    kernel = {"cpu": CKernel, "cuda": TritonKernel}.get(device.type)
    kernel = kernel(threads) if kernel is not None else None
    why_not = kernel.unsupported_reason(model, sampler) if kernel is not None else None
    if resolve_backend(train_cfg.backend, device, why_not) == "torch":
        return TorchStep(torch_batch_size(train_cfg.batch_size, model), sampler, threads)
    return kernel


def torch_batch_size(batch_size: int, model) -> int:
    """`train.batch_size`, or fewer where the output layer needs it: hierarchical softmax updates
    at most `HierarchicalSoftmaxHead.max_batch` examples at once (its root is on every path)."""
    cap = model.head.max_batch if isinstance(model.head, HierarchicalSoftmaxHead) else batch_size
    if cap < batch_size:
        log.info("model.loss hs: the torch backend updates %d examples at a time, not train.batch_size=%d "
                 "(the tree's root would take the summed gradient of a whole batch)", cap, batch_size)
    return min(cap, batch_size)
