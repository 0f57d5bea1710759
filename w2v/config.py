"""Typed, validated configuration: YAML -> dataclasses, with errors that name the key."""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# model.sampler's values; the classes are in w2v/samplers.py.
SAMPLERS = ("unigram", "uniform", "dns", "in_batch", "mixed", "shared", "two_group", "rejection", "mh", "neighbours")
LOSSES = ("ns", "hs", "nce", "sampled_softmax")   # model.loss; NCE and sampled softmax: w2v/sampled_losses.py
NO_FIXED_Q = ("dns", "rejection", "mh", "neighbours")  # samplers with no fixed noise distribution q(w)


class ConfigError(ValueError):
    """A configuration problem; the message names the file and key and says what is accepted."""


@dataclass
class CorpusConfig:
    paths: list[str] = field(default_factory=list)   # files or folders; .gz / .bz2 read transparently
    lowercase: bool = True
    max_sentence_length: int = 1000                   # word2vec.c's MAX_SENTENCE_LENGTH
    cache_dir: str = ""                               # encoded-corpus cache; "" = <output.dir>/cache
    read_threads: int = 0                             # threads reading the text; 0 = all cores


@dataclass
class VocabConfig:
    min_count: int = 5
    max_vocab_size: int = 0          # 0 = no cap on the final vocabulary
    max_distinct_words: int = 30_000_000  # words held while counting; rarest pruned past it (word2vec.c)
    path: str = ""                   # reuse this vocab.txt instead of counting


@dataclass
class ModelConfig:
    arch: str = "skipgram"           # skipgram | cbow
    dim: int = 100
    window: int = 5
    negative: int = 5
    ns_exponent: float = 0.75
    sample: float = 1e-3
    cbow_mean: bool = True
    # skip-gram noise: per window (true, pWord2Vec) or per pair (false); auto: window on a CPU, pair on a GPU (loss ns)
    shared_negatives: bool | str = "auto"
    loss: str = "ns"                 # ns (negative sampling) | hs (hierarchical softmax) | nce | sampled_softmax
    sampler: str = "unigram"         # one of SAMPLERS (see docs/samplers.md)
    dns_candidates: int = 20         # dns: unigram candidates scored per example (>= negative)
    dns_softmax: bool = False        # dns: draw K from the softmax of the scores instead of the top K
    shared_group: int = 8            # shared: consecutive examples that share one draw
    logq_correction: bool = False    # add -log q(w) to every logit of word w (q: the sampler's distribution)
    subwords: bool = False           # fastText's model: a word's input vector is the mean of its row and its n-gram rows
    minn: int = 3                    # subwords: shortest character n-gram of "<word>"
    maxn: int = 6                    # subwords: longest; 0 = no n-grams (the word model)
    buckets: int = 2_000_000         # subwords: hashed n-gram rows after the V word rows (buckets x dim x 4 B of memory)
    softmax_normaliser: str = "joint"  # sampled_softmax: joint (positive + samples) | samples (Bengio & Senecal)
    negative_subsample: float = 0.0  # discard a noise word w with word2vec's subsampling formula at this threshold; 0 = off
    two_group_threshold: int = 100   # two_group: words of at least this count are the frequent group
    two_group_mix: float = 0.0       # two_group: P(frequent group); 0 = by group sizes
    target_beta: float = 1.0         # rejection, mh: target count^ns_exponent * exp(beta * score)
    rejection_rounds: int = 8        # rejection: proposals per noise word
    mh_chain: str = "example"        # mh: example (a chain per example) | batch (chains carried across batches, MCNS)
    mh_burn_in: int = 10             # mh with chain example: steps discarded
    hard_negatives: int = 2          # neighbours: noise words per example from the pool (the rest unigram)
    neighbour_from: int = 10         # neighbours: pool = neighbour ranks neighbour_from..neighbour_to
    neighbour_to: int = 100
    neighbour_refresh_chunks: int = 0  # neighbours: rebuild the pools every N chunks; 0 = each epoch start


