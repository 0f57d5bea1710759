"""fastText's own `.bin` model format (version 12, unsupervised, not quantized): write and read.

Layout (FastText::saveModel): int32 magic 793712314, int32 version 12; Args::save (twelve int32
dim, ws, epoch, minCount, neg, wordNgrams, loss (1 hs, 2 ns), model (1 cbow, 2 sg), bucket, minn,
maxn, lrUpdateRate, then double t); Dictionary::save (int32 size, nwords, nlabels; int64 ntokens,
pruneidx_size (-1: not pruned); per word its UTF-8 bytes, a NUL, int64 count, int8 type 0); bool
quant 0; the input matrix (int64 rows, int64 cols, float32 rows x cols: V word rows then the
buckets); bool qout 0; the output matrix likewise. Native byte order, as fastText writes it.
"""

import mmap
import os
import struct

import numpy as np

from w2v.atomic import atomic_write
from w2v.fasttext_kv import FastTextKeyedVectors

MAGIC = 793712314
VERSION = 12
# Args::save's fields in order; every one an int32 but the last, a double.
ARG_FIELDS = ("dim", "ws", "epoch", "min_count", "neg", "word_ngrams", "loss", "model", "bucket", "minn",
              "maxn", "lr_update_rate")
LOSS = {"hs": 1, "ns": 2}
MODEL = {"cbow": 1, "skipgram": 2}
# fastText's defaults (Args' constructor, skipgram): word_ngrams and lr_update_rate have no w2v setting.
_FIXED = {"word_ngrams": 1, "lr_update_rate": 100}
DEFAULTS = {"ws": 5, "epoch": 5, "min_count": 5, "neg": 5, "loss": LOSS["ns"], "model": MODEL["skipgram"],
            "t": 1e-4, **_FIXED}
_HEAD = struct.Struct("=ii" + "i" * len(ARG_FIELDS) + "d")
_DICT_HEAD = struct.Struct("=iiiqq")
_ENTRY_TAIL = struct.Struct("=qb")
_MATRIX_HEAD = struct.Struct("=?qq")


def args_from_config(cfg, ntokens):
    """fastText's Args (and the dictionary's ntokens) for a w2v config."""
    m = cfg.model
    return {"dim": m.dim, "ws": m.window, "epoch": cfg.train.epochs, "min_count": cfg.vocab.min_count,
            "neg": m.negative, "loss": LOSS[m.loss], "model": MODEL[m.arch], "t": m.sample,
            "ntokens": int(ntokens), **_FIXED}


def save_fasttext_bin(path, kv, output, args):
    """Write `kv` (FastTextKeyedVectors: words, counts, input table) and `output` [rows, D] as
    fastText's .bin, with `args` (args_from_config's keys, DEFAULTS for those missing; bucket, minn,
    maxn and dim come from kv).

    fastText's output table has one row per word; a hierarchical-softmax table of V - 1 inner
    nodes (word2vec.c's syn1) gets a zero row at the end."""
    if kv.counts is None:
        raise ValueError(f"{path}: fastText's .bin needs word counts (these vectors have none)")
    v, dim = len(kv), kv.vector_size
    output = np.ascontiguousarray(np.asarray(output, dtype=np.float32))
    if output.ndim != 2 or output.shape[1] != dim or output.shape[0] not in (v, v - 1):
        raise ValueError(f"{path}: output table of shape {output.shape}, expected ({v}, {dim}) or ({v - 1}, {dim})")
    fields = {**DEFAULTS, **args, "dim": dim, "bucket": kv.bucket, "minn": kv.min_n, "maxn": kv.max_n}
    words = [w.encode("utf-8") for w in kv.index_to_key]
    if any(b"\0" in w for w in words):
        raise ValueError(f"{path}: a word holds a NUL character, which fastText's dictionary cannot hold")
    with atomic_write(path, "wb") as f:
        f.write(_HEAD.pack(MAGIC, VERSION, *(int(fields[k]) for k in ARG_FIELDS), float(fields["t"])))
        f.write(_DICT_HEAD.pack(v, v, 0, int(fields.get("ntokens", int(kv.counts.sum()))), -1))
        f.write(b"".join(w + b"\0" + _ENTRY_TAIL.pack(int(c), 0) for w, c in zip(words, kv.counts.tolist())))
        f.write(_MATRIX_HEAD.pack(False, *kv.input_table.shape))
        _write_rows(f, kv.input_table)
        f.write(_MATRIX_HEAD.pack(False, v, dim))
        _write_rows(f, output)
        if output.shape[0] == v - 1:
            f.write(np.zeros(dim, dtype=np.float32).tobytes())


