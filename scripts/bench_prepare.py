"""Speed of the text stage (count + encode), whole processes side by side, median of N runs:
w2v's one pass (`python -m w2v.prepare`, cold cache) vs its two-pass Python reference vs gensim's
`build_vocab(corpus_file=...)` scan vs `wc -w` (and `gzip -dc` alone for the .gz), then one file
holding a single 50 MB token.

    python scripts/bench_prepare.py --corpus TEXT --repeat 4 --work /tmp/bench-prepare [--runs 3]

The corpus is TEXT repeated --repeat times, written (with its .gz) under --work. Each row gives
the median wall time and the CPU time (user + system) of that run: on a machine shared with other
work the wall times stretch with the load, so the load average is printed too, and the ratios
between rows measured in the same run are the figures to compare."""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(text: Path, repeat: int, work: Path) -> tuple[Path, Path]:
    work.mkdir(parents=True, exist_ok=True)
    plain, gz = work / f"corpus-x{repeat}.txt", work / f"corpus-x{repeat}.txt.gz"
    if not plain.exists() or plain.stat().st_size != repeat * text.stat().st_size:
        with open(plain, "wb") as out:
            for _ in range(repeat):
                with open(text, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 24)
        gz.unlink(missing_ok=True)
    if not gz.exists():
        with open(gz, "wb") as out:
            subprocess.run(["gzip", "-c", str(plain)], stdout=out, check=True)
    return plain, gz


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str] | str, shell: bool = False) -> tuple[float, float, float | None]:
    """(wall seconds, CPU seconds) of a command, and for w2v.prepare the seconds its summary gives
    the stage itself (the process without its start-up and exit), else None."""
    t, c = time.perf_counter(), cpu_children()
    out = subprocess.run(cmd, shell=shell, check=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, errors="replace").stdout
    wall, cpu = time.perf_counter() - t, cpu_children() - c
    stage = re.search(r"; total ([0-9.]+)s", out)
    return wall, cpu, float(stage.group(1)) if stage else None


def w2v_prepare(path: Path, threads: int, work: Path, *settings: str) -> list[str]:
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)   # cold cache every run
    return [sys.executable, "-m", "w2v.prepare", "--corpus", str(path), "--quiet",
            "--set", f"corpus.read_threads={threads}", "--set", f"corpus.cache_dir={cache}",
            "--set", f"output.dir={work / 'out'}", *(x for kv in settings for x in ("--set", kv))]


REFERENCE = """
import sys
from w2v.config import build_config
from w2v.pipeline import prepare
cfg = build_config({"corpus": {"paths": [sys.argv[1]]}})
prepare(cfg, sys.argv[2], native=False)
"""

