"""Typed, validated configuration: YAML -> dataclasses, with errors that name the key."""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# model.sampler's values; the classes are in w2v/samplers.py.
SAMPLERS = ("unigram", "uniform", "dns", "in_batch", "mixed", "shared")


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
    shared_negatives: bool = True    # skip-gram: one noise draw per window, not per pair (pWord2Vec)
    loss: str = "ns"                 # ns (negative sampling) | hs (hierarchical softmax)
    sampler: str = "unigram"         # unigram | uniform | dns | in_batch | mixed | shared (see docs/samplers.md)
    dns_candidates: int = 20         # dns: unigram candidates scored per example (>= negative)
    dns_softmax: bool = False        # dns: draw K from the softmax of the scores instead of the top K
    shared_group: int = 8            # shared: consecutive examples that share one draw
    logq_correction: bool = False    # add -log q(w) to every logit of word w (q: the sampler's distribution)


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


@dataclass
class OutputConfig:
    dir: str = "runs/default"
    binary: bool = True              # also write word_embedding.bin (word2vec.c binary format)


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


def _unknown(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, _all_keys() + list(_SECTION_TYPES), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(_all_keys())}"
    return ConfigError(f"{where}: unknown config key '{key}'{hint}")


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """Convert a YAML (or --set string) value to the type of the field's default."""
    expected = type(default)
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
    if expected is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(float(value)) if float(value).is_integer() else int(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
    if expected is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}") from None
    if expected is list:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{where}: '{key}' must be a path or a list of paths, got {value!r}")
    if expected is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: '{key}' must be a string, got {value!r}")
    raise ConfigError(f"{where}: '{key}' has an unsupported type")


def _check_ranges(cfg: Config, where: str) -> None:
    """Reject values outside what the trainer accepts, naming the key and the accepted range."""
    def need(ok: bool, key: str, what: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{where}: '{key}' must be {what}, got {value!r}")

    m, t, v, c = cfg.model, cfg.train, cfg.vocab, cfg.corpus
    need(m.arch in ("skipgram", "cbow"), "model.arch", "'skipgram' or 'cbow'", m.arch)
    need(m.dim >= 1, "model.dim", ">= 1", m.dim)
    need(m.window >= 1, "model.window", ">= 1", m.window)
    need(m.negative >= 1, "model.negative", ">= 1", m.negative)
    need(m.ns_exponent >= 0, "model.ns_exponent", ">= 0", m.ns_exponent)
    need(m.sample >= 0, "model.sample", ">= 0 (0 turns subsampling off)", m.sample)
    need(m.loss in ("ns", "hs"), "model.loss", "'ns' or 'hs'", m.loss)
    need(m.sampler in SAMPLERS, "model.sampler", "one of " + ", ".join(SAMPLERS), m.sampler)
    need(m.dns_candidates >= m.negative, "model.dns_candidates", f">= model.negative ({m.negative})",
         m.dns_candidates)
    need(m.shared_group >= 1, "model.shared_group", ">= 1", m.shared_group)
    need(m.loss == "ns" or m.sampler == "unigram", "model.sampler",
         "'unigram' (the default) with model.loss: hs, which draws no noise words", m.sampler)
    need(not m.logq_correction or (m.loss == "ns" and m.sampler != "dns"), "model.logq_correction",
         "false with model.loss: hs or model.sampler: dns (no sampling distribution to correct for)",
         m.logq_correction)
    need(v.min_count >= 1, "vocab.min_count", ">= 1", v.min_count)
    need(v.max_vocab_size >= 0, "vocab.max_vocab_size", ">= 0 (0 = no cap)", v.max_vocab_size)
    need(v.max_distinct_words >= 1000, "vocab.max_distinct_words", ">= 1000", v.max_distinct_words)
    need(c.max_sentence_length >= 1, "corpus.max_sentence_length", ">= 1", c.max_sentence_length)
    need(0 <= c.read_threads <= 1024, "corpus.read_threads", "between 0 (all cores) and 1024", c.read_threads)
    need(t.epochs >= 1, "train.epochs", ">= 1", t.epochs)
    need(t.alpha > 0, "train.alpha", "> 0", t.alpha)
    need(0 <= t.min_alpha <= t.alpha, "train.min_alpha", "between 0 and train.alpha", t.min_alpha)
    need(t.batch_size >= 1, "train.batch_size", ">= 1", t.batch_size)
    need(t.chunk_tokens == 0 or t.chunk_tokens >= 1024, "train.chunk_tokens", ">= 1024, or 0 (auto)",
         t.chunk_tokens)
    need(t.threads >= 0, "train.threads", ">= 0 (0 = all cores)", t.threads)
    need(t.workers >= 1, "train.workers", ">= 1", t.workers)
    need(t.checkpoint_minutes >= 0, "train.checkpoint_minutes", ">= 0 (0 = at epoch ends only)", t.checkpoint_minutes)
    need(t.backend in ("auto", "torch", "fused"), "train.backend", "'auto', 'torch' or 'fused'", t.backend)
    dev = t.device
    need(dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit()),
         "train.device", "'auto', 'cpu', 'cuda' or 'cuda:N'", dev)
    need(bool(cfg.output.dir), "output.dir", "a directory path", cfg.output.dir)
    d = cfg.distributed
    need(d.backend in ("auto", "gloo", "nccl"), "distributed.backend", "'auto', 'gloo' or 'nccl'", d.backend)
    need(d.sync_every_words >= 1, "distributed.sync_every_words", ">= 1", d.sync_every_words)
    need(d.sync in ("all", "touched"), "distributed.sync", "'all' or 'touched'", d.sync)
    need(d.merge in ("sum", "average"), "distributed.merge", "'sum' or 'average'", d.merge)


