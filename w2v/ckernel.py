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
    fn = lib.w2v_train_tokens
    fn.argtypes = [ctypes.c_int, p, p, i64, i64, i64, p, p, i64, p, i64, p, p, i64, p, p, p, i64, p, p, i64, i64,
                   ctypes.c_double, ctypes.c_double, ctypes.c_int, ctypes.c_int, ctypes.c_uint64,
                   ctypes.POINTER(ctypes.c_double), p]
    fn.restype = ctypes.c_int
    fn = lib.w2v_draw_tokens
    fn.argtypes = [ctypes.c_int, i64, p, p, i64, p, i64, p, p, i64, ctypes.c_uint64, p, p, p, p, p, p, i64, p, p]
    fn.restype = ctypes.c_int
    lib.w2v_alias_table.argtypes = [p, i64, p, p]
    lib.w2v_alias_table.restype = ctypes.c_int
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
    offsets, sub_rows, vocab = _checked_subwords(subwords, in_w)
    points, labels, lengths = _check_tables(in_w, out_w, tree, vocab if subwords is not None else None)
    targets, negatives = _checked(targets, "targets", torch.int32), _checked(negatives, "negatives", torch.int32)
    if tree is not None and negatives.shape[1] != 0:
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


def _checked_subwords(subwords: tuple | None, in_w: torch.Tensor) -> tuple:
    """(offsets int64, rows int32, V) of a subword index for the kernel, or (None, None, the input
    table's rows) without one."""
    if subwords is None:
        return None, None, in_w.shape[0]
    offsets, rows = _checked(subwords[0], "subword offsets", torch.int64), _checked(subwords[1], "subword rows",
                                                                                   torch.int32)
    vocab = offsets.shape[0] - 1 if offsets.dim() == 1 else -1
    if rows.dim() != 1 or not 0 < vocab <= in_w.shape[0]:
        raise ValueError(f"C kernel: subwords must be offsets [V + 1] and rows [nnz] with V at most the "
                         f"input table's {in_w.shape[0]} rows, got {tuple(offsets.shape)}, {tuple(rows.shape)}")
    return offsets, rows, vocab


def _check_tables(in_w: torch.Tensor, out_w: torch.Tensor, tree: tuple | None, vocab: int | None = None) -> tuple:
    """The tables' checks common to both entry points; returns the tree's (points, labels, lengths)
    as the kernel takes them, or three Nones. `vocab`: the words of a subword model, whose input
    table has V + buckets rows (None: one input row per word)."""
    for w, name in ((in_w, "input table"), (out_w, "output table")):
        if w.device.type != "cpu" or w.dtype != torch.float32 or not w.is_contiguous():
            raise TypeError(f"C kernel: the {name} must be a contiguous CPU float32 tensor")
    words = in_w.shape[0] if vocab is None else vocab
    rows = words - (tree is not None)   # the tree's inner nodes, else one row per word
    if in_w.dim() != 2 or out_w.shape != (rows, in_w.shape[1]):
        raise ValueError(f"C kernel: the output table must be [{rows}, {in_w.shape[1]}] for an input table "
                         f"{tuple(in_w.shape)}{' and a tree' if tree is not None else ''}"
                         f"{f' and {vocab} words with subwords' if vocab is not None else ''}, got {tuple(out_w.shape)}")
    if tree is None:
        return None, None, None
    points, labels, lengths = (_checked(t, name, dtype) for t, name, dtype in
                               zip(tree, ("points", "labels", "lengths"), (torch.int32, torch.float32, torch.int32)))
    if points.shape != labels.shape or points.shape[0] != words or lengths.shape != (words,):
        raise ValueError("C kernel: the tree must be points and labels [V, L] and lengths [V]")
    return points, labels, lengths


