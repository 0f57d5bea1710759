#!/usr/bin/env python
"""Draw training runs from their metrics.json: loss and words/s over the words processed, several
runs on one picture, and the per-epoch scores where a run recorded them. Needs matplotlib
(pip install -e ".[plot]")."""

import argparse
import json
import sys
from pathlib import Path

import yaml

try:
    import w2v  # noqa: F401  (installed, or already importable)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout without installing

from w2v.plotting import pyplot_or_report, save_or_report  # noqa: E402

EXIT_INPUT = 2
# The trainer's own per-epoch columns; any other number in a row is a score recorded per epoch
# (e.g. "analogy", "ws353", "simlex" by scripts/study_samplers.py).
TRAINING_COLUMNS = {"epoch", "loss", "seconds", "words", "words_per_sec", "effective_words",
                    "effective_words_per_sec", "examples", "final_lr"}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="OUTPUT_DIR", help="a training run's output.dir (holds metrics.json)")
    p.add_argument("-o", "--output", default="metrics.png", metavar="PNG", help="picture to write (default metrics.png)")
    p.add_argument("--title", default="", help="title over the picture")
    return p.parse_args(argv)


class InputError(Exception):
    """A run folder without a readable metrics.json."""


def load_run(folder):
    """(label, metrics dict) of one output folder; the label is the folder name and its arch."""
    folder = Path(folder)
    path = folder / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no metrics.json (is {folder} a training run's output.dir?)") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read it as JSON ({e})") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("epochs"), list):
        raise InputError(f"{path}: expected an object with an 'epochs' list, as w2v.train writes")
    label = folder.resolve().name
    config = folder / "config.yaml"
    try:
        arch = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("model", {}).get("arch")
    except (OSError, yaml.YAMLError, AttributeError):
        arch = None  # the label is only the folder's name then
    return (f"{label} ({arch})" if arch and arch not in label else label), metrics


def series(metrics):
    """(words, loss, words_per_sec) lists: the curve's points, or one point per epoch without a curve."""
    points = metrics.get("curve") or []
    if points:
        return ([p["words"] for p in points], [p["loss"] for p in points],
                [p.get("words_per_sec") for p in points])
    words, done = [], 0
    for row in metrics["epochs"]:
        done += row["words"]
        words.append(done)
    return words, [r["loss"] for r in metrics["epochs"]], [r["words_per_sec"] for r in metrics["epochs"]]


def scores(metrics):
    """{score name: [(epoch, value)]} for the numbers per epoch that are not training columns."""
    out = {}
    for row in metrics["epochs"]:
        for key, value in row.items():
            if key not in TRAINING_COLUMNS and isinstance(value, (int, float)) and not isinstance(value, bool):
                out.setdefault(key, []).append((row["epoch"], value))
    return out


def plot(plt, runs, title=""):
    """The figure: loss and words/s over words for every run, and a panel of scores if any has them."""
    with_scores = any(scores(m) for _, m in runs)
    fig, axes = plt.subplots(1, 3 if with_scores else 2, figsize=(13 if with_scores else 10, 3.8))
    loss_ax, speed_ax = axes[0], axes[1]
    for label, metrics in runs:
        words, loss, rate = series(metrics)
        millions = [w / 1e6 for w in words]
        style = "-" if metrics.get("curve") else "o-"  # per-epoch rows only: mark the few points
        loss_ax.plot(millions, loss, style, label=label, linewidth=1.2, markersize=3)
        kept = [(w, r) for w, r in zip(millions, rate) if r is not None]
        speed_ax.plot([w for w, _ in kept], [r / 1e3 for _, r in kept], style, label=label,
                      linewidth=1.2, markersize=3)
        for name, values in scores(metrics).items():
            axes[2].plot([e for e, _ in values], [v for _, v in values], "o-", label=f"{label}: {name}",
                         markersize=4)
    loss_ax.set(xlabel="words processed (millions)", ylabel="running loss of the epoch", title="loss")
    speed_ax.set(xlabel="words processed (millions)", ylabel="thousand words/s", title="speed")
    speed_ax.set_ylim(bottom=0)
    if with_scores:
        axes[2].set(xlabel="epoch", ylabel="score", title="per-epoch scores")
        axes[2].legend(fontsize=7)
    for ax in (loss_ax, speed_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def main(argv=None):
    args = parse_args(argv)
    plt = pyplot_or_report("plot_metrics.py")
    if plt is None:
        return EXIT_INPUT
    try:
        runs = [load_run(folder) for folder in args.runs]
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    return 0 if save_or_report(plot(plt, runs, args.title), args.output) else EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