def chunk_tokens_for(t: TrainConfig, device_type: str) -> int:
    """train.chunk_tokens, with 0 (auto) resolved for the device: 64Ki tokens keep a CPU's example
    buffers in cache-friendly bounds; a GPU wants fewer, larger kernel launches (1Mi tokens gave
    35M vs 24M words/s for skip-gram on an H200, BENCHMARKS.md)."""
    if t.chunk_tokens:
        return t.chunk_tokens
    return 1 << 20 if device_type == "cuda" else 1 << 16


def _apply(cfg: Config, section: str, key: str, value: Any, where: str) -> None:
    if section not in _SECTION_TYPES:
        raise _unknown(section if not key else f"{section}.{key}", where)
    obj = getattr(cfg, section)
    names = {f.name for f in dataclasses.fields(obj)}
    if key not in names:
        raise _unknown(f"{section}.{key}", where)
    full = f"{section}.{key}"
    setattr(obj, key, _coerce(full, value, getattr(obj, key), where))


def build_config(data: dict | None, where: str = "config", overrides: list[str] = ()) -> Config:
    """Build a validated Config from a parsed YAML mapping plus `key=value` overrides."""
    cfg = Config()
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
            raise ConfigError(f"{where}: section '{section}' must be a mapping of keys, got {body!r}")
        for key, value in body.items():
            _apply(cfg, section, str(key), value, where)
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.epochs=3")
        dotted, raw = item.split("=", 1)
        section, key = dotted.split(".", 1)
        value = yaml.safe_load(raw) if raw else ""
        if section == "corpus" and key == "paths" and isinstance(value, str):
            value = [p for p in value.split(",") if p]
        _apply(cfg, section, key, value, f"--set {dotted}")
    _check_ranges(cfg, where)
    return cfg


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a YAML config file; relative corpus/output paths are kept as written (relative to cwd)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    return build_config(data, where=str(path), overrides=overrides)


def save_config(cfg: Config, path: str | Path) -> None:
    from .atomic import atomic_write
    with atomic_write(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
