#!/usr/bin/env python
"""Command line: score word vectors on WordSim-353, SimLex-999 and the Google analogies (--oov: a subword
model also scores every pair, the words outside its vocabulary from their n-grams)."""

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data" / "eval"

if (REPO_ROOT / "w2v" / "__init__.py").is_file():
    # Run from a checkout: use the package next to scripts/, even if another copy is installed.
    sys.path.insert(0, str(REPO_ROOT))

from w2v.evaluate import ANALOGIES, SIMLEX999, WORDSIM353, evaluate_all  # noqa: E402
from w2v.query import load  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("embedding", help="word2vec text or binary file (format detected), a KeyedVectors.save "
                   "file, or a subword model (subword_model, or fastText's .bin)")
    p.add_argument("--oov", action="store_true",
                   help="subword models: also score every similarity pair, a word outside the vocabulary "
                        "by its n-gram vector (coverage 100%%), next to the in-vocabulary scores")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--restrict-vocab", type=int, default=30000, metavar="N",
                   help="analogy answers and questions limited to the N most frequent words (default 30000)")
    p.add_argument("--wordsim", default=str(DATA_DIR / WORDSIM353), metavar="PATH",
                   help=f"word pairs, 'w1<TAB>w2<TAB>score' (default data/eval/{WORDSIM353})")
    p.add_argument("--simlex", default=str(DATA_DIR / SIMLEX999), metavar="PATH",
                   help=f"word pairs, same format (default data/eval/{SIMLEX999})")
    p.add_argument("--analogies", default=str(DATA_DIR / ANALOGIES), metavar="PATH",
                   help=f"Google-format analogy questions (default data/eval/{ANALOGIES})")
    p.add_argument("--neighbours", nargs="+", metavar="WORD", help="also list nearest neighbours of these words")
    p.add_argument("--analogy", nargs=3, metavar=("A", "B", "C"), help="also answer A:B :: C:?")
    p.add_argument("--topn", type=int, default=10, metavar="K", help="answers listed for --neighbours/--analogy (default 10)")
    return p.parse_args(argv)


def _fmt(value, spec=".4f"):
    return "n/a" if value is None else format(value, spec)


def _pairs_line(name, r):
    return (f"{name:<16} spearman {_fmt(r['spearman'])}  pairs {r['pairs']}/{r['total']} (oov {r['oov']})")


def _oov_line(name, r):
    return (f"{name:<16} spearman {_fmt(r['spearman'])}  pairs {r['pairs']}/{r['total']} "
            f"({r['oov']} with a word from its n-grams)")


def _analogy_line(name, r):
    parts = []
    for key in ("semantic", "syntactic", "total"):
        t = r[key]
        parts.append(f"{key} {_fmt(t['accuracy'])} ({t['correct']}/{t['questions_answered']})")
    coverage = "n/a" if r["coverage"] is None else f"{100 * r['coverage']:.1f}%"
    parts.append(f"coverage {coverage}")
    return f"{name:<16} " + "  ".join(parts)


def _answers(pairs):
    if pairs is None:
        return "(not in vocabulary)"
    return "  ".join(f"{w} {s:.4f}" for w, s in pairs) or "(no candidates)"


def run(args):
    emb = load(args.embedding)
    if args.oov and not getattr(emb, "has_ngrams", False):
        raise ValueError(f"{args.embedding}: --oov needs a subword model with n-grams (a subword_model file "
                         "or fastText's .bin), not word vectors")
    result = {"embedding": args.embedding, "words": len(emb), "dim": emb.vector_size,
              "restrict_vocab": args.restrict_vocab}
    result.update(evaluate_all(emb, restrict_vocab=args.restrict_vocab, wordsim=args.wordsim,
                               simlex=args.simlex, analogies=args.analogies, oov=args.oov))
    if args.neighbours:
        result["neighbours"] = {}
        for word in args.neighbours:
            try:
                result["neighbours"][word] = emb.most_similar(word, topn=args.topn)
            except KeyError:
                result["neighbours"][word] = None  # out of vocabulary
    if args.analogy:
        try:
            answers = emb.analogy(*args.analogy, topn=args.topn)
        except KeyError:
            answers = None
        result["analogy"] = {"query": list(args.analogy), "answers": answers}
    return result


def print_table(result):
    print(f"{'embedding':<16} {result['embedding']}  ({result['words']} words, {result['dim']} dims)")
    print(_pairs_line("wordsim353", result["wordsim353"]))
    print(_pairs_line("simlex999", result["simlex999"]))
    if "wordsim353_oov" in result:
        print(_oov_line("wordsim353 +oov", result["wordsim353_oov"]))
        print(_oov_line("simlex999 +oov", result["simlex999_oov"]))
    print(_analogy_line("analogy 3CosAdd", result["analogy_3cosadd"]))
    print(_analogy_line("analogy 3CosMul", result["analogy_3cosmul"]))
    for word, answers in result.get("neighbours", {}).items():
        print(f"nearest to {word}: {_answers(answers)}")
    if "analogy" in result:
        a, b, c = result["analogy"]["query"]
        print(f"{a} : {b} :: {c} : ?  {_answers(result['analogy']['answers'])}")


def main(argv=None):
    args = parse_args(argv)
    try:
        result = run(args)
    except (OSError, ValueError) as e:
        # OSError messages name the file; our ValueErrors name file and line.
        print(f"evaluate.py: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
