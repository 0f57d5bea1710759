"""Peak resident memory of one training run, optionally stopped after a time (a benchmark, not a test).

Runs `python -m w2v.train` as a child process with the given arguments; with --train-seconds it
sends SIGINT that many seconds after the corpus is encoded (the run checkpoints and exits 130), so
a huge corpus can be measured without training it all. Prints JSON: the child's peak RSS (from
wait4), the tokens trained (from metrics.json or the checkpoint) and the wall time.

    python scripts/peak_memory.py --train-seconds 240 -- --config configs/default.yaml \\
        --set corpus.paths=big.txt --set vocab.path=vocab.txt --set output.dir=/tmp/big --set train.threads=1
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _output_dir(train_args: list[str]) -> Path:
    from w2v.config import load_config
    config = train_args[train_args.index("--config") + 1]
    sets = [train_args[i + 1] for i, a in enumerate(train_args) if a == "--set"]
    return Path(load_config(config, sets).output.dir)


def _tokens_trained(out: Path) -> int | None:
    metrics = out / "metrics.json"
    if not (metrics.exists() or (out / "checkpoint.pt").exists()):
        return None  # the run failed before its first checkpoint
    if metrics.exists():
        return sum(e["words"] for e in json.loads(metrics.read_text())["epochs"])
    import torch
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    return sum(m["words"] for m in state["metrics"]) + (state.get("partial") or {}).get("words", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-seconds", type=float, default=0, help="SIGINT this long after encoding (0: run to the end)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the w2v.train arguments")
    args = parser.parse_args()
    train_args = [a for a in args.train_args if a != "--"]
    out = _output_dir(train_args)
    if (out / "metrics.json").exists() or (out / "checkpoint.pt").exists():
        raise SystemExit(f"{out}: use a fresh output.dir, so the figures are this run's")
    log = out / "train.log"
    log_start = log.stat().st_size if log.exists() else 0
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "w2v.train", *train_args, "--quiet"], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    encoded_at = None
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if encoded_at is None and log.exists():
            with open(log, encoding="utf-8") as f:
                f.seek(log_start)
                if "encoded corpus" in f.read():
                    encoded_at = time.perf_counter()
        if args.train_seconds and encoded_at and time.perf_counter() - encoded_at > args.train_seconds:
            child.send_signal(signal.SIGINT)
            pid, status, usage = os.wait4(child.pid, 0)
            break
        time.sleep(0.2)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    print(json.dumps({"exit_code": child.returncode, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                      "tokens_trained": _tokens_trained(out),
                      "encode_seconds": round(encoded_at - t0, 1) if encoded_at else None,
                      "wall_seconds": round(time.perf_counter() - t0, 1), "args": train_args}))


if __name__ == "__main__":
    main()