@dataclass
class TrainConfig:
    epochs: int = 5
    alpha: float = 0.025
    min_alpha: float = 0.0001
    batch_size: int = 1024           # examples per update: pairs (per-pair skip-gram) or centre words
    chunk_tokens: int = 0            # corpus tokens prepared at once; 0 = auto (see chunk_tokens_for)
    threads: int = 0                 # 0 = all cores
    workers: int = 1                 # Hogwild threads sharing the tables; threads are split among them
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    backend: str = "auto"            # auto | torch | fused (C kernel on CPU, Triton on CUDA)
    seed: int = 1
    checkpoint_minutes: float = 10.0  # also checkpoint mid-epoch this often (at a chunk end); 0 = epoch ends only
    init_vectors: str = ""           # word2vec file whose vectors start the rows of the words it shares with the vocab
    #                                  (model.subwords: a subword model, whose buckets start too: continued training)
    init_lockf: float = 1.0          # update factor of those rows: 1 trains them, 0 keeps them fixed (gensim's lockf)


@dataclass
class OutputConfig:
    dir: str = "runs/default"
    binary: bool = True              # also write word_embedding.bin (word2vec.c binary format)
    projector: bool = False          # also write vectors.tsv + metadata.tsv for the embedding projector
    projector_words: int = 10_000    # the projector files hold this many most frequent words


@dataclass
class DistributedConfig:
    backend: str = "auto"            # auto (nccl on CUDA, gloo on CPU) | gloo | nccl; used under torchrun only
    sync_every_words: int = 65_536   # words each rank trains between two merges (rounded to whole chunks)
    sync: str = "all"                # all: whole tables | touched: only the rows some rank changed
    merge: str = "sum"               # sum: add up every rank's changes | average: mean of the replicas


@dataclass
class Config:
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTION_TYPES = {"corpus": CorpusConfig, "vocab": VocabConfig, "model": ModelConfig,
                  "train": TrainConfig, "output": OutputConfig, "distributed": DistributedConfig}


def _all_keys() -> list[str]:
    return [f"{s}.{f.name}" for s, cls in _SECTION_TYPES.items() for f in dataclasses.fields(cls)]


# Error messages show a value cut to a short prefix (a YAML alias bomb must not print megabytes).
_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist, _short.maxdict, _short.maxlevel = 60, 60, 6, 4, 2


def show(value: Any) -> str:
    """A bounded repr of a config value for error messages."""
    return _short.repr(value)


def _unknown(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key[:100], _all_keys() + list(_SECTION_TYPES), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(_all_keys())}"
    return ConfigError(f"{where}: unknown config key {show(key)}{hint}")


# Switches whose default, 'auto', is settled per device when a run starts (core.settle).
AUTO_BOOLS = {"model.shared_negatives"}


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """Convert a YAML (or --set string) value to the type of the field's default."""
    expected = type(default)
    if key in AUTO_BOOLS and isinstance(value, str) and value.lower() == "auto":
        return "auto"
    if expected is bool or key in AUTO_BOOLS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        also = ", false or auto" if key in AUTO_BOOLS else " or false"
        raise ConfigError(f"{where}: '{key}' must be true{also}, got {show(value)}")
    if expected is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be an integer, got {show(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value)
                return int(number) if number.is_integer() else int(value)
            except (ValueError, OverflowError):
                pass
        raise ConfigError(f"{where}: '{key}' must be an integer, got {show(value)}")
    if expected is float:
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise TypeError
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}: '{key}' must be a number, got {show(value)}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}: '{key}' must be a finite number, got {show(value)}")
        return number
    if expected is list:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            for v in value:
                _check_path(key, v, where)
            return list(value)
        raise ConfigError(f"{where}: '{key}' must be a path or a list of paths, got {show(value)}")
    if expected is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            _check_path(key, text, where)
            return text
        raise ConfigError(f"{where}: '{key}' must be a string, got {show(value)}")
    raise ConfigError(f"{where}: '{key}' has an unsupported type")


def _check_path(key: str, text: str, where: str) -> None:
    """Strings name paths or choices; a NUL byte would fail deep inside the OS calls."""
    if "\0" in text:
        raise ConfigError(f"{where}: '{key}' must not contain a NUL character, got {show(text)}")


