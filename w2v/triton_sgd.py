"""Fused Hogwild SGD for one chunk of examples on a GPU, as Triton kernels.

One program per example (a centre word's window, or one pair): it gathers the rows it needs,
computes the scores, gradients and loss in registers, and adds its updates to the shared tables
with atomic adds, as word2vec.c's threads do without locks. Only programs resident at the same
time see each other's rows stale, where the batched PyTorch step makes a whole batch stale and
pays a dozen kernel launches per batch. The arithmetic per example is the PyTorch step's with
batch size 1 (tested against it, also on the CPU through Triton's interpreter).

With subwords (fastText's model) a context word's input is the mean of its rows (its own row and
its n-grams' bucket rows, a CSR list per word; CBOW pools all its context words' rows into one
bag), and the gradient goes in full to each of those rows, as the PyTorch step does.
"""
from __future__ import annotations

import os

import torch

from .heads import HierarchicalSoftmaxHead
from .mode import Mode

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where triton is absent
    triton = None

# Programs per kernel launch are one per example; these set their shape.
NUM_WARPS = int(os.environ.get("W2V_TRITON_WARPS", "2"))

# Hogwild on a GPU runs thousands of examples at once, each reading rows the others are about to
# change. With a large vocabulary two of them rarely share a row and the staleness is harmless; a
# small one (a 40-word vocabulary: every example touches 30% of the rows) sums hundreds of stale
# updates per row and diverges. So a launch holds at most WRITERS_PER_ROW * V / rows examples
# (rows: the rows one example touches), i.e. on average that many concurrent writers per row. On
# the 73k-word benchmark vocabulary that is ~18k examples, more than an H100 holds at once anyway.
WRITERS_PER_ROW = 4


