"""Data-parallel benchmark: 1 process vs N ranks under torchrun, words/s and scores of each.

Every setting trains the same corpus with the same settings (one thread per rank by default), the
ranks started by `torchrun --standalone --nproc_per_node N -m w2v.train`, exactly as a user would.
The vocabulary and the encoded corpus are built once and shared, so the runs differ only in the
training. words/s is global (all ranks), from metrics.json; sync seconds are rank 0's.

    python scripts/bench_distributed.py --corpus /work/bench/full.txt --epochs 1 --ranks 1 2 --sync all touched --merge sum average
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def run(args, ranks: int, sync: str, merge: str, out: Path, vocab: str) -> dict:
    sets = [f"corpus.paths={args.corpus}", f"corpus.cache_dir={args.work / 'cache'}", f"output.dir={out}",
            f"model.arch={args.arch}", f"model.dim={args.dim}", f"train.epochs={args.epochs}",
            f"train.threads={args.threads}", f"train.device={args.device}", f"train.seed={args.seed}",
            f"distributed.sync={sync}", f"distributed.merge={merge}", f"distributed.sync_every_words={args.sync_every}",
            "output.binary=false"]
    if vocab:
        sets.append(f"vocab.path={vocab}")
    w2v = ["-m", "w2v.train", "--config", str(ROOT / "configs" / "default.yaml"), "--quiet"]
    for s in sets:
        w2v += ["--set", s]
    if ranks == 1:
        cmd = [sys.executable, *w2v]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", *w2v]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(args.threads))
    t0, load_before = time.perf_counter(), load()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{ranks}-rank run failed:\n{proc.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    epochs = metrics["epochs"]
    seconds = sum(e["seconds"] for e in epochs)
    d = metrics.get("distributed", {})
    return {"ranks": ranks, "sync": sync if ranks > 1 else "-", "merge": merge if ranks > 1 else "-", "words_per_sec": sum(e["words"] for e in epochs) / seconds,
            "train_seconds": seconds, "end_to_end_seconds": time.perf_counter() - t0,
            "syncs": d.get("syncs", 0), "sync_seconds": d.get("seconds", 0.0),
            "rows_per_sync": d.get("rows", 0) / max(d.get("syncs", 0), 1),
            "load_before": load_before, "load_after": load(), **scores(out / "word_embedding.txt")}


def scores(vectors: Path) -> dict:
    from w2v.evaluate import evaluate_all
    r = evaluate_all(vectors)
    return {"ws353": r["wordsim353"]["spearman"], "simlex": r["simlex999"]["spearman"],
            "analogy": r["analogy_3cosadd"]["total"]["accuracy"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--work", type=Path, default=Path("runs/bench_distributed"))
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sync", nargs="+", default=["all"], choices=["all", "touched"])
    p.add_argument("--merge", nargs="+", default=["sum"], choices=["sum", "average"])
    p.add_argument("--sync-every", type=int, default=65_536, help="distributed.sync_every_words")
    p.add_argument("--arch", default="skipgram", choices=["skipgram", "cbow"])
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="train.threads of each rank")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows, vocab = [], ""
    for ranks in args.ranks:
        settings = [(s, m) for s in args.sync for m in args.merge] if ranks > 1 else [("all", "sum")]
        for sync, merge in settings:
            out = args.work / f"r{ranks}-{sync}-{merge}"
            rows.append(run(args, ranks, sync, merge, out, vocab))
            vocab = vocab or str(out / "vocab.txt")   # counted once, by the first run
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["words_per_sec"]
    print(f"\n{args.corpus}, {args.arch}, dim {args.dim}, {args.epochs} epoch(s), {args.threads} thread(s) per rank, "
          f"sync every {args.sync_every:,} words per rank, {os.cpu_count()} cores\n")
    print("| ranks | sync | merge | words/s | speed-up | syncs | sync s | rows/sync | WS353 | SimLex | analogy | load (before, after) |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['ranks']} | {r['sync']} | {r['merge']} | {r['words_per_sec']:,.0f} | {r['words_per_sec'] / base:.2f}x | {r['syncs']} | "
              f"{r['sync_seconds']:.1f} | {r['rows_per_sync']:,.0f} | {r['ws353']:.3f} | {r['simlex']:.3f} | "
              f"{100 * r['analogy']:.1f}% | {r['load_before']} / {r['load_after']} |")
    (args.work / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