def _write_rows(f, table, block=1 << 16):
    """Write a float32 table block by block (a memory-mapped table is never read whole)."""
    for a in range(0, table.shape[0], block):
        f.write(np.ascontiguousarray(table[a:a + block], dtype=np.float32).data)


def load_fasttext_bin(path, mmap_tables=False):
    """(FastTextKeyedVectors, output table, args) from a fastText .bin (unsupervised, not quantized).

    mmap_tables maps the tables from the file instead of copying them. A file that is not such a
    model raises ValueError naming it."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise ValueError(f"{path}: empty file, not a fastText .bin model") from None
    try:
        return _parse(path, buf, mmap_tables)
    except struct.error:
        raise ValueError(f"{path}: file ends early: not a complete fastText .bin model") from None
    finally:
        if not mmap_tables:
            buf.close()  # the tables are copies


def _parse(path, buf, mmap_tables):
    if len(buf) < _HEAD.size:
        raise ValueError(f"{path}: file ends early: not a fastText .bin model")
    head = _HEAD.unpack_from(buf, 0)
    magic, version, values = head[0], head[1], head[2:]
    if magic != MAGIC:
        raise ValueError(f"{path}: not a fastText .bin model (magic {magic}, expected {MAGIC})")
    if version not in (11, VERSION):
        raise ValueError(f"{path}: fastText .bin version {version}; this reader reads versions 11 and {VERSION}")
    args = dict(zip(ARG_FIELDS + ("t",), values))
    if args["model"] not in MODEL.values():
        raise ValueError(f"{path}: a supervised fastText model (model {args['model']}): only word vectors "
                         "(cbow, skipgram) are read")
    size, nwords, nlabels, ntokens, pruneidx = _DICT_HEAD.unpack_from(buf, _HEAD.size)
    args["ntokens"] = ntokens
    if nlabels or size != nwords:
        raise ValueError(f"{path}: the dictionary holds labels: a supervised model, not read")
    pos = _HEAD.size + _DICT_HEAD.size
    words, counts = [], np.empty(size, dtype=np.int64)
    for i in range(size):
        end = buf.find(b"\0", pos)
        if end < 0:
            raise ValueError(f"{path}: the dictionary ends early, after {i} of {size} words")
        try:
            words.append(buf[pos:end].decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"{path}: byte {pos}: word {i + 1} is not valid UTF-8") from None
        counts[i], _ = _ENTRY_TAIL.unpack_from(buf, end + 1)
        pos = end + 1 + _ENTRY_TAIL.size
    if pruneidx > 0:
        raise ValueError(f"{path}: a pruned (quantized) model: not read")
    input_table, pos = _matrix(path, buf, pos, mmap_tables, "input")
    output, pos = _matrix(path, buf, pos, mmap_tables, "output")
    if pos != len(buf):
        raise ValueError(f"{path}: {len(buf) - pos} bytes after the output matrix")
    if input_table.shape != (size + args["bucket"], args["dim"]):
        raise ValueError(f"{path}: input matrix of shape {input_table.shape}, expected ({size} words + "
                         f"{args['bucket']} buckets, {args['dim']})")
    bucket = args["bucket"] if args["maxn"] > 0 else 0  # maxn 0: the bucket rows are never read
    kv = FastTextKeyedVectors(words, input_table[:size + bucket], args["minn"], args["maxn"], bucket, counts)
    return kv, output, args


def _matrix(path, buf, pos, mmap_tables, name):
    quant, rows, cols = _MATRIX_HEAD.unpack_from(buf, pos)
    if quant:
        raise ValueError(f"{path}: the {name} matrix is quantized (a .ftz model): not read")
    pos += _MATRIX_HEAD.size
    if rows < 0 or cols <= 0 or pos + 4 * rows * cols > len(buf):
        raise ValueError(f"{path}: the {name} matrix ({rows} x {cols}) does not fit in the file")
    table = np.frombuffer(buf, dtype=np.float32, count=rows * cols, offset=pos).reshape(rows, cols)
    return (table if mmap_tables else table.copy()), pos + 4 * rows * cols
