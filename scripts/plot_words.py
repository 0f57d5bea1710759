#!/usr/bin/env python
"""Draw a 2-D map (PCA) of some words and their nearest neighbours from a word2vec file, and
optionally an analogy as two arrows (man -> king, woman -> queen). Needs matplotlib
(pip install -e ".[plot]")."""

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import w2v  # noqa: F401  (installed, or already importable)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout without installing

from w2v.keyedvectors import KeyedVectors  # noqa: E402
from w2v.plotting import pyplot_or_report, save_or_report  # noqa: E402

EXIT_INPUT = 2


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("vectors", metavar="VECTORS", help="word2vec text or binary file (format detected)")
    p.add_argument("words", nargs="*", metavar="WORD", help="words to place, each with its nearest neighbours")
    p.add_argument("--analogy", nargs=3, metavar=("A", "B", "C"),
                   help="also draw A -> B and C -> the answer of A:B :: C:? (e.g. man king woman)")
    p.add_argument("--topn", type=int, default=6, metavar="K", help="neighbours per word (default 6)")
    p.add_argument("--restrict-vocab", type=int, default=30000, metavar="N",
                   help="neighbours and the analogy answer among the N most frequent words (default 30000)")
    p.add_argument("-o", "--output", default="words.png", metavar="PNG", help="picture to write (default words.png)")
    args = p.parse_args(argv)
    if not args.words and not args.analogy:
        p.error("give at least one WORD or --analogy A B C")
    if args.topn < 0:
        p.error(f"--topn must be >= 0, got {args.topn}")
    return args


def pca_2d(vectors):
    """The rows projected on their first two principal components (centred, by SVD)."""
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:2].T
    if out.shape[1] < 2:  # one word, or a 1-D embedding: nothing to spread on the second axis
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    return out


def select(kv, words, analogy, topn, restrict):
    """(groups, arrows): groups is [(query word, [neighbours])], arrows [(from, to)], every word
    in the vocabulary (looked up exactly); a missing word raises KeyError naming it. The analogy
    A:B :: C:? is answered as gensim's most_similar(positive=[B, C], negative=[A])."""
    missing = [w for w in list(words) + list(analogy or ()) if w not in kv]
    if missing:
        raise KeyError(", ".join(repr(w) for w in missing))
    groups = [(w, [n for n, _ in kv.most_similar(w, topn=topn, restrict_vocab=restrict)]) for w in words]
    arrows = []
    if analogy:
        a, b, c = analogy
        answer = kv.most_similar(positive=[b, c], negative=[a], topn=1, restrict_vocab=restrict)
        arrows.append((a, b))
        if answer:
            arrows.append((c, answer[0][0]))
        groups.extend((w, []) for w in (a, b, c) + ((answer[0][0],) if answer else ()))
    return groups, arrows


def placed(groups):
    """Every word of the picture once, in order of appearance (the queries before their neighbours)."""
    return list(dict.fromkeys(w for query, neighbours in groups for w in (query, *neighbours)))


def label_shifts(xy, words, char_width=0.012, line_height=0.035):
    """Downward shifts (data units) of each word's label so that no two labels overlap: greedy in
    the given order (earlier labels stay put), with boxes estimated in fractions of the map's size."""
    lo = xy.min(axis=0)
    span = np.maximum(xy.max(axis=0) - lo, 1e-12)
    boxes, shifts = [], []
    for (x, y), word in zip((xy - lo) / span, words):
        width, dy = len(word) * char_width, 0.0
        while any(abs(y + dy - by) < line_height and x < bx + bw and bx < x + width for bx, by, bw in boxes):
            dy -= line_height
        boxes.append((x, y + dy, width))
        shifts.append(dy * span[1])
    return shifts


def plot(plt, kv, groups, arrows, title):
    """The figure: the words' PCA map, the queries in bold, each one's neighbours in its colour."""
    order = placed(groups)
    xy = dict(zip(order, pca_2d(np.stack([kv.get_vector(w, norm=True) for w in order]))))
    queries = list(dict.fromkeys(q for q, _ in groups))
    colour_of = {}
    colours = plt.get_cmap("tab10")
    for i, (_, neighbours) in enumerate(g for g in groups if g[1]):
        for w in neighbours:
            colour_of.setdefault(w, colours(i % 10))
    fig, ax = plt.subplots(figsize=(7, 6))
    others = [w for w in order if w not in queries]
    if others:
        pts = np.array([xy[w] for w in others])
        ax.scatter(pts[:, 0], pts[:, 1], s=14, color=[colour_of[w] for w in others], alpha=0.6)
    q = np.array([xy[w] for w in queries])
    ax.scatter(q[:, 0], q[:, 1], s=40, color="black", zorder=3)
    labelled = queries + others  # the queries' labels first, so they stay beside their points
    for word, shift in zip(labelled, label_shifts(np.array([xy[w] for w in labelled]), labelled)):
        query = word in queries
        ax.annotate(word, xy[word], xytext=(xy[word][0], xy[word][1] + shift), textcoords="data",
                    fontsize=11 if query else 8, fontweight="bold" if query else "normal",
                    color="black" if query else colour_of[word], va="bottom",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5} if shift else None)
    for src, dst in arrows:
        ax.annotate("", xy=xy[dst], xytext=xy[src],
                    arrowprops={"arrowstyle": "->", "color": "crimson", "lw": 1.5})
    ax.set(title=title, xticks=[], yticks=[])
    ax.margins(0.12)
    return fig


def main(argv=None):
    args = parse_args(argv)
    plt = pyplot_or_report("plot_words.py")
    if plt is None:
        return EXIT_INPUT
    try:
        kv = KeyedVectors.load_word2vec_format(args.vectors)
    except (OSError, ValueError) as e:
        print(f"error: {args.vectors}: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return EXIT_INPUT
    try:
        groups, arrows = select(kv, args.words, args.analogy, args.topn, args.restrict_vocab)
    except KeyError as e:
        print(f"error: not in the vocabulary of {args.vectors}: {e.args[0]}", file=sys.stderr)
        return EXIT_INPUT
    title = f"{Path(args.vectors).name}: PCA of {len(placed(groups))} words"
    return 0 if save_or_report(plot(plt, kv, groups, arrows, title), args.output) else EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
