"""The optional C Hogwild kernel (w2v/csrc/sgd.c): compiled on first use, cached, called via ctypes.

No build step at install time and no new dependency: the system C compiler builds the kernel
into a cache directory the first time it is needed (keyed by a hash of the source, compiler,
flags and CPU, since the flags include -march=native), and ctypes loads it. When that is not
possible, `load()` raises KernelUnavailable saying why, and the caller falls back to PyTorch.
"""
from __future__ import annotations

import ctypes

import torch

from .native import CSRC, load_library
from .native import NativeUnavailable as KernelUnavailable  # the name callers catch

SOURCE = CSRC / "sgd.c"
MODES = {"sg_pair": 0, "sg_shared": 1, "cbow": 2}  # the values of w2v.mode.Mode
_ERRORS = {1: "a word id outside the embedding table, a malformed span or a malformed subword list",
           2: "out of memory", 3: "could not start a thread", 4: "invalid arguments"}


_lib = None
_lib_error: KernelUnavailable | None = None


def load():
    """The loaded kernel (built on first use); raises KernelUnavailable with the reason otherwise.
    The outcome is remembered for the process, so a failure is reported once, not per chunk."""
    global _lib, _lib_error
    if _lib is not None:
        return _lib
    if _lib_error is not None:
        raise _lib_error
    try:
        lib = load_library(SOURCE, "w2v_sgd", "the C kernel")
    except KernelUnavailable as e:
        _lib_error = e
        raise
    fn = lib.w2v_train_chunk
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    fn.argtypes = [ctypes.c_int, p, p, i64, i64, i64, p, p, i64, p, p, p, p, i64, p, p, p, i64,
                   p, p, i64, i64, i64, ctypes.c_double, ctypes.c_double, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
    fn.restype = ctypes.c_int
    lib.w2v_all_finite.argtypes = [p, i64]
    lib.w2v_all_finite.restype = ctypes.c_int
    _lib = lib
    return lib


def all_finite(t: torch.Tensor) -> bool | None:
    """Whether a contiguous CPU float32 tensor holds no NaN or Inf, read in place; None when the
    kernel is not loaded in this process (it is not built just for this)."""
    if _lib is None or t.device.type != "cpu" or t.dtype != torch.float32 or not t.is_contiguous():
        return None
    return bool(_lib.w2v_all_finite(t.data_ptr(), t.numel()))


def reset() -> None:
    """Forget the loaded kernel or the failure (tests change the compiler or cache between calls)."""
    global _lib, _lib_error
    _lib, _lib_error = None, None


def _checked(t: torch.Tensor | None, name: str, dtype: torch.dtype) -> torch.Tensor | None:
    """`t` as a contiguous CPU tensor of `dtype`; ids of another integer type are converted."""
    if t is None:
        return None
    if t.device.type == "cpu" and dtype == torch.int32 and t.dtype == torch.int64:
        t = t.to(torch.int32)  # word ids; make_examples already gives int32
    if t.device.type != "cpu" or t.dtype != dtype:
        raise TypeError(f"C kernel: {name} must be a CPU {dtype} tensor, got {t.device} {t.dtype}")
    return t.contiguous()


def sgd_chunk(in_w: torch.Tensor, out_w: torch.Tensor, mode: str, inputs: torch.Tensor | None,
                mask: torch.Tensor | None, targets: torch.Tensor, negatives: torch.Tensor,
                lr0: float, lr1: float, cbow_mean: bool, threads: int, *,
                span_ids: torch.Tensor | None = None, spans: torch.Tensor | None = None,
                width: int = 0, tree: tuple | None = None, subwords: tuple | None = None) -> float:
    """Hogwild SGD over N examples in place on `in_w`, `out_w`; returns the loss sum.

    mode 'sg_shared' or 'cbow': inputs [N, C] int32 with mask [N, C] bool, or instead (inputs and
    mask None) `spans` [N, 3] int32 (lo, centre, hi) into `span_ids`, at most `width` contexts
    each; 'sg_pair': inputs [N]. targets [N], negatives [N, K] int32 (int64 ids are converted).
    `tree` (hierarchical softmax: `HierarchicalSoftmaxHead.kernel_tree()`) is (points [V, L] int32,
    labels [V, L] float32, lengths [V] int32); then `out_w` has V - 1 rows and K is 0.
    `subwords` (fastText's model: `SubwordIndex`'s tensors) is (offsets [V + 1] int64, rows [nnz]
    int32): word w's input vector is the mean of in_w[rows[offsets[w]:offsets[w + 1]]], and its
    gradient goes to each of those rows; `in_w` then has V + buckets rows, V the vocabulary's.
    Example i uses lr0 + (lr1 - lr0) * i / N. No example (N = 0) is no update and no loss."""
    lib = load()
    for w, name in ((in_w, "input table"), (out_w, "output table")):
        if w.device.type != "cpu" or w.dtype != torch.float32 or not w.is_contiguous():
            raise TypeError(f"C kernel: the {name} must be a contiguous CPU float32 tensor")
    offsets = sub_rows = None
    vocab = in_w.shape[0]
    if subwords is not None:
        offsets, sub_rows = _checked(subwords[0], "subword offsets", torch.int64), \
            _checked(subwords[1], "subword rows", torch.int32)
        vocab = offsets.shape[0] - 1 if offsets.dim() == 1 else -1
        if sub_rows.dim() != 1 or not 0 < vocab <= in_w.shape[0]:
            raise ValueError(f"C kernel: subwords must be offsets [V + 1] and rows [nnz] with V at most the "
                             f"input table's {in_w.shape[0]} rows, got {tuple(offsets.shape)}, {tuple(sub_rows.shape)}")
    rows = vocab - (tree is not None)   # the tree's inner nodes, else one row per word
    if in_w.dim() != 2 or out_w.shape != (rows, in_w.shape[1]):
        raise ValueError(f"C kernel: the output table must be [{rows}, {in_w.shape[1]}] for an input table "
                         f"{tuple(in_w.shape)}{' and a tree' if tree is not None else ''}"
                         f"{f' and {vocab} words with subwords' if subwords is not None else ''}, got {tuple(out_w.shape)}")
    targets, negatives = _checked(targets, "targets", torch.int32), _checked(negatives, "negatives", torch.int32)
    points = labels = lengths = None
    if tree is not None:
        points, labels, lengths = (_checked(t, name, dtype) for t, name, dtype in
                                   zip(tree, ("points", "labels", "lengths"), (torch.int32, torch.float32, torch.int32)))
        if points.shape != labels.shape or points.shape[0] != vocab or lengths.shape != (vocab,):
            raise ValueError("C kernel: the tree must be points and labels [V, L] and lengths [V]")
        if negatives.shape[1] != 0:
            raise ValueError("C kernel: hierarchical softmax takes no noise words")
    n = targets.shape[0]
    if spans is not None:
        if inputs is not None or mask is not None or mode == "sg_pair" or width < 1:
            raise ValueError("C kernel: spans replace inputs and mask, for 'sg_shared' or 'cbow', with a width")
        span_ids, spans = _checked(span_ids, "span_ids", torch.int32), _checked(spans, "spans", torch.int32)
        if spans.shape != (n, 3):
            raise ValueError("C kernel: spans must be [N, 3] (lo, centre, hi), one row per example")
        if n and not (int(spans[:, 0].min()) >= 0 and int(spans[:, 2].max()) < span_ids.shape[0]):
            raise ValueError("C kernel: a span reaches outside span_ids")
    else:
        inputs = _checked(inputs, "inputs", torch.int32)
        mask = _checked(mask, "mask", torch.bool)
        width = 1 if inputs.dim() == 1 else inputs.shape[1]
        if inputs.shape[0] != n or (mask is not None and mask.shape != inputs.shape):
            raise ValueError("C kernel: inputs, mask, targets and negatives must have one row per example")
        if (mode == "sg_pair") != (mask is None):
            raise ValueError(f"C kernel: mode {mode!r} {'takes no' if mode == 'sg_pair' else 'needs a'} mask")
    if negatives.shape[0] != n:
        raise ValueError("C kernel: inputs, mask, targets and negatives must have one row per example")
    if n == 0:
        return 0.0  # the kernel refuses an empty chunk as invalid arguments

    def ptr(t):
        return t.data_ptr() if t is not None else None

    loss = ctypes.c_double(0.0)
    status = lib.w2v_train_chunk(
        MODES[mode], in_w.data_ptr(), out_w.data_ptr(), vocab, out_w.shape[0], in_w.shape[1],
        ptr(inputs), ptr(mask), width, ptr(span_ids), ptr(spans),
        targets.data_ptr(), negatives.data_ptr(), negatives.shape[1],
        ptr(points), ptr(labels), ptr(lengths), points.shape[1] if points is not None else 0,
        ptr(offsets), ptr(sub_rows), sub_rows.shape[0] if sub_rows is not None else 0, in_w.shape[0], n,
        float(lr0), float(lr1), int(cbow_mean), max(1, int(threads)), ctypes.byref(loss))
    if status != 0:
        raise RuntimeError(f"C kernel failed: {_ERRORS.get(status, f'error {status}')}")
    return loss.value
