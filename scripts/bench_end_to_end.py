"""From text to vectors as a user runs it: the whole `python -m w2v.train` process, cold cache.

For each architecture, a fresh cache and output folder, the process timed from start to exit
(interpreter, imports, device start-up and kernel compilation, reading and encoding the text,
training, writing the output set), next to the training seconds the run itself reports
(metrics.json). The ratio whole / training is the cost of everything around training; the
text-pipeline issue's GPU target is at most 2x. Median of --runs.

    python scripts/bench_end_to_end.py --corpus corpus.txt --device cuda --epochs 5 --runs 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(corpus: str, arch: str, work: Path, args) -> dict:
    """One whole process on a cold cache: its wall seconds and what metrics.json says."""
    out, cache = work / "out", work / "cache"
    cmd = [sys.executable, "-m", "w2v.train", "--quiet", "--corpus", corpus, "--output", str(out), "--arch", arch,
           "--epochs", str(args.epochs), "--device", args.device, "--threads", str(args.threads),
           "--set", f"corpus.cache_dir={cache}", *(x for kv in args.set for x in ("--set", kv))]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    whole = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    epochs = json.loads((out / "metrics.json").read_text())["epochs"]
    train = sum(e["seconds"] for e in epochs)
    return {"whole_seconds": whole, "train_seconds": train, "words": sum(e["words"] for e in epochs),
            "ratio": whole / train}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--arch", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    p.add_argument("--device", default="cpu", help="train.device")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="train.threads (0: all cores)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more config overrides")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    corpus = str(Path(args.corpus).resolve())
    results = {}
    for arch in args.arch:
        runs = []
        for i in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                r = one_run(corpus, arch, Path(tmp), args)
            runs.append(r)
            print(f"{arch:8s} run {i + 1}: whole process {r['whole_seconds']:.1f}s, training {r['train_seconds']:.1f}s "
                  f"({r['ratio']:.2f}x), {r['words'] / r['train_seconds']:,.0f} words/s", flush=True)
        results[arch] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"\n| arch | whole process s | training s | whole / training | training words/s | (median of {args.runs},"
          f" device {args.device}, {args.epochs} epochs) |")
    print("|---|---:|---:|---:|---:|---|")
    for arch, r in results.items():
        print(f"| {arch} | {r['whole_seconds']:.1f} | {r['train_seconds']:.1f} | {r['ratio']:.2f}x | "
              f"{r['words'] / r['train_seconds']:,.0f} | |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