# Every numeric key's accepted range, in one place: (lowest, highest, why the bound / what 0 means).
# The upper bounds keep each value where the trainer can use it (ids are int32, so a vocabulary
# holds at most 2**31 - 1 words; count ** ns_exponent must stay finite in float64 for counts up
# to 2**63) or where a larger value can only be a typo (a 1e30-epoch run never ends).
LIMITS: dict[str, tuple[float, float, str]] = {
    "corpus.max_sentence_length": (1, 10_000_000, ""),
    "corpus.read_threads": (0, 1024, "0 = all cores"),
    "vocab.min_count": (1, 10**15, ""),
    "vocab.max_vocab_size": (0, 2**31 - 1, "0 = no cap; word ids are 32-bit"),
    "vocab.max_distinct_words": (1000, 2**31 - 1, ""),
    "model.dim": (1, 100_000, ""),
    "model.window": (1, 10_000, ""),
    "model.negative": (1, 1000, ""),
    "model.ns_exponent": (0, 10, "count ** ns_exponent must stay finite"),
    "model.sample": (0, 1, "0 turns subsampling off"),
    "model.dns_candidates": (1, 10_000, ""),
    "model.shared_group": (1, 1_000_000, ""),
    "model.minn": (1, 1000, ""),
    "model.maxn": (0, 1000, "0 = no n-grams"),
    "model.buckets": (1, 2**31 - 1, "input rows are 32-bit ids: the vocabulary and the buckets together stay below 2**31"),
    "model.negative_subsample": (0, 1, "0 = off"),
    "model.two_group_threshold": (1, 10**15, ""),
    "model.two_group_mix": (0, 1, "0 = by group sizes"),
    "model.target_beta": (-100, 100, ""),
    "model.rejection_rounds": (1, 10_000, ""),
    "model.mh_burn_in": (0, 100_000, ""),
    "model.hard_negatives": (0, 1000, ""),
    "model.neighbour_from": (1, 2**31 - 1, ""),
    "model.neighbour_to": (1, 2**31 - 1, ""),
    "model.neighbour_refresh_chunks": (0, 2**31 - 1, "0 = each epoch start"),
    "train.epochs": (1, 100_000, ""),
    "train.alpha": (0, 10, ""),
    "train.min_alpha": (0, 10, ""),
    "train.batch_size": (1, 1 << 24, ""),
    "train.chunk_tokens": (0, 1 << 30, "0 = auto"),
    "train.threads": (0, 4096, "0 = all cores"),
    "train.workers": (1, 1024, ""),
    "train.seed": (0, 2**32 - 1, ""),
    "train.checkpoint_minutes": (0, 1_000_000, "0 = at epoch ends only"),
    "train.init_lockf": (0, 1, "0 = pretrained rows kept fixed, 1 = trained as the others"),
    "distributed.sync_every_words": (1, 1 << 40, ""),
}


