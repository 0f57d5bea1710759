"""Command line: ask word vectors for neighbours, analogies and similarities, or at a prompt."""

import argparse
import struct
import sys

from w2v import fasttext_bin
from w2v.fasttext_kv import FastTextKeyedVectors
from w2v.keyedvectors import KeyedVectors

PROG = "python -m w2v.query"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__,
        epilog="Without a query option, reads queries from stdin (a prompt on a terminal): one word "
               "lists its neighbours, two words their similarity, three words 'a b c' answer "
               "a : b :: c : ?. An empty line or end of input stops. Exit code 1 when every query "
               "failed, 2 when the vectors cannot be read.")
    p.add_argument("vectors", help="word2vec text or binary file (format detected), a KeyedVectors.save file, "
                   "or a subword model (subword_model, or fastText's .bin: any word gets a vector)")
    p.add_argument("--neighbours", action="append", nargs="+", default=[], metavar="WORD",
                   help="list the nearest words of each WORD (repeatable)")
    p.add_argument("--analogy", action="append", nargs=3, default=[], metavar=("A", "B", "C"),
                   help="answer A : B :: C : ? (repeatable)")
    p.add_argument("--similarity", action="append", nargs=2, default=[], metavar=("A", "B"),
                   help="cosine similarity of A and B (repeatable)")
    p.add_argument("--topn", type=int, default=10, metavar="N", help="answers listed per query (default 10)")
    args = p.parse_args(argv)
    if args.topn < 1:
        p.error(f"--topn must be >= 1, got {args.topn}")
    return args


def load(path):
    """Vectors from any file w2v reads: a subword model (FastTextKeyedVectors.save) or fastText's
    .bin, both with vectors for words outside the vocabulary; a KeyedVectors.save file (tables
    memory-mapped); a word2vec text or binary file."""
    with open(path, "rb") as f:
        head = f.read(len(b"w2v-keyedvectors "))
    if FastTextKeyedVectors.is_saved_model(path):
        return FastTextKeyedVectors.load(path, mmap="r")
    if len(head) >= 4 and struct.unpack("=i", head[:4])[0] == fasttext_bin.MAGIC:
        return fasttext_bin.load_fasttext_bin(path, mmap_tables=True)[0]
    if head == b"w2v-keyedvectors ":
        return KeyedVectors.load(path, mmap="r")
    return KeyedVectors.load_word2vec_format(path)


def _missing(kv, words):
    unknown = [w for w in dict.fromkeys(words) if w not in kv]
    if not unknown:
        return None
    return "not in the vocabulary: " + ", ".join(repr(w) for w in unknown)


def _table(pairs):
    if not pairs:
        return "  (no other words)"
    width = max(len(w) for w, _ in pairs)
    return "\n".join(f"  {w:<{width}}  {s:.4f}" for w, s in pairs)


def _title(kv, word, found):
    """'neighbours of WORD:', saying when the word's vector comes from its n-grams."""
    built = " (not in the vocabulary: from its n-grams)" if found and word not in kv.key_to_index else ""
    return f"neighbours of {word!r}{built}:"


def neighbours(kv, words, topn):
    """[(title, text or None, error or None)]: all known words answered with one matrix product."""
    known = list(dict.fromkeys(w for w in words if w in kv))
    # Unit rows of the query words only: a memory-mapped table is never copied whole.
    scores = kv.cosines(kv.get_vectors(known, norm=True)) if known else []
    found = {w: kv.top(s, topn, [kv.key_to_index[w]] if w in kv.key_to_index else [])
             for w, s in zip(known, scores)}
    return [(_title(kv, w, w in found), _table(found[w]) if w in found else None,
             None if w in found else _missing(kv, [w])) for w in words]


def analogy(kv, a, b, c, topn):
    title = f"{a} : {b} :: {c} : ?"
    error = _missing(kv, [a, b, c])
    if error:
        return title, None, error
    return title, _table(kv.most_similar(positive=[b, c], negative=[a], topn=topn)), None


def similarity(kv, a, b):
    title = f"similarity({a}, {b})"
    error = _missing(kv, [a, b])
    return (title, None, error) if error else (title, f"  {kv.similarity(a, b):.4f}", None)


def _report(answers):
    """Print each answer; returns how many failed."""
    failed = 0
    for title, text, error in answers:
        if error:
            print(f"{title} {error}", file=sys.stderr)
            failed += 1
        else:
            print(f"{title}\n{text}")
    sys.stdout.flush()
    return failed


def _prompt(kv, topn, stream):
    """Answer one query a line until an empty line or end of input; returns (asked, failed)."""
    asked = failed = 0
    interactive = stream.isatty()
    while True:
        if interactive:
            print("words (1: neighbours, 2: similarity, 3: analogy a b c; empty line ends)> ",
                  end="", file=sys.stderr, flush=True)
        line = stream.readline()
        words = line.split()
        if not words:
            return asked, failed
        asked += 1
        if len(words) == 1:
            failed += _report(neighbours(kv, words, topn))
        elif len(words) == 2:
            failed += _report([similarity(kv, *words)])
        elif len(words) == 3:
            failed += _report([analogy(kv, *words, topn)])
        else:
            print(f"{' '.join(words)[:80]}: expected 1, 2 or 3 words, got {len(words)}", file=sys.stderr)
            failed += 1


def load_or_report(path, prog):
    """load(path), or None after printing why it cannot be read (the command lines then exit 2)."""
    try:
        return load(path)
    except (OSError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return None


def main(argv=None):
    args = parse_args(argv)
    kv = load_or_report(args.vectors, PROG)
    if kv is None:
        return 2
    words = [w for group in args.neighbours for w in group]
    if not (words or args.analogy or args.similarity):
        asked, failed = _prompt(kv, args.topn, sys.stdin)
    else:
        answers = neighbours(kv, words, args.topn)
        answers += [analogy(kv, *q, args.topn) for q in args.analogy]
        answers += [similarity(kv, *q) for q in args.similarity]
        asked, failed = len(answers), _report(answers)
    return 1 if asked and failed == asked else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
