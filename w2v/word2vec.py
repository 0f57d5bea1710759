"""gensim-style `Word2Vec`: build a vocabulary and train from Python, query `model.wv`, save, continue.

The arguments gensim 4 has keep gensim's names, defaults and meaning; w2v's own settings are
keyword arguments named as in the YAML config (`device="cuda"`, `backend="torch"`,
`sampler="dns"`, or the dotted key, e.g. `**{"train.workers": 2}`). Text goes through the same
reader, encoder and corpus cache as the command line, and training through the same core
(`w2v.core.train_tables`), so the two train at the same speed to the same vectors."""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .config import Config, ConfigError, build_config
from .core import subword_index, train_tables
from .fasttext_kv import FastTextKeyedVectors
from .keyedvectors import KeyedVectors
from .model import Word2VecModel
from .pipeline import count_corpus, prepare
from .pretrained import intersect, lock_factors, start_rows
from .reader import CorpusError, iter_sentences, list_files
from .sentences import check_iterable, write_sentences
from .subwords import SubwordIndex
from .vocab import Vocab, build_vocab, count_words

log = logging.getLogger("w2v")

# gensim's trim_rule return values (gensim.utils.RULE_*), so that gensim's rules work unchanged.
RULE_DEFAULT, RULE_DISCARD, RULE_KEEP = 0, 1, 2

# gensim argument -> the w2v config key it sets (the conversion is in `_gensim_to_config`).
GENSIM_KEYS = {"vector_size": "model.dim", "window": "model.window", "min_count": "vocab.min_count",
               "max_vocab_size": "vocab.max_distinct_words", "sample": "model.sample", "seed": "train.seed",
               "workers": "train.threads", "sg": "model.arch", "hs": "model.loss", "negative": "model.negative",
               "ns_exponent": "model.ns_exponent", "cbow_mean": "model.cbow_mean", "alpha": "train.alpha",
               "min_alpha": "train.min_alpha", "epochs": "train.epochs"}
# gensim FastText's subword arguments -> the w2v config keys they set.
FASTTEXT_KEYS = {"min_n": "model.minn", "max_n": "model.maxn", "bucket": "model.buckets"}
# model.loss values beyond gensim's hs=0/1 (ns/hs), taken as the keyword loss= with hs=0.
SAMPLED_LOSSES = ("nce", "sampled_softmax")
# Config keys a Word2Vec does not take, with what to use instead.
NOT_TAKEN = {"corpus.paths": "pass corpus_file= or sentences", "vocab.path": "build the vocabulary with build_vocab()",
             "vocab.max_vocab_size": "use max_final_vocab= (gensim's cap on the final vocabulary)",
             "train.checkpoint_minutes": "Word2Vec writes no checkpoints; save the model with model.save()",
             "output": "Word2Vec writes no output folder; use model.save() or model.wv.save_word2vec_format()",
             "distributed": "the Python API trains in one process; use python -m w2v.train under torchrun"}
# Old gensim names that users still type.
RENAMED = {"size": "vector_size", "iter": "epochs"}
# gensim's values of the arguments below are the only ones w2v has.
FIXED = {"shrink_windows": (True, "w2v always shrinks windows (a window size drawn uniformly per word, as "
                                  "word2vec.c and gensim's default)"),
         "null_word": (0, "w2v has no null word (padding) in its vocabulary"),
         "sorted_vocab": (1, "w2v always sorts the vocabulary by descending frequency")}


def _dotted_keys() -> dict[str, str]:
    """Every config key a Word2Vec keyword may set: the dotted name and, where no other section
    and no gensim argument uses the same name, the bare one (`sampler` for model.sampler)."""
    keys = [k for k in (f"{s}.{f.name}" for s in ("corpus", "vocab", "model", "train")
                        for f in dataclasses.fields(getattr(Config(), s)))
            if k not in NOT_TAKEN and k not in GENSIM_KEYS.values()]
    out = {k: k for k in keys}
    leaves = [k.split(".", 1)[1] for k in keys]
    for k, leaf in zip(keys, leaves):
        if leaves.count(leaf) == 1 and leaf not in GENSIM_KEYS:
            out[leaf] = k
    return out


W2V_KEYS = _dotted_keys()