def examples_in_flight(vocab_size: int, rows_per_example: int) -> int:
    """The most examples one launch may hold (see WRITERS_PER_ROW): a multiple of 16, so that every
    launch's start offset gets the same Triton specialisation (one compile), and at least 16."""
    return max(16, WRITERS_PER_ROW * vocab_size // max(rows_per_example, 1) // 16 * 16)


def hs_in_flight(vocab_size: int, rows_per_example: int) -> int:
    """examples_in_flight for hierarchical softmax: the root is on every path, so every example in
    flight writes it from the same stale row, as a batched update does; a launch holds at most
    `HierarchicalSoftmaxHead.max_batch` examples (the torch step's cap), as a multiple of 16."""
    cap = max(16, HierarchicalSoftmaxHead.max_batch // 16 * 16)
    return min(examples_in_flight(vocab_size, rows_per_example), cap)


def available() -> bool:
    """True when Triton can be imported (compiled kernels need CUDA; TRITON_INTERPRET=1 runs on CPU)."""
    return triton is not None


if triton is not None:

    @triton.jit
    def _log_sigmoid(x):
        # log(sigmoid(x)) without overflow: min(x, 0) - log(1 + exp(-|x|)).
        return tl.minimum(x, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(x)))

    @triton.jit
    def _load_targets(tgt_ptr, neg_ptr, pts_ptr, lab_ptr, len_ptr, i, K: tl.constexpr, L: tl.constexpr,
                      HS: tl.constexpr, BLOCK_T: tl.constexpr):
        """Output row ids padded to BLOCK_T, which of them count, and their labels: negative sampling
        [centre, noise_1..noise_K] (labels 1, 0, ..); hierarchical softmax (HS) the inner nodes on
        the centre word's path, read from the tree [V, L] by the centre id (labels 1 - code)."""
        t = tl.arange(0, BLOCK_T)
        # Ids may be int32; row offsets (id * D) are computed in int64, past 2^31 for big tables.
        centre = tl.load(tgt_ptr + i).to(tl.int64)
        if HS:
            valid = t < tl.load(len_ptr + centre)
            rows = tl.load(pts_ptr + centre * L + t, mask=valid, other=0).to(tl.int64)
            labels = tl.load(lab_ptr + centre * L + t, mask=valid, other=0.0)
        else:
            noise = tl.load(neg_ptr + i * K + t - 1, mask=(t >= 1) & (t <= K), other=0).to(tl.int64)
            rows = tl.where(t == 0, centre, noise)
            # word2vec.c skips a noise word equal to the positive word.
            valid = (t == 0) | ((t <= K) & (noise != centre))
            labels = tl.where(t == 0, 1.0, 0.0)
        return t, rows, valid, labels

    @triton.jit
    def _window_kernel(in_ptr, out_ptr, ctx_ptr, mask_ptr, tgt_ptr, neg_ptr, pts_ptr, lab_ptr, len_ptr,
                       loss_ptr, start, n, lr0, lr1, D, off_ptr, rows_ptr, max_rows,
                       C: tl.constexpr, K: tl.constexpr, L: tl.constexpr, HS: tl.constexpr,
                       CBOW: tl.constexpr, MEAN: tl.constexpr, SUB: tl.constexpr,
                       HAS_MASK: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_T: tl.constexpr,
                       BLOCK_D: tl.constexpr):
        """Example i: context rows ctx[i, :C] (where mask), centre tgt[i], noise words neg[i, :K]
        (HS: no noise words; the centre word's path of at most L inner nodes instead).

        CBOW=False: skip-gram with the window's noise words shared; every context row is its own
        hidden vector. CBOW=True: one hidden vector, the mean (MEAN) or sum of the context rows;
        with C == 1 this is per-pair skip-gram. SUB (subwords): a context word's rows are
        rows[off[w]:off[w + 1]], at most max_rows of them, and stand for its one row: skip-gram
        takes their mean, CBOW pools them all. Program p of a launch trains example start + p."""
        i = start + tl.program_id(0)
        lr = lr0 + (lr1 - lr0) * (i.to(tl.float32) / n)
        c = tl.arange(0, BLOCK_C)
        d = tl.arange(0, BLOCK_D)
        d_ok = d < D
        in_ctx = c < C
        ctx = tl.load(ctx_ptr + i * C + c, mask=in_ctx, other=0).to(tl.int64)
        if HAS_MASK:
            c_ok = in_ctx & (tl.load(mask_ptr + i * C + c, mask=in_ctx, other=0) != 0)
        else:
            c_ok = in_ctx
        c_w = c_ok.to(tl.float32)
        tile = c_ok[:, None] & d_ok[None, :]
        if SUB:
            lo = tl.load(off_ptr + ctx, mask=c_ok, other=0)
            cnt = tl.load(off_ptr + ctx + 1, mask=c_ok, other=0) - lo                  # 0 where masked
            H = tl.zeros((BLOCK_C, BLOCK_D), dtype=tl.float32)
            for m in range(0, max_rows):
                r_ok = m < cnt
                rid = tl.load(rows_ptr + lo + m, mask=r_ok, other=0).to(tl.int64)
                H += tl.load(in_ptr + rid[:, None] * D + d[None, :], mask=r_ok[:, None] & d_ok[None, :], other=0.0)
            bag = cnt.to(tl.float32)                                                   # rows per context word
            if not CBOW:
                H = H / tl.maximum(bag, 1.0)[:, None]
        else:
            H = tl.load(in_ptr + ctx[:, None] * D + d[None, :], mask=tile, other=0.0)  # [BC, BD]
            bag = c_w

        t, rows, t_ok, labels = _load_targets(tgt_ptr, neg_ptr, pts_ptr, lab_ptr, len_ptr, i, K, L, HS, BLOCK_T)
        O = tl.load(out_ptr + rows[:, None] * D + d[None, :], mask=t_ok[:, None] & d_ok[None, :],
                    other=0.0)                                                         # [BT, BD]
        grad_O = tl.zeros((BLOCK_T, BLOCK_D), dtype=tl.float32)
        loss = 0.0
        if CBOW:
            count = tl.sum(bag, axis=0)
            h = tl.sum(H, axis=0)
            if MEAN:
                h = h / tl.maximum(count, 1.0)
            grad_h = tl.zeros((BLOCK_D,), dtype=tl.float32)
        else:
            grad_H = tl.zeros((BLOCK_C, BLOCK_D), dtype=tl.float32)
        # Every gradient uses the rows as they were before this example (the PyTorch step's order).
        for j in tl.static_range(L if HS else K + 1):
            sel = t == j
            o = tl.sum(tl.where(sel[:, None], O, 0.0), axis=0)                      # [BD]
            ok = tl.sum(tl.where(sel & t_ok, 1.0, 0.0), axis=0)                     # 1 or 0
            label = tl.sum(tl.where(sel, labels, 0.0), axis=0)
            sign = 2.0 * label - 1.0
            if CBOW:
                s = tl.sum(h * o, axis=0)
                g = (label - tl.sigmoid(s)) * lr * ok
                loss -= _log_sigmoid(sign * s) * ok
                grad_h += g * o
                grad_O += tl.where(sel[:, None], (g * h)[None, :], 0.0)
            else:
                s = tl.sum(H * o[None, :], axis=1)                                     # [BC]
                g = (label - tl.sigmoid(s)) * lr * ok * c_w
                loss -= tl.sum(_log_sigmoid(sign * s) * ok * c_w, axis=0)
                grad_H += g[:, None] * o[None, :]
                grad_O += tl.where(sel[:, None], tl.sum(g[:, None] * H, axis=0)[None, :], 0.0)
        tl.atomic_add(out_ptr + rows[:, None] * D + d[None, :], grad_O,
                      mask=t_ok[:, None] & d_ok[None, :], sem="relaxed")
        if CBOW:
            if not MEAN:
                # gensim divides the summed-context gradient by the context size (see model.CBOW).
                grad_h = grad_h / tl.maximum(count, 1.0)
            grad_H = tl.where(c_ok[:, None], grad_h[None, :], 0.0)
        if SUB:
            for m in range(0, max_rows):
                r_ok = m < cnt
                rid = tl.load(rows_ptr + lo + m, mask=r_ok, other=0).to(tl.int64)
                tl.atomic_add(in_ptr + rid[:, None] * D + d[None, :], grad_H, mask=r_ok[:, None] & d_ok[None, :],
                              sem="relaxed")
        else:
            tl.atomic_add(in_ptr + ctx[:, None] * D + d[None, :], grad_H, mask=tile, sem="relaxed")
        tl.store(loss_ptr + i, loss)


def sgd_chunk(in_w: torch.Tensor, out_w: torch.Tensor, ex, mode: Mode, cbow_mean: bool, lr0: float,
              lr1: float, tree: tuple | None = None, subwords: tuple | None = None) -> torch.Tensor:
    """Hogwild SGD over all examples of `ex` (dense `Examples` of `mode`) on the tables; lr goes
    linearly from lr0 (first example) to lr1 (past the last). `tree` (hierarchical softmax:
    `HierarchicalSoftmaxHead.kernel_tree()`, on the tables' device) is (points [V, L], labels
    [V, L], lengths [V]); then `out_w` has V - 1 rows and there are no noise words. `subwords`
    (the model's `subwords`, on the tables' device) is (offsets [V + 1] int64, rows [nnz] int32):
    word w's input rows, of an input table of V + buckets rows. Returns the loss sum as a 0-dim
    float64 tensor."""
    if triton is None:
        raise RuntimeError("the Triton backend needs the 'triton' package (it ships with PyTorch's CUDA builds)")
    n = len(ex)
    loss = torch.zeros(n, dtype=torch.float32, device=in_w.device)
    if n == 0:
        return loss.sum(dtype=torch.float64)
    if not mode.windowed:  # per-pair skip-gram: one context word per example
        contexts, mask, C = ex.inputs.reshape(-1, 1).contiguous(), ex.inputs, 1
    else:
        contexts, mask, C = ex.inputs.contiguous(), ex.mask.contiguous(), ex.inputs.shape[1]
    K = ex.negatives.shape[1]
    D = in_w.shape[1]
    # Per-pair skip-gram is the CBOW path with one context word (its mean is that word).
    cbow, mean = mode is not Mode.SG_WINDOW, cbow_mean or mode is Mode.SG_PAIR
    targets, negatives = ex.targets.contiguous(), ex.negatives.contiguous()
    if subwords is not None:
        offsets, rows = (t.contiguous() for t in subwords)
        vocab, max_rows = offsets.shape[0] - 1, int((offsets[1:] - offsets[:-1]).max()) if offsets.shape[0] > 1 else 0
    else:
        offsets = rows = targets              # not read
        vocab, max_rows = in_w.shape[0], 0
    # The staleness cap counts the examples' word rows (a word's n-gram rows are shared by others
    # only where words share n-grams), so it is the word model's for the same vocabulary.
    if tree is not None:   # hierarchical softmax: the path of the centre word, no noise words
        points, labels, lengths = tree
        T, step = points.shape[1], hs_in_flight(vocab, C + points.shape[1])
    else:
        points = labels = lengths = targets   # not read
        T, step = K + 1, examples_in_flight(vocab, C + 1 + K)
    for start in range(0, n, step):  # launches on one stream run one after another
        _window_kernel[(min(step, n - start),)](
            in_w, out_w, contexts, mask, targets, negatives, points, labels, lengths, loss,
            start, n, float(lr0), float(lr1), D, offsets, rows, max_rows,
            C=C, K=K, L=T, HS=tree is not None, CBOW=cbow, MEAN=bool(mean), SUB=subwords is not None,
            HAS_MASK=mode.windowed,
            BLOCK_C=triton.next_power_of_2(C), BLOCK_T=triton.next_power_of_2(T),
            BLOCK_D=triton.next_power_of_2(D), num_warps=NUM_WARPS)
    return loss.sum(dtype=torch.float64)
