"""Command line: `python -m w2v.train --config FILE [--set key=value ...] [--resume] [--quiet]`,
also run once per rank by `torchrun --nproc_per_node N -m w2v.train ...`."""
from __future__ import annotations

import argparse
import errno
import logging
import sys
from pathlib import Path

from .checkpoint import CheckpointError
from .config import ConfigError, load_config
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2v.train", description="Train word2vec embeddings.")
    parser.add_argument("--config", required=True, help="YAML config file (see configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=1 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from output.dir/checkpoint.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    args = parser.parse_args(argv)
    try:
        return _run(args, argv)
    finally:
        _close_logging()


def _run(args, argv) -> int:
    try:
        cfg = load_config(args.config, args.set)
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
