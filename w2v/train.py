"""Command line: `python -m w2v.train --corpus FILE_OR_FOLDER [--output DIR] [--dim N ...]` or
`--config FILE`, `--set key=value` on top of either; also run once per rank by
`torchrun --nproc_per_node N -m w2v.train ...`."""
from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from pathlib import Path

from .checkpoint import CheckpointError
from .config import Config, ConfigError, build_config, load_config
from .distributed import DistributedError, env_rank, env_world_size
from .errors import TrainingError
from .loop import Interrupted
from .reader import CorpusError
from .trainer import train
from .vocab import VocabError

EXIT_INPUT = 2       # bad config, corpus, vocabulary or checkpoint; diverged; out of memory or disk
EXIT_INTERRUPT = 130  # stopped by Ctrl-C or SIGTERM after a checkpoint

log = logging.getLogger("w2v")


def _file_only(record: logging.LogRecord) -> bool:
    """Console filter: records marked file_only are already printed as `error: ...`."""
    return not getattr(record, "file_only", False)


def _setup_logging(out_dir: Path, quiet: bool, rank: int = 0) -> None:
    """INFO and up to stderr (WARNING with --quiet) and always to output.dir/train.log, appended.
    Under torchrun only rank 0 writes the log; the other ranks print warnings only, tagged."""
    tag = f"[rank {rank}] " if env_world_size() > 1 else ""
    fmt = logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(message)s", "%H:%M:%S")
    log.setLevel(logging.INFO)
    _close_logging()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    console.setLevel(logging.WARNING if quiet or rank else logging.INFO)
    console.addFilter(_file_only)
    log.addHandler(console)
    if rank:
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(out_dir / "train.log", encoding="utf-8")
        handler.setFormatter(fmt)
        log.addHandler(handler)
    except OSError:
        pass  # an unwritable output dir is reported by the trainer with its key


def _close_logging() -> None:
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def _fail(message: str, code: int, level: int = logging.ERROR) -> int:
    """Print the error to stderr and record it in train.log (when logging is set up)."""
    print(message, file=sys.stderr)
    if log.handlers:  # else the record would reach Python's last-resort handler: printed twice
        log.log(level, "%s", message, extra={"file_only": True})
    return code


# The word2vec.c-style flags: flag -> (config key, type, metavar, the word2vec.c / fastText option
# it stands for). A flag sets its key as a `--set` of it would: over the config file, and never
# beside a `--set` of the same key.
FLAGS = {
    "corpus": ("corpus.paths", str, "FILE_OR_FOLDER", "word2vec.c -train, fastText -input"),
    "output": ("output.dir", str, "DIR", "word2vec.c -output"),
    "arch": ("model.arch", str, None, "word2vec.c -cbow 0|1"),
    "dim": ("model.dim", int, "N", "word2vec.c -size, fastText -dim"),
    "window": ("model.window", int, "N", "word2vec.c -window, fastText -ws"),
    "negative": ("model.negative", int, "N", "word2vec.c -negative, fastText -neg"),
    "min_count": ("vocab.min_count", int, "N", "word2vec.c -min-count, fastText -minCount"),
    "sample": ("model.sample", float, "T", "word2vec.c -sample, fastText -t"),
    "alpha": ("train.alpha", float, "LR", "word2vec.c -alpha, fastText -lr"),
    "epochs": ("train.epochs", int, "N", "word2vec.c -iter, fastText -epoch"),
    "threads": ("train.threads", int, "N", "word2vec.c -threads, fastText -thread"),
    "device": ("train.device", str, "DEVICE", "auto, cpu, cuda or cuda:N"),
}
_SHOWN_DEFAULTS = {"corpus.paths": "none, required without --config", "train.threads": "0 = all cores"}


def _default(key: str):
    section, name = key.split(".")
    return getattr(getattr(Config(), section), name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m w2v.train",
        description="Train word2vec embeddings: python -m w2v.train --corpus FILE_OR_FOLDER [--output DIR].",
        epilog="Every other setting: --set section.key=value (e.g. --set model.loss=hs); all keys, "
               "their defaults and meaning: README.md, section Configuration. The flags above are "
               "config keys too: they override --config, and giving one and a --set of its key is "
               "an error.")
    for flag, (key, kind, metavar, peer) in FLAGS.items():
        shown = _SHOWN_DEFAULTS.get(key, _default(key))
        parser.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=kind, default=None, metavar=metavar,
                            nargs="+" if flag == "corpus" else None,
                            choices=("skipgram", "cbow") if flag == "arch" else None,
                            help=f"{key} (default: {shown}; {peer})")
    parser.add_argument("--config", metavar="FILE",
                        help="YAML config file (see configs/); optional, the flags and --set override it")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=1 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from output.dir/checkpoint.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    return parser


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """The flags given, as `key=value` overrides applied before the `--set` ones; a flag and a
    `--set` of the same key is a ConfigError naming both."""
    set_keys = {item.split("=", 1)[0].strip() for item in args.set}
    overrides = []
    for flag, (key, *_) in FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if key in set_keys:
            raise ConfigError(f"--{flag.replace('_', '-')} and --set {key} both set '{key}'; give only one")
        overrides.append(f"{key}={json.dumps(value)}")  # JSON is YAML: lists and 'cuda:0' survive
    return overrides


def make_config(args: argparse.Namespace) -> Config:
    """The config file (or the defaults), then the flags, then `--set`."""
    overrides = flag_overrides(args) + args.set
    if args.config:
        return load_config(args.config, overrides)
    return build_config(None, where="command line", overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.config and not args.corpus and not any(s.startswith("corpus.paths=") for s in args.set):
        parser.error("give the text to train on: --corpus FILE_OR_FOLDER (or --config FILE)")
    try:
        return _run(args, argv)
    finally:
        _close_logging()


def _run(args, argv) -> int:
    try:
        cfg = make_config(args)
        _setup_logging(Path(cfg.output.dir), args.quiet, env_rank())
        log.info("w2v.train %s", " ".join(sys.argv[1:] if argv is None else argv))
        train(cfg, resume=args.resume, quiet=args.quiet)
    except (ConfigError, CorpusError, VocabError, CheckpointError, TrainingError, DistributedError) as e:
        return _fail(f"error: {e}", EXIT_INPUT)
    except OSError as e:
        hint = ""
        if e.errno == errno.ENOSPC:
            hint = " (disk full: free space or set output.dir elsewhere; files already there are untouched)"
        return _fail(f"error: {e.filename or ''}: {e.strerror or e}{hint}", EXIT_INPUT)
    except MemoryError:
        return _fail("error: out of memory: lower train.chunk_tokens or train.batch_size, or model.dim "
                     "(the memory estimate is in train.log)", EXIT_INPUT)
    except Interrupted as e:
        return _fail(str(e), EXIT_INTERRUPT, logging.WARNING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
