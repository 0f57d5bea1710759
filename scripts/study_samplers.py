"""Train every negative-sampling strategy (and hierarchical softmax) under one budget and report.

For each architecture and strategy: the same corpus, settings, seed and number of epochs; after
every epoch the Google analogies (3CosAdd, 30k words) are scored, at the end also WordSim-353 and
SimLex-999. Writes a Markdown table (scores, words/s, final loss) into `--doc` between markers
named by `--section` (the prose around them is kept), the raw results as JSON next to it, and a
plot of analogy accuracy per epoch if matplotlib is installed (`pip install -e .[study]`).

    python scripts/study_samplers.py --corpus /work/bench/full.txt --epochs 1 --threads 1 \\
        --arch skipgram cbow --section cpu
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from w2v.atomic import atomic_write  # noqa: E402
from w2v.config import build_config  # noqa: E402
from w2v.evaluate import Embedding, default_data_dir, evaluate_analogies, evaluate_word_pairs  # noqa: E402
from w2v.trainer import TrainingError, train  # noqa: E402

ALPHA = {"skipgram": 0.025, "cbow": 0.05}  # word2vec.c's defaults per architecture

# name -> (model.* overrides, train.* overrides, one-line description)
STRATEGIES = {
    "unigram": ({}, {}, "unigram^0.75 (default, word2vec)"),
    "unigram-0.5": ({"ns_exponent": 0.5}, {}, "unigram^0.5 (fastText)"),
    "uniform": ({"sampler": "uniform"}, {}, "uniform (RNS)"),
    "dns": ({"sampler": "dns", "dns_candidates": 20}, {}, "DNS, top 5 of 20 candidates"),
    "dns-softmax": ({"sampler": "dns", "dns_candidates": 20, "dns_softmax": True}, {},
                    "DNS, 5 drawn from softmax of 20"),
    "in_batch": ({"sampler": "in_batch"}, {}, "in-batch, 5 others"),
    "in_batch-logq": ({"sampler": "in_batch", "logq_correction": True}, {}, "in-batch + logQ"),
    "mixed": ({"sampler": "mixed"}, {}, "mixed: 5 in-batch + 5 unigram"),
    "shared": ({"sampler": "shared", "shared_group": 8}, {}, "shared: one draw per 8 examples"),
    "hs": ({"loss": "hs"}, {"batch_size": 256}, "hierarchical softmax (batch 256)"),
    "hs-b64": ({"loss": "hs"}, {"batch_size": 64}, "hierarchical softmax (batch 64)"),
}


def _scores(emb: Embedding, full: bool) -> dict:
    data = default_data_dir()
    analogy = evaluate_analogies(emb, str(data / "questions-words.txt"), 30000, "add")
    out = {"analogy": analogy["total"]["accuracy"], "analogy_coverage": analogy["coverage"]}
    if full:
        out["ws353"] = evaluate_word_pairs(emb, str(data / "wordsim353.tsv"))["spearman"]
        out["simlex"] = evaluate_word_pairs(emb, str(data / "simlex999.txt"))["spearman"]
    return out


def run_one(args, arch: str, name: str, out: Path, vocab_path: str) -> dict:
    model, train_over, _ = STRATEGIES[name]
    cfg = build_config({
        "corpus": {"paths": [args.corpus], "cache_dir": str(Path(args.work) / "cache")},
        "vocab": {"min_count": args.min_count, "path": vocab_path},
        "model": {"arch": arch, **model},
        "train": {"epochs": args.epochs, "alpha": ALPHA[arch], "threads": args.threads, "device": args.device,
                  "seed": args.seed, **train_over},
        "output": {"dir": str(out), "binary": False}})
    per_epoch = []

    class ScoreEachEpoch:
        def on_epoch_end(self, state):
            row = state.metrics[-1]
            last = row["epoch"] == args.epochs
            per_epoch.append({**row, **_scores(Embedding(state.vocab.words, state.vectors()), full=last)})

    try:
        train(cfg, quiet=True, callbacks=[ScoreEachEpoch()])
    except TrainingError as e:        # e.g. the loss diverged: report it instead of losing the study
        return {"arch": arch, "strategy": name, "error": str(e), "analogy_per_epoch": [e["analogy"] for e in per_epoch]}
    final = per_epoch[-1]
    seconds = sum(e["seconds"] for e in per_epoch)
    return {"arch": arch, "strategy": name, "train_seconds": seconds,
            "words_per_sec": sum(e["words"] for e in per_epoch) / seconds, "loss": final["loss"],
            "ws353": final["ws353"], "simlex": final["simlex"], "analogy": final["analogy"],
            "analogy_coverage": final["analogy_coverage"],
            "analogy_per_epoch": [e["analogy"] for e in per_epoch]}


def _f(value, spec: str) -> str:
    """A score, or n/a where none could be computed (no covered pairs)."""
    return "n/a" if value is None else format(value, spec)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def table(results: list, command: str, args) -> str:
    lines = [f"Command: `{command}`", "",
             f"Corpus `{args.corpus}`, {args.epochs} epoch(s), {args.threads} thread(s), device `{args.device}`, "
             f"seed {args.seed}; otherwise the defaults (dim 100, window 5, negative 5, sample 1e-3, "
             f"min_count {args.min_count}, batch 1024, alpha 0.025 skip-gram / 0.05 CBOW).", "",
             "| arch | strategy | words/s | train s | WS353 | SimLex | analogy | analogy per epoch | final loss |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in results:
        per = " ".join(_pct(a) for a in r["analogy_per_epoch"])
        if "error" in r:
            lines.append(f"| {r['arch']} | {STRATEGIES[r['strategy']][2]} | — | — | — | — | — | {per} | "
                         f"failed: {r['error'][:60]} |")
            continue
        lines.append(f"| {r['arch']} | {STRATEGIES[r['strategy']][2]} | {r['words_per_sec']:,.0f} | "
                     f"{r['train_seconds']:.0f} | {_f(r['ws353'], '.3f')} | {_f(r['simlex'], '.3f')} | {_pct(r['analogy'])}% | "
                     f"{per} | {r['loss']:.3f} |")
    return "\n".join(lines)


def write_section(doc: Path, section: str, body: str) -> None:
    """Replace the text between this section's markers (append the section if it is new)."""
    begin, end = f"<!-- study:{section}:begin -->", f"<!-- study:{section}:end -->"
    block = f"{begin}\n{body}\n{end}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Negative-sampling strategies\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
    with atomic_write(doc, "w") as f:
        f.write(text)