def _check_ranges(cfg: Config, where: str, sources: dict[str, str] | None = None) -> None:
    """Reject values outside what the trainer accepts, naming the key, where its value came from
    (the file or `--set KEY`) and the accepted range."""
    sources = sources or {}

    def need(ok: bool, key: str, what: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{sources.get(key, where)}: '{key}' must be {what}, got {show(value)}")

    for key, (lo, hi, note) in LIMITS.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        what = f">= {lo:,} and <= {hi:,}" + (f" ({note})" if note else "")
        need(lo <= value <= hi, key, what, value)

    m, t = cfg.model, cfg.train
    need(m.arch in ("skipgram", "cbow"), "model.arch", "'skipgram' or 'cbow'", m.arch)
    need(m.loss in LOSSES, "model.loss", "one of " + ", ".join(LOSSES), m.loss)
    need(m.sampler in SAMPLERS, "model.sampler", "one of " + ", ".join(SAMPLERS), m.sampler)
    # DNS keeps the top model.negative of its candidates, so it needs at least that many; the
    # other samplers ignore dns_candidates.
    need(m.sampler != "dns" or m.dns_candidates >= m.negative, "model.dns_candidates",
         f">= model.negative ({m.negative}) with model.sampler: dns", m.dns_candidates)
    need(m.loss != "hs" or m.sampler == "unigram", "model.sampler",
         "'unigram' (the default) with model.loss: hs, which draws no noise words", m.sampler)
    need(not m.logq_correction or (m.loss == "ns" and m.sampler not in NO_FIXED_Q), "model.logq_correction",
         "false with model.loss other than ns (hs: no noise; nce, sampled_softmax: corrected already) or model.sampler: "
         + ", ".join(NO_FIXED_Q) + " (no fixed sampling distribution to correct for)", m.logq_correction)
    need(m.loss not in ("nce", "sampled_softmax") or m.sampler not in NO_FIXED_Q, "model.sampler",
         f"not one of {', '.join(NO_FIXED_Q)} with model.loss: {m.loss}, which needs the noise distribution q(w)",
         m.sampler)
    need(m.loss != "hs" or m.negative_subsample == 0, "model.negative_subsample", "0 with model.loss: hs",
         m.negative_subsample)
    need(m.softmax_normaliser in ("joint", "samples"), "model.softmax_normaliser", "'joint' or 'samples'",
         m.softmax_normaliser)
    need(m.mh_chain in ("example", "batch"), "model.mh_chain", "'example' or 'batch'", m.mh_chain)
    need(m.sampler != "neighbours" or m.hard_negatives <= m.negative, "model.hard_negatives",
         f"<= model.negative ({m.negative}) with model.sampler: neighbours", m.hard_negatives)
    need(m.neighbour_from <= m.neighbour_to, "model.neighbour_to", f">= model.neighbour_from ({m.neighbour_from})",
         m.neighbour_to)
    need(m.maxn == 0 or m.minn <= m.maxn, "model.minn", f"<= model.maxn ({m.maxn}), or model.maxn 0 (no n-grams)",
         m.minn)
    need(t.alpha > 0, "train.alpha", "> 0", t.alpha)
    need(t.min_alpha <= t.alpha, "train.min_alpha", f"between 0 and train.alpha ({t.alpha})", t.min_alpha)
    need(t.chunk_tokens == 0 or t.chunk_tokens >= 1024, "train.chunk_tokens", ">= 1024, or 0 (auto)",
         t.chunk_tokens)
    need(t.backend in ("auto", "torch", "fused"), "train.backend", "'auto', 'torch' or 'fused'", t.backend)
    dev = t.device
    need(dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit() and len(dev) <= 9),
         "train.device", "'auto', 'cpu', 'cuda' or 'cuda:N'", dev)
    need(bool(cfg.output.dir), "output.dir", "a directory path", cfg.output.dir)
    need(cfg.output.projector_words >= 1, "output.projector_words", ">= 1", cfg.output.projector_words)
    d = cfg.distributed
    need(d.backend in ("auto", "gloo", "nccl"), "distributed.backend", "'auto', 'gloo' or 'nccl'", d.backend)
    need(d.sync in ("all", "touched"), "distributed.sync", "'all' or 'touched'", d.sync)
    need(d.merge in ("sum", "average"), "distributed.merge", "'sum' or 'average'", d.merge)


def chunk_tokens_for(t: TrainConfig, device_type: str) -> int:
    """train.chunk_tokens, with 0 (auto) resolved for the device: 64Ki tokens keep a CPU's example
    buffers in cache-friendly bounds; a GPU wants fewer, larger kernel launches (1Mi tokens gave
    35M vs 24M words/s for skip-gram on an H200, BENCHMARKS.md)."""
    if t.chunk_tokens:
        return t.chunk_tokens
    return 1 << 20 if device_type == "cuda" else 1 << 16


def _apply(cfg: Config, section: str, key: str, value: Any, where: str) -> str:
    """Set section.key from a YAML or --set value; returns the full key."""
    if section not in _SECTION_TYPES:
        raise _unknown(section if not key else f"{section}.{key}", where)
    obj = getattr(cfg, section)
    names = {f.name for f in dataclasses.fields(obj)}
    if key not in names:
        raise _unknown(f"{section}.{key}", where)
    full = f"{section}.{key}"
    setattr(obj, key, _coerce(full, value, getattr(obj, key), where))
    return full


