"""Command line: print a vector for each word read from stdin, in the vocabulary or not (fastText's print-word-vectors)."""

import argparse
import sys

import numpy as np

from w2v.query import load_or_report

PROG = "python -m w2v.print_vectors"
# Words looked up at once when stdin is not a terminal (one batch of n-gram vectors each).
_BATCH_WORDS = 4096


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__,
        epilog="Words are separated by whitespace; each gets one output line 'word v1 ... vD' in input "
               "order (a repeated word is printed again). A subword model computes a word outside its "
               "vocabulary from its n-grams; a word with no vector (no n-gram in range, or any unknown "
               "word of a word model) prints the zero vector, as fastText does, with a warning. "
               "Exit code 2 when the model cannot be read.")
    p.add_argument("model", help="a subword model (subword_model, or fastText's .bin), or any vectors "
                                 "python -m w2v.query reads")
    p.add_argument("--precision", type=int, default=5, metavar="N",
                   help="significant digits per value (default 5, as fastText prints)")
    args = p.parse_args(argv)
    if not 1 <= args.precision <= 9:
        p.error(f"--precision must be 1..9, got {args.precision}")
    return args


def vectors_for(kv, words):
    """[len(words), D]: each word's vector; zeros (and a warning) for a word without one."""
    have = [w in kv for w in words]
    out = np.zeros((len(words), kv.vector_size), dtype=np.float32)
    rows = [i for i, h in enumerate(have) if h]
    if rows:
        out[rows] = kv.get_vectors([words[i] for i in rows])
    missing = [w for w, h in zip(words, have) if not h]
    if missing:
        shown = ", ".join(repr(w) for w in dict.fromkeys(missing[:5]))
        print(f"{PROG}: warning: no vector for {shown}{' ...' if len(missing) > 5 else ''}: printed zeros",
              file=sys.stderr)
    return out


def _batches(stream, interactive):
    """Lists of words: a line at a time on a terminal, else up to _BATCH_WORDS words."""
    words = []
    for line in stream:
        words.extend(line.split())
        if words and (interactive or len(words) >= _BATCH_WORDS):
            yield words
            words = []
    if words:
        yield words


def main(argv=None):
    args = parse_args(argv)
    kv = load_or_report(args.model, PROG)
    if kv is None:
        return 2
    row_fmt = " ".join([f"%.{args.precision}g"] * kv.vector_size)
    for words in _batches(sys.stdin, sys.stdin.isatty()):
        vectors = vectors_for(kv, words)
        sys.stdout.write("".join(f"{w} {row_fmt % tuple(row)}\n" for w, row in zip(words, vectors.tolist())))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # e.g. piped into head
        sys.exit(0)
