"""Command line: `python -m w2v.train --config FILE [--set key=value ...] [--resume] [--quiet]`,
also run once per rank by `torchrun --nproc_per_node N -m w2v.train ...`."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .checkpoint import CheckpointError
from .config import ConfigError, load_config
from .distributed import DistributedError, env_rank, env_world_size
from .reader import CorpusError
from .trainer import Interrupted, TrainingError, train
from .vocab import VocabError

EXIT_INPUT = 2       # bad config, corpus, vocabulary or checkpoint
EXIT_INTERRUPT = 130  # stopped by Ctrl-C after a checkpoint


def _setup_logging(out_dir: Path, quiet: bool, rank: int = 0) -> None:
    """Console and `train.log`; under torchrun only rank 0 writes the log, the others warn on the console."""
    tag = f"[rank {rank}] " if env_world_size() > 1 else ""
    fmt = logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(message)s", "%H:%M:%S")
    logger = logging.getLogger("w2v")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    console.setLevel(logging.WARNING if quiet or rank else logging.INFO)
    logger.addHandler(console)
    if rank:
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(out_dir / "train.log", encoding="utf-8")
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    except OSError:
        pass  # an unwritable output dir is reported by the trainer with its key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2v.train", description="Train word2vec embeddings.")
    parser.add_argument("--config", required=True, help="YAML config file (see configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=1 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from output.dir/checkpoint.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.set)
        _setup_logging(Path(cfg.output.dir), args.quiet, env_rank())
        train(cfg, resume=args.resume, quiet=args.quiet)
    except (ConfigError, CorpusError, VocabError, CheckpointError, TrainingError, DistributedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_INPUT
    except Interrupted as e:
        print(str(e), file=sys.stderr)
        return EXIT_INTERRUPT
    return 0


if __name__ == "__main__":
    sys.exit(main())
