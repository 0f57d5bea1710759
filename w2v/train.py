"""Command line: `python -m w2v.train --corpus FILE_OR_FOLDER [--output DIR] [--dim N ...]` or
`--config FILE`, `--set key=value` on top of either; also run once per rank by
`torchrun --nproc_per_node N -m w2v.train ...`."""
from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import signal
import sys
from pathlib import Path

from . import logs, outputset
from .checkpoint import CHECKPOINT_NAME, CheckpointError, describe_position
from .config import Config, ConfigError, build_config, load_config
from .distributed import DistributedError, env_rank, env_world_size
from .errors import TrainingError
from .lock import LockError, mark_cache_dir, output_lock
from .loop import Interrupted
from .reader import CorpusError
from .trainer import train
from .vocab import VocabError

EXIT_INPUT = 2       # bad config, corpus, vocabulary or checkpoint; diverged; out of memory or disk
EXIT_INTERRUPT = 130  # stopped by Ctrl-C or SIGTERM

log = logging.getLogger("w2v")


def _setup_logging(out_dir: Path, quiet: bool, rank: int = 0) -> None:
    """INFO and up to stderr (WARNING with --quiet) and always to output.dir/train.log, appended.
    Under torchrun only rank 0 writes the log; the other ranks print warnings only, tagged."""
    tag = f"[rank {rank}] " if env_world_size() > 1 else ""
    logs.setup(out_dir, quiet or bool(rank), tag, file_too=not rank)


def _fail(message: str, code: int, level: int = logging.ERROR) -> int:
    """Print the error to stderr and record it in train.log (when logging is set up)."""
    logs.say(message)
    if log.handlers:
        log.log(level, "%s", message, extra={"file_only": True})
    return code


class _Signals:
    """Outside the training loop (which stops at a chunk end, w2v/trainer.py) Ctrl-C and SIGTERM
    stop the run at once, as a KeyboardInterrupt the CLI turns into a message and exit 130."""

    def __init__(self):
        self.received: str | None = None
        self._previous: dict = {}

    def __enter__(self):
        def handler(signum, frame):
            self.received = signal.Signals(signum).name
            raise KeyboardInterrupt
        try:
            self._previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread (an embedding program handles signals itself)
            self._previous = {}
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def _os_error_message(e: OSError) -> str:
    hint = ""
    if e.errno == errno.ENOSPC:
        hint = " (disk full: free space or set output.dir elsewhere; the output set already there is untouched)"
    return f"error: {e.filename or ''}: {e.strerror or e}{hint}"


def _os_error_within(e: BaseException) -> OSError | None:
    """The OSError an exception was raised while handling, if any (a few levels deep)."""
    for _ in range(5):
        e = e.__cause__ or e.__context__
        if e is None or isinstance(e, OSError):
            return e
    return None


def _interrupted_message(out_dir: Path, signal_name: str | None) -> str:
    ckpt = out_dir / CHECKPOINT_NAME
    what = f"interrupted ({signal_name or 'SIGINT'}): stopped at once"
    if ckpt.exists():
        return f"{what}; the last checkpoint is kept ({ckpt}): continue with --resume"
    return f"{what}, before any checkpoint; the output set in {out_dir} is as it was before this run"


def _warn_if_interrupted_checkpoint(out_dir: Path) -> None:
    """A run without --resume in a folder whose checkpoint is mid-run: say so before starting over.
    The old checkpoint stays until this run writes its first."""
    path = out_dir / CHECKPOINT_NAME
    if not path.exists():
        return
    try:
        import torch
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        epochs = state["config"]["train"]["epochs"]
        position = {k: state.get(k) for k in ("epoch", "chunk", "chunks")}
    except Exception:  # a damaged or foreign file: --resume would say so; nothing to warn about here
        return
    if position["epoch"] < epochs:
        log.warning("%s holds an interrupted run (stopped at %s; %d epochs in all); this run starts over without --resume "
                    "and replaces it at its first checkpoint: to continue that run instead, stop this one "
                    "and rerun with --resume", path, describe_position(position), epochs)


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
    parser.add_argument("--accept-changed-corpus", action="store_true",
                        help="with --resume: accept corpus files whose dates changed if their content did not")
    return parser


def flag_overrides(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The flags given, as (flag, `key=value`) overrides applied before the `--set` ones; a flag and a
    `--set` of the same key is a ConfigError naming both."""
    set_keys = {item.split("=", 1)[0].strip() for item in args.set}
    overrides = []
    for flag, (key, *_) in FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if key in set_keys:
            raise ConfigError(f"--{flag.replace('_', '-')} and --set {key} both set '{key}'; give only one")
        # JSON is YAML: lists and 'cuda:0' survive; a range error names the flag.
        overrides.append((f"--{flag.replace('_', '-')}", f"{key}={json.dumps(value)}"))
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
        with _Signals() as signals:
            return _run(args, argv, signals)
    finally:
        logs.close()
        if logs.console.broken:  # nobody reads stderr any more: let the interpreter exit quietly
            _silence_std_streams()


def _silence_std_streams() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


def _run(args, argv, signals: _Signals) -> int:
    out_dir = None
    try:
        cfg = make_config(args)
        out_dir, rank = Path(cfg.output.dir), env_rank()
        with output_lock(out_dir) if rank == 0 else contextlib.nullcontext():
            if rank == 0:
                outputset.recover(out_dir)  # finish an output set a killed run left half committed
                mark_cache_dir(cfg.corpus.cache_dir or out_dir / "cache")
            _setup_logging(out_dir, args.quiet, rank)
            log.info("w2v.train %s", " ".join(sys.argv[1:] if argv is None else argv))
            if not args.resume and rank == 0:
                _warn_if_interrupted_checkpoint(out_dir)
            if args.accept_changed_corpus:
                if not args.resume:
                    raise ConfigError("--accept-changed-corpus goes with --resume")
                from .touched import relabel_if_same_corpus
                if rank == 0:
                    relabel_if_same_corpus(cfg)
            train(cfg, resume=args.resume, quiet=args.quiet)
    except KeyboardInterrupt:
        if out_dir is None:
            return _fail(f"interrupted ({signals.received or 'SIGINT'}) while reading the config", EXIT_INTERRUPT)
        return _fail(_interrupted_message(out_dir, signals.received), EXIT_INTERRUPT, logging.WARNING)
    except (ConfigError, CorpusError, VocabError, CheckpointError, TrainingError, DistributedError,
            LockError) as e:
        return _fail(f"error: {e}", EXIT_INPUT)
    except OSError as e:
        return _fail(_os_error_message(e), EXIT_INPUT)
    except RuntimeError as e:
        cause = _os_error_within(e)  # torch.save reports a failed write as a RuntimeError
        if cause is None:
            raise
        return _fail(_os_error_message(cause), EXIT_INPUT)
    except MemoryError:
        return _fail("error: out of memory: lower train.chunk_tokens or train.batch_size, or model.dim "
                     "(the memory estimate is in train.log)", EXIT_INPUT)
    except Interrupted as e:
        return _fail(str(e), EXIT_INTERRUPT, logging.WARNING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
