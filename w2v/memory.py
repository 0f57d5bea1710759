"""Memory estimate before training (as gensim's estimate_memory) and the check that it fits."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from .config import chunk_tokens_for
from .errors import TrainingError
from .mode import Mode

log = logging.getLogger("w2v")

MB = 1 << 20
VOCAB_BYTES_PER_WORD = 200  # the word string, its dict entry and list slot in Python (measured ~150-200)
# Subwords: n-gram rows per word, an upper estimate (the benchmark's 73k words average 25 for n of
# 3 to 6; 8 per n-gram length leaves room for longer words).
NGRAMS_PER_LENGTH = 8


def bucket_rows(m) -> int:
    """Input-table rows beyond the V word rows: model.buckets with subwords (and n-grams), else 0."""
    return m.buckets if m.subwords and m.maxn > 0 else 0


def ngrams_per_word(m) -> int:
    """The estimate of n-gram rows per word (0 for a word model)."""
    return NGRAMS_PER_LENGTH * (m.maxn - m.minn + 1) if bucket_rows(m) else 0


def estimate_memory(cfg, vocab_size: int, device_type: str = "cpu") -> dict[str, int]:
    """Bytes each part of a run needs, by part. The tables and weights are exact; the example
    buffers are an upper bound (no token dropped by subsampling, every window at full width)."""
    m, t = cfg.model, cfg.train
    v, d, w, k, chunk, batch = vocab_size, m.dim, m.window, m.negative, chunk_tokens_for(t, device_type), t.batch_size
    per_window = Mode.of(m, device_type).windowed  # one example per centre word
    # A chunk: ids, sentence ids, window positions/ids [T, 2W] and masks, noise ids, all counted at
    # 8 bytes (the examples now hold int32 ids, so this stays an upper bound).
    examples_per_chunk = chunk if per_window else chunk * (w + 1)  # skip-gram pairs: ~W+1 per token
    chunk_bytes = chunk * (8 + 8 + 4 + 2 * w * (8 + 8 + 3)) + examples_per_chunk * 8 * (k + 2)
    # A batch: the gathered rows (contexts, positive, noise) and their gradients, float32.
    # With subwords each input word gathers and scatters all its rows (plus their int64 ids).
    per_input = 1 + ngrams_per_word(m)
    rows = (2 * w if per_window else 1) * per_input + 1 + k
    batch_bytes = 3 * batch * rows * d * 4 + (2 * w if per_window else 1) * batch * per_input * 16
    est = {
        "tables": (2 * v + bucket_rows(m)) * d * 4,   # input (words, then buckets) and output embeddings, float32
        "noise_and_subsampling": v * (4 + 4 + 8),      # noise weights, keep probabilities, counts
        "vocabulary": v * VOCAB_BYTES_PER_WORD,        # host only
        "examples": t.workers * (chunk_bytes + batch_bytes),
    }
    if bucket_rows(m):
        est["subword_index"] = v * (8 + 4 * per_input)  # offsets int64, rows int32
    return est


def _cgroup_limit() -> int | None:
    """Bytes left under this process's cgroup v2 memory limit, if one is set (containers)."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this run on `device`: CUDA's free memory, or /proc/meminfo's MemAvailable
    (capped by a cgroup limit); None where it cannot be told."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            avail = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), None)
    except OSError:
        avail = None
    limit = _cgroup_limit()
    if limit is not None:
        avail = limit if avail is None else min(avail, limit)
    return avail


def check_memory(cfg, vocab_size: int, device: torch.device) -> dict[str, int]:
    """Log the estimate; refuse when the tables cannot fit on the device, warn when the whole
    run may not. Returns the estimate."""
    est = estimate_memory(cfg, vocab_size, device.type)
    index = est.get("subword_index", 0)
    on_device = est["tables"] + est["noise_and_subsampling"] + est["examples"] + index
    total = sum(est.values()) if device.type == "cpu" else on_device
    avail = available_bytes(device)
    free = f"{avail / MB:,.0f} MB available" if avail is not None else "available memory unknown"
    buckets = bucket_rows(cfg.model)
    shape = (f"2 x {vocab_size:,} words x {cfg.model.dim} dims x 4 B" if not buckets else
             f"(2 x {vocab_size:,} words + {buckets:,} n-gram buckets) x {cfg.model.dim} dims x 4 B, "
             f"the buckets {buckets * cfg.model.dim * 4 / MB:,.0f} MB of it: model.buckets is the knob")
    log.info("memory estimate: tables %.1f MB (%s), noise/subsampling %.1f MB, vocabulary %.0f MB, "
             "%sexamples per chunk up to %.0f MB; total about %.0f MB on %s (%s)",
             est["tables"] / MB, shape, est["noise_and_subsampling"] / MB, est["vocabulary"] / MB,
             f"subword index about {index / MB:.0f} MB, " if index else "", est["examples"] / MB,
             total / MB, device, free)
    if avail is None:
        return est
    needed = est["tables"] + est["noise_and_subsampling"] + index
    if needed > avail:
        knobs = "lower model.buckets or model.dim" if buckets else "lower model.dim"
        raise TrainingError(
            f"the embedding tables need {needed / MB:,.0f} MB ({shape.replace(' 4 B', ' 4 bytes')}) but only "
            f"{avail / MB:,.0f} MB is available on {device}: {knobs}, or "
            f"shrink the vocabulary with vocab.max_vocab_size or a higher vocab.min_count")
    if total > avail:
        log.warning("the run may need about %.0f MB but only %.0f MB is available on %s; lower "
                    "train.chunk_tokens or train.batch_size if it runs out of memory",
                    total / MB, avail / MB, device)
    return est


# glibc's mallopt parameter numbers (malloc.h).
_M_MMAP_THRESHOLD = -3


def release_large_blocks_on_free() -> bool:
    """Have glibc give blocks of 128 KiB and more back to the OS as soon as they are freed.

    By default glibc raises its mmap threshold to the size of any mapped block freed (up to 32 MB),
    after which the per-chunk example buffers (MBs each) come from the heap and their space stays
    resident once freed: 50 MB more peak on the benchmark corpus. Fixing the threshold (as the
    MALLOC_MMAP_THRESHOLD_ variable does) keeps each in its own mapping. False where the C library
    is not glibc; no speed cost was measurable (README "Memory")."""
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024))
    except (OSError, AttributeError):
        return False