def _refusal(name: str) -> str | None:
    """Why keyword `name` is not taken, with what to use instead, or None if it is taken."""
    if name in RENAMED:
        return f"'{name}' is gensim 3's name; gensim 4 and w2v call it '{RENAMED[name]}'"
    section = name.split(".", 1)[0]
    if name in NOT_TAKEN or section in NOT_TAKEN:
        return f"'{name}': " + NOT_TAKEN.get(name, NOT_TAKEN.get(section))
    for arg, key in GENSIM_KEYS.items():
        if name in (key, key.split(".", 1)[1]):
            also = f" (or, with hs=0, loss= one of {', '.join(SAMPLED_LOSSES)})" if arg == "hs" else ""
            return f"'{name}' is set through gensim's argument '{arg}'{also}"
    return None


def _split_options(options: dict) -> dict[str, object]:
    """w2v keyword options -> {dotted config key: value}; an unknown or refused name is a TypeError."""
    out = {}
    for name, value in options.items():
        if name in ("loss", "model.loss") and value in SAMPLED_LOSSES:   # the losses gensim's hs cannot name
            out["model.loss"] = value
            continue
        if name in W2V_KEYS:
            out[W2V_KEYS[name]] = value
            continue
        why = _refusal(name)
        if why is None:
            close = difflib.get_close_matches(name, list(W2V_KEYS) + list(GENSIM_KEYS), n=1, cutoff=0.6)
            why = f"unknown argument '{name}'" + (f"; did you mean '{close[0]}'?" if close else "")
        raise TypeError(f"Word2Vec: {why}")
    return out


def _gensim_to_config(s: dict) -> dict[str, object]:
    """gensim's settings (as Word2Vec attributes) -> {dotted config key: value}, refusing the
    combinations w2v cannot train."""
    for arg in ("sg", "hs", "cbow_mean"):
        if s[arg] not in (0, 1, True, False):
            raise ValueError(f"Word2Vec: '{arg}' must be 0 or 1, got {s[arg]!r}")
    if s["hs"] and s["negative"]:
        raise ValueError(f"Word2Vec: hs=1 with negative={s['negative']}: w2v trains one output layer, "
                         f"hierarchical softmax or negative sampling, not both; pass negative=0 for "
                         f"hierarchical softmax or hs=0 for negative sampling")
    if not s["hs"] and not s["negative"]:
        raise ValueError("Word2Vec: hs=0 with negative=0 trains nothing; set negative > 0 (negative "
                         "sampling) or hs=1 (hierarchical softmax)")
    # gensim keeps every word with min_count=0, as w2v does with 1 (a counted word occurs at least once).
    min_count = 1 if isinstance(s["min_count"], int) and s["min_count"] == 0 else s["min_count"]
    out = {"model.dim": s["vector_size"], "model.window": s["window"], "vocab.min_count": min_count,
           "model.sample": s["sample"], "train.seed": s["seed"], "train.threads": s["workers"],
           "model.arch": "skipgram" if s["sg"] else "cbow", "model.loss": "hs" if s["hs"] else "ns",
           "model.ns_exponent": s["ns_exponent"], "model.cbow_mean": bool(s["cbow_mean"]),
           "train.alpha": s["alpha"], "train.min_alpha": s["min_alpha"], "train.epochs": s["epochs"]}
    if s["negative"]:
        out["model.negative"] = s["negative"]
    if s["max_vocab_size"] is not None:
        out["vocab.max_distinct_words"] = s["max_vocab_size"]
    return out


def make_config(settings: dict, options: dict) -> Config:
    """The validated w2v Config for gensim `settings` plus w2v `options` ({dotted key: value});
    a bad value is a ConfigError naming the argument as the caller wrote it."""
    # gensim reads tokens as they are; the command line folds case unless told otherwise.
    if settings["hs"] and "model.loss" in options:
        raise ValueError(f"Word2Vec: loss={options['model.loss']!r} with hs=1: pass hs=0 (and negative > 0)")
    flat = {"corpus.lowercase": False, **_gensim_to_config(settings), **options}
    data: dict = {}
    for key, value in flat.items():
        section, leaf = key.split(".", 1)
        data.setdefault(section, {})[leaf] = value
    try:
        return build_config(data, where="Word2Vec")
    except ConfigError as e:
        message = str(e)
        for arg, key in GENSIM_KEYS.items():
            message = message.replace(f"'{key}'", f"'{arg}' ({key})")
        raise ConfigError(message) from None


def _keep(word: str, count: int, min_count: int, trim_rule) -> bool:
    """gensim's keep_vocab_item: the rule decides, RULE_DEFAULT falls back to min_count."""
    rule = trim_rule(word, count, min_count) if trim_rule is not None else RULE_DEFAULT
    if rule == RULE_DEFAULT:
        return count >= min_count
    return rule == RULE_KEEP