GENSIM = """
import sys
from gensim.models import Word2Vec
Word2Vec(min_count=5, workers=int(sys.argv[2])).build_vocab(corpus_file=sys.argv[1])
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True, help="a plain-text corpus file")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--work", type=Path, required=True, help="scratch folder for the corpus and caches")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slow-runs", type=int, help="runs of the Python reference and gensim (default: --runs; "
                    "0 leaves them out)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    plain, gz = build(args.corpus, args.repeat, args.work)
    os.sync()   # the inputs' write-back would otherwise fall on the first rows timed
    mb = plain.stat().st_size / 1e6
    out = subprocess.run([sys.executable, "-m", "w2v.prepare", "--corpus", str(plain), "--quiet", "--set",
                          f"corpus.cache_dir={args.work / 'cache'}", "--set", f"output.dir={args.work / 'out'}"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tokens = int(out.split("tokens: ")[1].split()[0])

    cases = []
    for t in args.threads:
        cases.append((f"w2v one pass (C), {t} thread{'s' * (t > 1)}", "plain", lambda t=t: w2v_prepare(plain, t, args.work)))
        cases.append((f"w2v one pass (C), {t} thread{'s' * (t > 1)}", "gzip", lambda t=t: w2v_prepare(gz, t, args.work)))
    cases.append(("w2v two-pass Python reference", "plain",
                  lambda: (shutil.rmtree(args.work / "ref", ignore_errors=True),
                           [sys.executable, "-c", REFERENCE, str(plain), str(args.work / "ref")])[1]))
    for t in args.threads:
        cases.append((f"gensim build_vocab(corpus_file=) scan, workers={t}", "plain",
                      lambda t=t: [sys.executable, "-c", GENSIM, str(plain), str(t)]))
    cases.append(("wc -w", "plain", lambda: ["wc", "-w", str(plain)]))
    cases.append(("gzip -dc alone", "gzip", lambda: f"gzip -dc {gz} > /dev/null"))

    rows = []
    load = [os.getloadavg()[0]]
    slow_runs = args.runs if args.slow_runs is None else args.slow_runs
    # The cases take turns, run by run, so that a change in the machine's speed falls on all of them.
    wanted = {name + kind: slow_runs if name.startswith(("w2v two-pass", "gensim")) else args.runs
              for name, kind, _ in cases}
    timings = {key: [] for key in wanted}
    for i in range(max(wanted.values())):
        for name, kind, make in cases:
            if i < wanted[name + kind]:
                cmd = make()
                timings[name + kind].append(timed(cmd, shell=isinstance(cmd, str)))
                load.append(os.getloadavg()[0])
    for name, kind, make in cases:
        runs = timings[name + kind]
        if not runs:
            continue
        med = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        stages = [r[2] for r in runs if r[2] is not None]
        rows.append({"what": name, "input": kind, "seconds": med, "cpu_seconds": cpu, "runs": runs,
                     "stage_seconds": statistics.median(stages) if stages else None,
                     "mb_s": mb / med, "tokens_s": tokens / med})
        print(f"{name:55s} {kind:6s} {med:7.2f}s (cpu {cpu:6.2f}s) {mb / med:8.1f} MB/s "
              f"{tokens / med / 1e6:7.2f} M tokens/s", flush=True)

    single = args.work / "one-token.txt"   # issue: a 50 MB token once took minutes
    single.write_bytes(b"x" * 50_000_000 + b" y\n")
    one_token = timed(w2v_prepare(single, 1, args.work, "vocab.min_count=1"))[:2]
    single.unlink()

    print(f"\n{mb:.0f} MB of text ({tokens:,} tokens; MB/s counts the uncompressed text for .gz too), "
          f"median of {args.runs} ({slow_runs} for the Python reference and gensim), "
          f"{os.cpu_count()} cores, load average {min(load):.1f}-{max(load):.1f} during the runs\n")
    print("| what | input | seconds | CPU seconds | MB/s | M tokens/s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['input']} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['mb_s']:.1f} | "
              f"{r['tokens_s'] / 1e6:.2f} |")
    by = {(r["what"], r["input"]): r["seconds"] for r in rows}
    best = {kind: min(s for (w, k), s in by.items() if w.startswith("w2v one pass") and k == kind)
            for kind in ("plain", "gzip")}
    gensim = min((s for (w, _), s in by.items() if w.startswith("gensim")), default=None)
    if gensim is not None:
        print(f"\nw2v one pass (fastest thread count) vs gensim's scan: {gensim / best['plain']:.1f}x")
    print(f".gz vs gzip -dc alone: {by[('gzip -dc alone', 'gzip')] / best['gzip']:.2f}x")
    threads = [t for t in args.threads if t > 1]
    stage = {(r["what"], r["input"]): r["stage_seconds"] for r in rows}
    for t in threads:
        for what, seconds in (("whole process", by), ("the stage in the process", stage)):
            one = seconds[("w2v one pass (C), 1 thread", "plain")]
            many = seconds[(f"w2v one pass (C), {t} threads", "plain")]
            print(f"scaling 1 -> {t} threads, {what}: {one / many:.2f}x ({one / many / t:.2f} of linear)")
    print(f"one 50 MB token: {one_token[0]:.2f}s (cpu {one_token[1]:.2f}s)")
    if args.json:
        args.json.write_text(json.dumps({"mb": mb, "tokens": tokens, "rows": rows, "load": load,
                                         "one_token": one_token}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