def plot(results: list, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e .[study])", file=sys.stderr)
        return False
    results = [r for r in results if r["analogy_per_epoch"] and None not in r["analogy_per_epoch"]]
    if not results:
        return False
    archs = sorted({r["arch"] for r in results}, reverse=True)
    one_epoch = max(len(r["analogy_per_epoch"]) for r in results) == 1
    fig, axes = plt.subplots(1, len(archs), figsize=(6 * len(archs), 4.5), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        rows = [r for r in results if r["arch"] == arch]
        if one_epoch:     # one point per strategy: bars read better than a line
            ax.barh([r["strategy"] for r in rows], [100 * r["analogy_per_epoch"][0] for r in rows])
            ax.invert_yaxis()
            ax.set(title=f"{arch}, after 1 epoch", xlabel="analogy accuracy (3CosAdd, %)")
            continue
        for r in rows:
            epochs = range(1, len(r["analogy_per_epoch"]) + 1)
            ax.plot(list(epochs), [100 * a for a in r["analogy_per_epoch"]], marker="o", label=r["strategy"])
        ax.set(title=arch, xlabel="epoch", ylabel="analogy accuracy (3CosAdd, %)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    return True


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--arch", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    p.add_argument("--strategies", nargs="+", default=[s for s in STRATEGIES if s not in ("dns-softmax", "hs-b64")],
                   choices=list(STRATEGIES), help="for skip-gram")
    p.add_argument("--cbow-strategies", nargs="+", choices=list(STRATEGIES),
                   help="for CBOW (default: the same as --strategies)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--doc", default=str(ROOT / "docs" / "samplers.md"))
    p.add_argument("--section", default="cpu", help="marker name of this study's block in --doc")
    p.add_argument("--work", help="folder for runs and the corpus cache (default: a temporary one)")
    args = p.parse_args(argv)
    command = "python scripts/study_samplers.py " + " ".join(sys.argv[1:] if argv is None else argv)
    doc = Path(args.doc)
    doc.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        args.work = args.work or tmp
        results, vocab_path = [], ""
        for arch in args.arch:
            names = args.strategies if arch == "skipgram" else (args.cbow_strategies or args.strategies)
            for name in names:
                out = Path(args.work) / f"{arch}-{name}"
                t0 = time.perf_counter()
                r = run_one(args, arch, name, out, vocab_path)
                vocab_path = vocab_path or str(out / "vocab.txt")   # count the corpus once
                results.append(r)
                if "error" in r:
                    print(f"{arch:8s} {name:14s} failed: {r['error']}", flush=True)
                    continue
                print(f"{arch:8s} {name:14s} {r['words_per_sec']:9,.0f} words/s  ws353 {_f(r['ws353'], '.3f')}  "
                      f"simlex {_f(r['simlex'], '.3f')}  analogy {_pct(r['analogy'])}% "
                      f"[{' '.join(_pct(a) for a in r['analogy_per_epoch'])}]  loss {r['loss']:.3f}  "
                      f"({time.perf_counter() - t0:.0f}s)", flush=True)
                with atomic_write(doc.with_name(f"{doc.stem}_{args.section}.json"), "w") as f:
                    json.dump(results, f, indent=2)       # partial results survive an interrupted study
    png = doc.with_name(f"{doc.stem}_{args.section}.png")
    body = table(results, command, args)
    if plot(results, png):
        body += f"\n\n![analogy accuracy per epoch]({png.name})"
    write_section(doc, args.section, body)
    print(body)


if __name__ == "__main__":
    main()