def effective_min_count(counts: dict[str, int], min_count: int, max_final_vocab: int | None) -> int:
    """gensim's max_final_vocab: raise min_count just enough that at most max_final_vocab words
    remain (words tied at the cut are all dropped, so the vocabulary may come out smaller)."""
    if max_final_vocab is None or max_final_vocab >= len(counts):
        return min_count
    values = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    cut = np.partition(values, len(values) - 1 - max_final_vocab)[len(values) - 1 - max_final_vocab]
    return max(min_count, int(cut) + 1)


def fresh_input_rows(n: int, dim: int, seed: int, subwords: SubwordIndex | None = None) -> np.ndarray:
    """n input rows initialised as the trainer does (uniform in +-0.5/dim; with `subwords`, its
    n_rows rows uniform in +-1/dim as fastText's), from a generator seeded with `seed`, so that a
    model's first train() starts where the command line would."""
    generator = torch.Generator().manual_seed(seed)
    return Word2VecModel(n, dim, generator, subwords=subwords).in_embed.weight.detach().numpy()


def _iterable_arg(method: str, corpus_iterable, sentences, kwargs: dict):
    """gensim 4 calls the text `corpus_iterable` in build_vocab/train, gensim 3 `sentences`: take
    either; any other unknown keyword is a TypeError naming it."""
    if kwargs:
        raise TypeError(f"Word2Vec.{method}: unknown argument(s) {', '.join(map(repr, kwargs))}")
    if sentences is not None and corpus_iterable is not None:
        raise TypeError(f"Word2Vec.{method}: give sentences or corpus_iterable, not both")
    return corpus_iterable if sentences is None else sentences


class _GensimHooks:
    """The core's callback protocol -> gensim's: each hook of each callback gets the model, with
    `model.wv` and the running loss brought up to date first."""

    def __init__(self, model: "Word2Vec", callbacks):
        self.model, self.callbacks = model, list(callbacks)

    def _call(self, hook: str, state) -> None:
        m = self.model
        m.running_training_loss = float(sum(r["loss"] * r["examples"] for r in state.metrics))
        if self.callbacks:
            m.wv = KeyedVectors(m._words, state.vectors(), m._counts)
        for cb in self.callbacks:
            getattr(cb, hook)(m)

    def on_train_begin(self, state):
        self._call("on_train_begin", state)

    def on_epoch_begin(self, state):
        self._call("on_epoch_begin", state)

    def on_epoch_end(self, state):
        self._call("on_epoch_end", state)

    def on_train_end(self, state):
        self._call("on_train_end", state)