def alias_table(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vose's alias table (prob float32 [V], alias int32 [V]) drawing word w with probability
    weights[w] / weights.sum(), for `train_tokens`' noise draws."""
    lib = load()
    w = weights.detach().to("cpu", torch.float64).contiguous()
    prob, alias = torch.empty(w.shape[0], dtype=torch.float32), torch.empty(w.shape[0], dtype=torch.int32)
    status = lib.w2v_alias_table(w.data_ptr(), w.shape[0], prob.data_ptr(), alias.data_ptr())
    if status != 0:
        raise ValueError("C kernel: noise weights must be finite, non-negative and not all zero")
    return prob, alias


def train_tokens(in_w: torch.Tensor, out_w: torch.Tensor, mode: str, ids: torch.Tensor, offsets: torch.Tensor,
                 keep: torch.Tensor, window: int, noise: tuple | None, k: int, lr0: float, lr1: float,
                 cbow_mean: bool, threads: int, seed: int, tree: tuple | None = None,
                 subwords: tuple | None = None) -> tuple[float, int, int]:
    """Make and train a chunk's examples in C, in place on `in_w`, `out_w`; returns (loss sum,
    tokens kept, loss terms).

    `ids` [T] int32 are the chunk's word ids in sentences `offsets` [S + 1] int64 (0 first, T last);
    `keep` [V] float32 the subsampling keep probabilities; `noise` the `alias_table` of the noise
    distribution, k noise words per example (or `tree`, as in `sgd_chunk`, and k = 0). Each thread
    takes about T / threads tokens of whole sentences and its own random stream from `seed`, so the
    draws depend on the seed and the thread count only. The learning rate goes linearly from lr0
    (first token) to lr1 (past the last). `subwords` as in `sgd_chunk`."""
    lib = load()
    sub_offsets, sub_rows, V = _checked_subwords(subwords, in_w)
    points, labels, lengths = _check_tables(in_w, out_w, tree, V if subwords is not None else None)
    ids, offsets = _checked(ids, "ids", torch.int32), _checked(offsets, "offsets", torch.int64)
    keep = _checked(keep, "keep", torch.float32)
    prob, alias = (_checked(noise[0], "noise_prob", torch.float32), _checked(noise[1], "noise_alias", torch.int32)) \
        if noise is not None else (None, None)
    if keep.shape != (V,) or (prob is not None and (prob.shape != (V,) or alias.shape != (V,))):
        raise ValueError("C kernel: keep and the noise table must have one entry per word")
    if offsets.dim() != 1 or offsets.shape[0] < 1 or int(offsets[0]) != 0 or int(offsets[-1]) != ids.shape[0]:
        raise ValueError("C kernel: offsets must run from 0 to the number of ids")
    if (tree is None) != (noise is not None and k > 0):
        raise ValueError("C kernel: negative sampling takes a noise table and k > 0; hierarchical softmax neither")

    def ptr(t):
        return t.data_ptr() if t is not None else None

    loss, counts = ctypes.c_double(0.0), torch.zeros(2, dtype=torch.int64)
    status = lib.w2v_train_tokens(
        MODES[mode], in_w.data_ptr(), out_w.data_ptr(), V, out_w.shape[0], in_w.shape[1],
        ids.data_ptr(), offsets.data_ptr(), offsets.shape[0] - 1, keep.data_ptr(), int(window),
        ptr(prob), ptr(alias), int(k) if tree is None else 0,
        ptr(points), ptr(labels), ptr(lengths), points.shape[1] if points is not None else 0,
        ptr(sub_offsets), ptr(sub_rows), sub_rows.shape[0] if sub_rows is not None else 0, in_w.shape[0],
        float(lr0), float(lr1), int(cbow_mean), max(1, int(threads)), int(seed) & (2**64 - 1),
        ctypes.byref(loss), counts.data_ptr())
    if status != 0:
        raise RuntimeError(f"C kernel failed: {_ERRORS.get(status, f'error {status}')}")
    return loss.value, int(counts[0]), int(counts[1])


def draw_tokens(mode: str, vocab_size: int, ids: torch.Tensor, offsets: torch.Tensor, keep: torch.Tensor,
                window: int, noise: tuple | None, k: int, seed: int) -> dict:
    """The examples `train_tokens` would make on one thread with `seed`, returned instead of
    trained (for tests): 'kept' [T] bool and 'radius' [T] int32 (each kept token's window, 0 when
    dropped), the examples' 'targets' [N] and 'negatives' [N, K], and 'spans' [N, 3] (lo, centre,
    hi) indexing the kept tokens in order, or for 'sg_pair' the contexts 'inputs' [N]; with 'kept_tokens'
    and 'loss_terms' as `train_tokens` counts them."""
    lib = load()
    ids, offsets = _checked(ids, "ids", torch.int32), _checked(offsets, "offsets", torch.int64)
    keep = _checked(keep, "keep", torch.float32)
    prob, alias = noise if noise is not None else (None, None)
    t = ids.shape[0]
    cap = max(1, t * (2 * window if mode == "sg_pair" else 1))
    kept, radius = torch.zeros(t, dtype=torch.uint8), torch.zeros(t, dtype=torch.int32)
    spans, inputs = torch.zeros((cap, 3), dtype=torch.int32), torch.zeros(cap, dtype=torch.int32)
    targets, negatives = torch.zeros(cap, dtype=torch.int32), torch.zeros((cap, k), dtype=torch.int32)
    n, counts = ctypes.c_int64(0), torch.zeros(2, dtype=torch.int64)
    status = lib.w2v_draw_tokens(
        MODES[mode], vocab_size, ids.data_ptr(), offsets.data_ptr(), offsets.shape[0] - 1, keep.data_ptr(), window,
        prob.data_ptr() if prob is not None else None, alias.data_ptr() if alias is not None else None, k,
        int(seed) & (2**64 - 1), kept.data_ptr(), radius.data_ptr(), spans.data_ptr(), inputs.data_ptr(),
        targets.data_ptr(), negatives.data_ptr(), cap, ctypes.byref(n), counts.data_ptr())
    if status != 0:
        raise RuntimeError(f"C kernel failed: {_ERRORS.get(status, f'error {status}')}")
    n = n.value
    return {"kept": kept.bool(), "radius": radius, "spans": spans[:n], "inputs": inputs[:n], "targets": targets[:n],
            "negatives": negatives[:n], "kept_tokens": int(counts[0]), "loss_terms": int(counts[1])}