def build_config(data: dict | None, where: str = "config", overrides: list = ()) -> Config:
    """Build a validated Config from a parsed YAML mapping plus `key=value` overrides."""
    cfg = Config()
    sources: dict[str, str] = {}  # key -> where its value came from, for range errors
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of sections "
                          f"({', '.join(_SECTION_TYPES)}), "
                          f"got {type(data).__name__}")
    for section, body in data.items():
        if section not in _SECTION_TYPES:
            raise _unknown(str(section), where)
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: section '{section}' must be a mapping of keys, got {show(body)}")
        for key, value in body.items():
            sources[_apply(cfg, section, str(key), value, where)] = where
    for item in overrides:
        # An override is "key=value" from --set, or (label, "key=value") from a command-line flag
        # whose errors name the flag.
        label, item = item if isinstance(item, tuple) else (None, item)
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set {show(item)}: expected section.key=value, e.g. train.epochs=3")
        dotted, raw = item.split("=", 1)
        dotted = dotted.strip()
        section, key = dotted.split(".", 1)
        here = label or f"--set {dotted}"
        value = parse_yaml(raw, here) if raw.strip() else ""
        if section == "corpus" and key == "paths" and isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        sources[_apply(cfg, section, key, value, here)] = here
    _check_ranges(cfg, where, sources)
    return cfg


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a YAML config file; relative corpus/output paths are kept as written (relative to cwd)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror or e})") from None
    return config_from_bytes(raw, str(path), overrides)


def config_from_bytes(raw: bytes, where: str, overrides: list[str] = ()) -> Config:
    """The Config in a config file's bytes; `where` (the file's name) starts every error."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{where}: line {line}: not UTF-8 (byte 0x{raw[e.start]:02x}); "
                          f"save the config file as UTF-8") from None
    return build_config(parse_yaml(text, where), where=where, overrides=overrides)


def save_config(cfg: Config, path: str | Path) -> None:
    from .atomic import atomic_write
    with atomic_write(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)


# A config is a few dozen scalars two levels deep: more values than this after alias expansion is
# an alias bomb, and deeper brackets than this (which PyYAML parses in quadratic time) a mistake.
MAX_YAML_VALUES = 10_000
MAX_YAML_DEPTH = 64
# libyaml's parser when PyYAML was built with it (the same nodes and errors, many times faster).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML, refusing what yaml.safe_load would take silently or choke on: duplicate keys
    (YAML keeps the last), alias expansion beyond MAX_YAML_VALUES values, recursive aliases and
    nesting too deep; every error names `where` (the file or `--set KEY`) and the line."""
    depth = 0
    for bracket in (re.sub(r"[^][{}]", "", text)):
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{where}: YAML nested more than {MAX_YAML_DEPTH} brackets deep")
    loader = None
    try:
        loader = _LOADER(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_tree(node, where)
        try:
            return loader.construct_document(node)
        except (ValueError, IndexError, TypeError, OverflowError) as e:
            # PyYAML's constructors raise these on a tagged scalar they cannot read (`!!float ''`).
            raise ConfigError(f"{where}: not valid YAML: a tagged value that cannot be read ({type(e).__name__}: "
                              f"{show(str(e))[1:-1]})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow (pure-Python parser)
            at = f" at line {text.count(chr(10), 0, e.position) + 1}"
            what = f"character {e.character!r} is not allowed"
        else:
            what = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}: not valid YAML{at}: {show(what)[1:-1]}") from None
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(f"{where}: YAML nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"{where}: a value cannot be read: {show(str(e))[1:-1]}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_tree(root: yaml.Node, where: str) -> None:
    """Duplicate mapping keys, recursive aliases and the size the tree has once aliases are
    expanded (counted without expanding them), walked without recursion."""
    size: dict[int, int] = {}  # id(node) -> values below it, aliases expanded
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            size[id(node)] = 1
            continue
        if done:
            on_path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            if size[id(node)] > MAX_YAML_VALUES:
                raise ConfigError(f"{where}: line {node.start_mark.line + 1}: the YAML expands to more "
                                  f"than {MAX_YAML_VALUES:,} values (aliases of aliases?); a config "
                                  f"holds a few dozen")
            continue
        if id(node) in on_path:
            raise ConfigError(f"{where}: line {node.start_mark.line + 1}: a YAML alias refers to itself")
        on_path.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise ConfigError(f"{where}: line {line}: duplicate key {show(key_node.value)} (first at "
                                      f"line {seen[key_node.value]}); YAML would keep only the last: "
                                      f"merge them into one")
                seen[key_node.value] = line
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise ConfigError(f"{where}: line {child.start_mark.line + 1}: a YAML alias refers to "
                                  f"itself")
            stack.append((child, False))