class Word2Vec:
    """Train word2vec vectors from Python, as gensim 4's `Word2Vec` does.

    `Word2Vec(sentences)` or `Word2Vec(corpus_file=path)` builds the vocabulary and trains at once;
    `Word2Vec(...)` without text, then `build_vocab(...)` and `train(...)`, does it in steps.
    `sentences` is a restartable iterable of token lists (not a generator); `corpus_file` a text
    file (plain, .gz or .bz2), a folder, or a list of them, one sentence per line, tokens separated
    by whitespace. Neither is lowercased (gensim's behaviour; `lowercase=True` folds case as the
    command line does by default).

    gensim's arguments keep gensim's defaults (sg=0 is CBOW, workers=3 threads). Differences:
    `hs=1` needs `negative=0` (one output layer at a time); `shrink_windows`, `null_word` and
    `sorted_vocab` have only gensim's default values; `batch_words`, `hashfxn` and `comment` are
    accepted and ignored (w2v batches by its own `batch_size`/`chunk_tokens` and seeds the initial
    vectors from `seed`); a sentence longer than `max_sentence_length` (1000, word2vec.c's) tokens
    is split, where gensim cuts at 10000. `compute_loss` is accepted: w2v always tracks the loss.
    `quiet=True` hides the progress bar (tqdm, in a terminal or a notebook).
    `subwords=True` (with `minn`, `maxn`, `buckets`) trains fastText's subword model; `FastText`
    below takes gensim's names for them.

    After training: `wv` (KeyedVectors of the input vectors), `syn1neg` (output vectors; `syn1`
    for hierarchical softmax), `corpus_count` (sentences) and `corpus_total_words` (tokens) of
    the last build_vocab(), `epochs`, `train_count` (train() calls), `training_metrics` (the
    per-epoch rows of the last train(), as the command line's metrics.json) and
    `get_latest_training_loss()`."""

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5, min_count=5,
                 max_vocab_size=None, sample=1e-3, seed=1, workers=3, min_alpha=0.0001, sg=0, hs=0, negative=5,
                 ns_exponent=0.75, cbow_mean=1, hashfxn=hash, epochs=5, null_word=0, trim_rule=None,
                 sorted_vocab=1, batch_words=10000, compute_loss=False, callbacks=(), comment=None,
                 max_final_vocab=None, shrink_windows=True, quiet=False, **options):
        for name, given in (("shrink_windows", shrink_windows), ("null_word", null_word),
                            ("sorted_vocab", sorted_vocab)):
            value, why = FIXED[name]
            if given != value:
                raise ValueError(f"Word2Vec: {name}={given!r} is not supported: {why}")
        self.vector_size, self.alpha, self.window, self.min_count = vector_size, alpha, window, min_count
        self.max_vocab_size, self.sample, self.seed, self.workers = max_vocab_size, sample, seed, workers
        self.min_alpha, self.sg, self.hs, self.negative = min_alpha, sg, hs, negative
        self.ns_exponent, self.cbow_mean, self.epochs = ns_exponent, cbow_mean, epochs
        self.max_final_vocab, self.compute_loss, self.comment = max_final_vocab, compute_loss, comment
        self.callbacks, self.quiet = tuple(callbacks), quiet
        self.options = _split_options(options)
        self.config = self._make_config()  # refuses bad values before any pass over the text
        self.wv = KeyedVectors([], np.zeros((0, vector_size), dtype=np.float32), np.zeros(0, dtype=np.int64))
        self._words: list[str] = []
        self._counts = np.zeros(0, dtype=np.int64)
        self._output = np.zeros((0, vector_size), dtype=np.float32)
        self._input = self.wv.vectors   # the whole input table: wv.vectors, or with subwords [V + buckets, D]
        self.subwords: SubwordIndex | None = None  # the vocabulary's n-gram rows (subword models)
        self.vectors_lockf: np.ndarray | None = None  # per input row; None: every row trains (1.0)
        self.corpus_count = self.corpus_total_words = 0
        self.train_count, self.epochs_trained, self.words_trained = 0, 0, 0
        self.running_training_loss = 0.0
        self.min_alpha_yet_reached = float(alpha)
        self.training_metrics: list = []
        if sentences is None and corpus_file is None:
            return
        with self._text(sentences, corpus_file, passes=1 + epochs) as text:
            self._build_vocab_from(text, update=False, trim_rule=trim_rule)
            self._train_on(text, epochs, self.alpha, self.min_alpha, self.callbacks, None, None)

    # --- settings -------------------------------------------------------------------------------

    def _settings(self) -> dict:
        return {k: getattr(self, k) for k in GENSIM_KEYS}

    def _make_config(self) -> Config:
        """The config for the current attributes (gensim users set e.g. model.alpha between calls)."""
        return make_config(self._settings(), self.options)

    # --- text -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _text(self, sentences, corpus_file, passes: int):
        """Yield (paths, sentence count or None): `corpus_file` as given, or `sentences` written once
        to a temporary text file (removed afterwards) that the file pipeline then reads."""
        if (sentences is None) == (corpus_file is None):
            raise TypeError("Word2Vec: give exactly one of sentences (corpus_iterable) and corpus_file")
        if corpus_file is not None:
            paths = [os.fspath(p) for p in (corpus_file if isinstance(corpus_file, (list, tuple)) else [corpus_file])]
            list_files(paths)  # a missing file is reported now, by name
            yield paths, None
            return
        check_iterable(sentences, passes)
        with tempfile.TemporaryDirectory(prefix="w2v-sentences-", dir=self.config.corpus.cache_dir or None) as tmp:
            written = write_sentences(sentences, Path(tmp) / "sentences.txt")
            yield [str(written.path)], written.sentences

    def _read(self, paths: list[str]):
        c = self.config.corpus
        return iter_sentences(paths, c.lowercase, c.max_sentence_length)

    # --- vocabulary -----------------------------------------------------------------------------

    def build_vocab(self, corpus_iterable=None, corpus_file=None, update=False, progress_per=10000,
                    keep_raw_vocab=False, trim_rule=None, sentences=None, **kwargs):
        """Count the words of the text and keep those with at least `min_count` occurrences
        (`trim_rule(word, count, min_count)` may keep or discard words, as in gensim; it is not
        stored), capped by `max_final_vocab` as gensim does. Initialises the vectors.

        `update=True` adds the text's new words (those passing min_count in this text) at the
        end of the vocabulary with fresh vectors (input uniform +-0.5/dim, output zero) and adds
        this text's counts to every known word; the trained rows are kept as they are. The noise
        and subsampling distributions of the next train() follow the updated counts. Not with
        hierarchical softmax, whose Huffman tree (and so the meaning of every output row) would
        change. `progress_per` and `keep_raw_vocab` are accepted and ignored."""
        corpus_iterable = _iterable_arg("build_vocab", corpus_iterable, sentences, kwargs)
        self.config = self._make_config()
        with self._text(corpus_iterable, corpus_file, passes=1) as text:
            self._build_vocab_from(text, update, trim_rule)

    def _build_vocab_from(self, text, update: bool, trim_rule) -> None:
        paths, n_sentences = text
        if update:
            if not self._words:
                raise RuntimeError("Word2Vec.build_vocab(update=True): the model has no vocabulary yet; "
                                   "build it first with build_vocab(...) (without update)")
            if self.hs:
                raise ValueError("Word2Vec.build_vocab(update=True) with hs=1: the Huffman tree of "
                                 "hierarchical softmax is built from the counts, so new words would "
                                 "change every trained output row's node; train negative sampling "
                                 "(hs=0) to extend the vocabulary")
        counts, total, sentences_seen = self._count(paths)
        if total == 0:
            raise CorpusError(f"{'sentences' if n_sentences is not None else paths}: the text contains no words")
        min_count = effective_min_count(counts, self.config.vocab.min_count, self.max_final_vocab)
        if trim_rule is not None:  # one call per distinct word, as gensim does
            counts = {w: c for w, c in counts.items() if _keep(w, c, min_count, trim_rule)}
            min_count = 1
        if update:
            self._extend_vocab(counts, min_count)
        else:
            vocab = build_vocab(counts, min_count)
            self._set_vocab(vocab.words, vocab.counts)
        self.corpus_count = n_sentences if n_sentences is not None else sentences_seen
        self.corpus_total_words = total
        log.info("vocabulary: %d words; the text has %d sentences, %d tokens", len(self._words),
                 self.corpus_count, total)

    def _count(self, paths: list[str]) -> tuple[dict[str, int], int, int]:
        """Every word of the text with its count, its tokens and its sentences: one native pass
        (pipeline.count_corpus), or the Python reference where that cannot be used."""
        cfg = self.config
        cfg = dataclasses.replace(cfg, corpus=dataclasses.replace(cfg.corpus, paths=list(paths)))
        with tempfile.TemporaryDirectory(prefix="w2v-count-") as tmp:   # sentence ends, 8 bytes each
            native = count_corpus(cfg, tmp)
        if native is not None:
            return native
        sentences = 0

        def counted(stream):
            nonlocal sentences
            for s in stream:
                sentences += 1
                yield s
        counts, total = count_words(counted(self._read(paths)), cfg.vocab.max_distinct_words)
        return counts, total, sentences

    def _set_vocab(self, words: list[str], counts: np.ndarray) -> None:
        """A new vocabulary with freshly initialised tables (word2vec.c's: input uniform, output zero)."""
        cfg = self.config
        rows = len(words) - 1 if cfg.model.loss == "hs" else len(words)
        self._words, self._counts = list(words), counts
        self.subwords = subword_index(cfg.model, self._words)
        vectors = fresh_input_rows(len(words), cfg.model.dim, cfg.train.seed, self.subwords)
        output = np.zeros((rows, cfg.model.dim), dtype=np.float32)
        self.vectors_lockf = None
        if cfg.train.init_vectors:  # the command line's train.init_vectors, applied here
            found = start_rows(self._words, vectors, output, cfg.model, cfg.train.init_vectors,
                               self.subwords is not None)
            self.vectors_lockf = lock_factors(len(words), found, cfg.train.init_lockf)
        self._set_tables(vectors, output)

    def _extend_vocab(self, counts: dict[str, int], min_count: int) -> None:
        index = {w: i for i, w in enumerate(self._words)}
        old = len(self._words)
        new = sorted(((w, c) for w, c in counts.items() if w not in index and c >= min_count),
                     key=lambda wc: (-wc[1], wc[0]))
        added = np.fromiter((counts.get(w, 0) for w in self._words), dtype=np.int64, count=old)
        self._counts = np.concatenate([self._counts + added, np.asarray([c for _, c in new], dtype=np.int64)])
        self._words = self._words + [w for w, _ in new]
        dim = self.config.model.dim
        # Seeded by the old size too, so that successive updates do not repeat the same rows.
        fresh = fresh_input_rows(len(new), dim, self.config.train.seed + 104729 * old)
        if self.subwords is not None:
            # The new words' rows go between the word rows and the buckets, which keep their values;
            # new rows start as a subword model's (uniform in +-1/dim).
            self.subwords = subword_index(self.config.model, self._words)
            inp = np.concatenate([self._input[:old], 2 * fresh, self._input[old:]])
        else:
            inp = np.concatenate([self._input, fresh])
        self._set_tables(inp, np.concatenate([self._output, np.zeros((len(new), dim), dtype=np.float32)]))
        if self.vectors_lockf is not None:
            self.vectors_lockf = np.concatenate([self.vectors_lockf, np.ones(len(new), dtype=np.float32)])
        log.info("vocabulary update: %d new words, %d known", len(new), old)

    def _set_tables(self, inp: np.ndarray, output: np.ndarray) -> None:
        """The trained (or fresh) tables: `inp` the whole input table, `output` the output layer."""
        self._output = output
        self.wv = self._make_wv(inp)
        # A word model trains from wv.vectors itself, so that changes made to it in place count.
        self._input = self.wv.vectors if self.subwords is None else inp

    def _make_wv(self, inp: np.ndarray) -> KeyedVectors:
        """The KeyedVectors of the vocabulary for input table `inp`: its rows, or with subwords a
        FastTextKeyedVectors (each word's mean over its rows; any word's vector from its n-grams)."""
        if self.subwords is None:
            return KeyedVectors(self._words, inp, self._counts)
        vectors = self.subwords.word_vectors(torch.from_numpy(inp)).numpy()
        s = self.subwords
        return FastTextKeyedVectors(self._words, inp, s.minn, s.maxn, s.buckets, self._counts, vectors=vectors, index=s)

    @property
    def syn1neg(self) -> np.ndarray:
        """The output vectors of negative sampling [V, D] (word2vec.c's syn1neg)."""
        if self.hs:
            raise AttributeError("syn1neg: this model trains hierarchical softmax (hs=1); its output layer is syn1")
        return self._output

    @property
    def syn1(self) -> np.ndarray:
        """The output vectors of hierarchical softmax [V - 1, D], one per inner node of the Huffman tree."""
        if not self.hs:
            raise AttributeError("syn1: this model trains negative sampling (hs=0); its output layer is syn1neg")
        return self._output

    # --- pretrained vectors ---------------------------------------------------------------------

    def intersect_word2vec_format(self, fname, lockf=0.0, binary=None, encoding="utf8", unicode_errors="strict"):
        """Copy the vectors of a word2vec text or binary file into the rows of the words this model
        already has (no word is added), and give those rows lock factor `lockf`: 0.0 (gensim's
        default) keeps them as they are during training, 1.0 trains them as any other row, values
        between scale their updates. A lock other than 1.0 needs the PyTorch step (train.backend
        'auto' picks it; 'fused' is refused). Returns the number of rows replaced."""
        if not self._words:
            raise RuntimeError("intersect_word2vec_format: build the vocabulary first (build_vocab)")
        if not 0.0 <= lockf <= 1.0:
            raise ValueError(f"intersect_word2vec_format: lockf must be between 0 and 1, got {lockf!r}")
        if self.subwords is not None:
            raise ValueError("intersect_word2vec_format: not for a subword model (a file's word vectors "
                             "are not the mean of a word's n-gram rows)")
        rows = intersect(self._words, self.wv.vectors, fname, binary, unicode_errors)
        if lockf != 1.0 and len(rows):
            if self.vectors_lockf is None:
                self.vectors_lockf = np.ones(len(self._words), dtype=np.float32)
            self.vectors_lockf[rows] = lockf
        return len(rows)

    # --- training -------------------------------------------------------------------------------

    def train(self, corpus_iterable=None, corpus_file=None, total_examples=None, total_words=None, epochs=None,
              start_alpha=None, end_alpha=None, word_count=0, queue_factor=2, report_delay=1.0, compute_loss=None,
              callbacks=(), sentences=None, **kwargs):
        """Train `epochs` passes over the text, continuing from the current vectors.

        As in gensim, the learning rate of each call falls linearly from `start_alpha` (default
        `alpha`) to `end_alpha` (`min_alpha`) over this call's words, and these, like `epochs`,
        become the model's settings. The callbacks given here (not the constructor's) are called.
        `total_examples`/`total_words` are checked against the text (a warning if they differ);
        w2v counts the text itself, so they may be left out. `word_count`, `queue_factor` and
        `report_delay` are accepted and ignored. Each call draws its own subsampling and windows
        (the seed of call k is `seed + k`). Returns (effective words trained, raw words read),
        summed over the epochs, as gensim does."""
        corpus_iterable = _iterable_arg("train", corpus_iterable, sentences, kwargs)
        if not self._words:
            raise RuntimeError("Word2Vec.train: build the vocabulary first (build_vocab)")
        self.alpha = start_alpha or self.alpha
        self.min_alpha = end_alpha or self.min_alpha
        self.epochs = epochs if epochs is not None else self.epochs
        if compute_loss is not None:
            self.compute_loss = compute_loss
        self.config = self._make_config()
        with self._text(corpus_iterable, corpus_file, passes=self.epochs) as text:
            return self._train_on(text, self.epochs, self.alpha, self.min_alpha, callbacks, total_examples,
                                  total_words)

    def _train_on(self, text, epochs: int, alpha: float, min_alpha: float, callbacks, total_examples,
                  total_words) -> tuple[int, int]:
        paths, n_sentences = text
        cfg = self._make_config()
        cfg = dataclasses.replace(
            cfg, corpus=dataclasses.replace(cfg.corpus, paths=list(paths)),
            train=dataclasses.replace(cfg.train, epochs=epochs, alpha=alpha, min_alpha=min_alpha,
                                      seed=cfg.train.seed + self.train_count))
        vocab = Vocab(self._words, self._counts)
        lock = None if self.vectors_lockf is None else torch.from_numpy(self.vectors_lockf)
        with tempfile.TemporaryDirectory(prefix="w2v-cache-") as tmp:
            # A corpus file is encoded into corpus.cache_dir when given (reused by later runs, as the
            # command line's cache); `sentences` were written to a temporary file, encoded beside it.
            cache = cfg.corpus.cache_dir if n_sentences is None and cfg.corpus.cache_dir else tmp
            corpus = prepare(cfg, cache, quiet=True, given=vocab).corpus   # one native pass where it can
            if n_sentences is not None and total_examples is not None and total_examples != n_sentences:
                log.warning("train: total_examples=%d but the text has %d sentences", total_examples, n_sentences)
            if total_words is not None and total_words != corpus.raw_tokens:
                log.warning("train: total_words=%d but the text has %d words", total_words, corpus.raw_tokens)
            init = (torch.from_numpy(self._input), torch.from_numpy(self._output))
            result = train_tables(cfg, vocab, corpus, init=init, lock=lock,
                                  callbacks=[_GensimHooks(self, callbacks)], quiet=self.quiet)
            raw = corpus.raw_tokens * epochs
        self._set_tables(result.input.numpy(), result.output.numpy())
        self.training_metrics = result.metrics
        self.running_training_loss = float(sum(r["loss"] * r["examples"] for r in result.metrics))
        self.train_count += 1
        self.epochs_trained += epochs
        self.words_trained += sum(r["words"] for r in result.metrics)
        self.min_alpha_yet_reached = min_alpha
        return sum(r["effective_words"] for r in result.metrics), raw

    def get_latest_training_loss(self) -> float:
        """The training loss summed over every example of the latest train() call, all its epochs
        (gensim's definition, in float64): for negative sampling, -log s(positive score) - sum of
        log s(-noise score) per example; for hierarchical softmax, the path's logistic losses.
        Inside a callback, the sum over the call's complete epochs. The per-epoch mean loss is in
        `training_metrics[i]['loss']`. w2v tracks the loss whatever `compute_loss` says."""
        return float(self.running_training_loss)

    # --- persistence ----------------------------------------------------------------------------

    FORMAT = "w2v.Word2Vec"
    FORMAT_VERSION = 1

    def save(self, fname) -> None:
        """Write the whole model to one file (numpy's .npz, no pickle): input and output tables,
        vocabulary with counts, lock factors, settings and position (train() calls, epochs and
        words trained), so that `Word2Vec.load(fname)` continues training where this one stopped.
        Callbacks and trim_rule are not saved (gensim does not keep trim_rule either)."""
        meta = {"format": self.FORMAT, "version": self.FORMAT_VERSION, "settings": self._settings(),
                "options": self.options, "max_final_vocab": self.max_final_vocab,
                "compute_loss": bool(self.compute_loss), "comment": self.comment, "quiet": self.quiet,
                "corpus_count": self.corpus_count, "corpus_total_words": self.corpus_total_words,
                "train_count": self.train_count, "epochs_trained": self.epochs_trained,
                "words_trained": self.words_trained, "running_training_loss": self.running_training_loss,
                "min_alpha_yet_reached": self.min_alpha_yet_reached, "training_metrics": self.training_metrics}
        arrays = {"input": self._input, "output": self._output, "counts": self._counts,
                  "words": np.frombuffer("\n".join(self._words).encode("utf-8"), dtype=np.uint8),
                  "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
        if self.vectors_lockf is not None:
            arrays["lockf"] = self.vectors_lockf
        with atomic_write(fname, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, fname, mmap=None) -> "Word2Vec":
        """Read a model written by `save` (`mmap` is accepted and ignored: the tables are read into memory)."""
        try:
            with np.load(os.fspath(fname), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{fname}: not a model written by w2v's Word2Vec.save ({e})") from None
        if meta.get("format") != cls.FORMAT or meta.get("version") != cls.FORMAT_VERSION:
            raise ValueError(f"{fname}: not a w2v Word2Vec model of format version {cls.FORMAT_VERSION}")
        model = cls(**meta["settings"], max_final_vocab=meta["max_final_vocab"], compute_loss=meta["compute_loss"],
                    comment=meta["comment"], quiet=meta["quiet"], **meta["options"])
        words = arrays["words"].tobytes().decode("utf-8").split("\n") if len(arrays["words"]) else []
        model._words, model._counts = words, arrays["counts"]
        model.subwords = subword_index(model.config.model, words)
        model._set_tables(arrays["input"], arrays["output"])
        model.vectors_lockf = arrays.get("lockf")
        for k in ("corpus_count", "corpus_total_words", "train_count", "epochs_trained", "words_trained",
                  "running_training_loss", "min_alpha_yet_reached", "training_metrics"):
            setattr(model, k, meta[k])
        return model

    def __repr__(self) -> str:
        return (f"{type(self).__name__}<vocab={len(self._words)}, vector_size={self.vector_size}, "
                f"alpha={self.alpha}, sg={self.sg}, hs={self.hs}, negative={self.negative}>")


class FastText(Word2Vec):
    """gensim's `FastText`: a Word2Vec whose words are also their character n-grams (w2v's
    `model.subwords`), with gensim's names for them: `min_n` (3) and `max_n` (6) characters of
    "<word>" (max_n=0: no n-grams), hashed into `bucket` (2,000,000) rows after the word rows of the
    input table. `word_ngrams` takes only gensim's default, 1 (fastText's unsupervised models do not
    use word n-grams). Every other argument is Word2Vec's (gensim's defaults: CBOW, sample 1e-3).
    `wv` holds each vocabulary word's vector, the mean of its own row and its n-gram rows; the
    whole input table is trained and saved."""

    def __init__(self, sentences=None, corpus_file=None, min_n=3, max_n=6, bucket=2_000_000, word_ngrams=1,
                 **kwargs):
        if word_ngrams != 1:
            raise ValueError(f"FastText: word_ngrams={word_ngrams!r} is not supported: w2v's subword model "
                             f"uses character n-grams only (gensim's default, 1)")
        for name in ("subwords", "minn", "maxn", "buckets"):
            if name in kwargs:
                raise TypeError(f"FastText: '{name}' is set through gensim's arguments min_n, max_n and bucket")
        # The dotted keys are how a saved model's settings come back (Word2Vec.load).
        if not kwargs.pop("model.subwords", True):
            raise ValueError("FastText: model.subwords is always on; use Word2Vec for a word model")
        min_n, max_n = kwargs.pop("model.minn", min_n), kwargs.pop("model.maxn", max_n)
        bucket = kwargs.pop("model.buckets", bucket)
        self.min_n, self.max_n, self.bucket, self.word_ngrams = min_n, max_n, bucket, word_ngrams
        super().__init__(sentences, corpus_file, subwords=True, minn=min_n, maxn=max_n, buckets=bucket, **kwargs)

    def _make_config(self) -> Config:
        """Word2Vec's, with errors naming gensim's arguments for the subword settings."""
        try:
            return super()._make_config()
        except ConfigError as e:
            message = str(e)
            for arg, key in FASTTEXT_KEYS.items():
                message = message.replace(f"'{key}'", f"'{arg}' ({key})")
            raise ConfigError(message) from None


__all__ = ["Word2Vec", "FastText", "RULE_DEFAULT", "RULE_DISCARD", "RULE_KEEP"]
