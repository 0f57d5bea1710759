"""Command line: `python -m w2v.prepare --config FILE [--set key=value ...]` or `--corpus FILE ...`:
only the text stage (vocabulary and encoded corpus, cached), so that training then reuses it."""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from .atomic import atomic_write
from .config import ConfigError, build_config, load_config
from .pipeline import prepare
from .reader import CorpusError
from .vocab import VocabError

EXIT_INPUT = 2
EXIT_INTERRUPT = 130

log = logging.getLogger("w2v")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2v.prepare",
                                     description="Count the vocabulary and encode the corpus (cached), without training.")
    parser.add_argument("--config", help="YAML config file (its corpus, vocab and output sections are used)")
    parser.add_argument("--corpus", action="append", default=[], metavar="PATH",
                        help="a corpus file or folder (repeatable); replaces corpus.paths")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set corpus.read_threads=2 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or log, only the summary")
    args = parser.parse_args(argv)
    if not args.config and not args.corpus:
        parser.error("give --config FILE or --corpus PATH")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.setLevel(logging.WARNING if args.quiet else logging.INFO)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return _run(args)
    except (ConfigError, CorpusError, VocabError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_INPUT
    except MemoryError:
        print("error: out of memory while counting: lower vocab.max_distinct_words", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted; nothing was cached", file=sys.stderr)
        return EXIT_INTERRUPT
    finally:
        log.removeHandler(handler)


def _write_vocab(p, path: Path) -> None:
    """vocab.txt: a copy of the cache's vocabulary file (the same bytes Vocab.save writes), or
    written afresh if another run removed that entry meanwhile."""
    try:
        with open(p.vocab_file, "rb") as src, atomic_write(path, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 22)
    except FileNotFoundError:
        p.vocab.save(path)


def _run(args) -> int:
    if args.config:
        cfg = load_config(args.config, args.set)
        if args.corpus:
            cfg.corpus.paths = list(args.corpus)
    else:
        cfg = build_config({"corpus": {"paths": list(args.corpus)}}, "--corpus", args.set)
    out_dir = Path(cfg.output.dir)
    cache_dir = cfg.corpus.cache_dir or str(out_dir / "cache")
    p = prepare(cfg, cache_dir, quiet=args.quiet)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_vocab(p, out_dir / "vocab.txt")
    except OSError as e:
        raise CorpusError(f"{out_dir}: cannot write vocab.txt (output.dir): {e.strerror or e}") from None
    c = p.corpus
    total = p.seconds.get("total", 0.0)
    print(f"tokens: {c.raw_tokens} read, {c.num_tokens} in the vocabulary, {len(c.offsets) - 1} sentences; "
          f"words: {len(p.vocab)}")
    if p.reused:
        print(f"cache: reused ({cache_dir}), nothing read; {total:.2f}s")
    else:
        stages = ", ".join(f"{k} {s:.2f}s" for k, s in p.seconds.items() if k != "total")
        print(f"read: {p.bytes / 1e6:.1f} MB with {'C' if p.native else 'Python'}, {p.threads} threads; "
              f"{stages}; total {total:.2f}s, {p.bytes / 1e6 / max(total, 1e-9):.1f} MB/s, "
              f"{c.raw_tokens / max(total, 1e-9):,.0f} tokens/s")
    print(f"wrote {out_dir / 'vocab.txt'} and the cache in {cache_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
