"""The output set (vectors, vocabulary, config, metrics, manifest) replaced as a whole: written into
a staging folder, then committed through a journal, so that output.dir holds one run's complete set
or the previous one, never a mix.

Commit: the staged files and their hashes go into `manifest.json` (staged too); the journal, written
atomically, names the stage, the files to move and the stale files of an older set to remove (a
`.bin` when this run writes none); then the files are renamed into place and the journal removed.
A run killed before the journal exists leaves the previous set untouched (its stage is deleted by
the next run); one killed after it leaves a journal that the next run, or `recover()`, completes.
`check()` says whether a folder holds one complete set."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from .atomic import _fsync_dir, atomic_write

MANIFEST = "manifest.json"
JOURNAL = ".output-set.journal"
STAGE_PREFIX = ".staging-"
# Every file an output set can hold; those a new set lacks are removed when it is committed.
SET_NAMES = ("word_embedding.txt", "word_embedding.bin", "vocab.txt", "config.yaml", "metrics.json",
             "vectors.tsv", "metadata.tsv",
             # A subword model's (w2v/subword_export.py): the whole model and fastText's .bin.
             "subword_model", "subword_model.vectors.npy", "subword_model.input.npy", "subword_model.output.npy",
             "subword_model.subwords.json", "fasttext.bin", MANIFEST)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def staged(out_dir: str | Path):
    """Yield a staging folder inside `out_dir` to write the set into; commit it if the block ends
    normally, delete it otherwise (the previous set stays as it was)."""
    out_dir = Path(out_dir)
    recover(out_dir)
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=out_dir))
    try:
        yield stage
        commit(out_dir, stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def commit(out_dir: Path, stage: Path) -> list[str]:
    """Make the files in `stage` the set of `out_dir`; returns their names."""
    names = sorted(p.name for p in stage.iterdir() if p.is_file() and p.name in SET_NAMES)
    manifest = {"files": {n: {"bytes": (stage / n).stat().st_size, "sha256": _sha256(stage / n)} for n in names},
                "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with atomic_write(stage / MANIFEST, "w") as f:
        json.dump(manifest, f, indent=2)
    _fsync_dir(stage)
    journal = {"stage": stage.name, "files": names + [MANIFEST],
               "remove": [n for n in SET_NAMES if n not in names and n != MANIFEST]}
    with _signals_deferred():  # Ctrl-C and SIGTERM wait until the set is in place (microseconds)
        with atomic_write(out_dir / JOURNAL, "w") as f:  # the commit point
            json.dump(journal, f)
        _roll_forward(out_dir, journal)
    return names


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT and SIGTERM back during the block, then deliver them to the handlers before."""
    pending: list[int] = []
    try:
        previous = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
                    for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals go to the main thread's handlers anyway
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in pending[:1]:
            os.kill(os.getpid(), sig)


def _roll_forward(out_dir: Path, journal: dict) -> None:
    """Finish a commit (idempotent: a file already moved is skipped). The manifest moves last."""
    stage = out_dir / journal["stage"]
    for name in journal["remove"]:
        with contextlib.suppress(FileNotFoundError):
            (out_dir / name).unlink()
    for name in journal["files"]:
        if (stage / name).exists():
            os.replace(stage / name, out_dir / name)
    _fsync_dir(out_dir)
    (out_dir / JOURNAL).unlink()
    shutil.rmtree(stage, ignore_errors=True)
    _fsync_dir(out_dir)


def recover(out_dir: str | Path) -> bool:
    """Complete a commit that a killed run left half done, and delete the stages of processes that
    are gone (they never reached their commit point). Call it while holding output.dir's lock (the
    CLI does); a stage's name carries its pid, so a live writer's stage is left alone even without
    the lock. True if a commit was completed."""
    out_dir = Path(out_dir)
    completed = False
    journal_path = out_dir / JOURNAL
    if journal_path.exists():
        _roll_forward(out_dir, json.loads(journal_path.read_text()))
        completed = True
    for stage in out_dir.glob(STAGE_PREFIX + "*"):
        if not _alive(stage.name[len(STAGE_PREFIX):].split("-")[0]):
            shutil.rmtree(stage, ignore_errors=True)
    return completed


def _alive(pid: str) -> bool:
    if not pid.isdigit() or int(pid) == os.getpid():
        return False  # this process's own leftovers (an earlier failed export) go too
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by another user
    return True


def check(out_dir: str | Path) -> list[str]:
    """Problems that keep `out_dir` from holding one complete set (empty: it does, or holds none)."""
    out_dir = Path(out_dir)
    present = [n for n in SET_NAMES if (out_dir / n).exists()]
    if (out_dir / JOURNAL).exists():
        return ["a commit was interrupted: the next run (or w2v.outputset.recover) completes it"]
    if not present:
        return []
    if MANIFEST not in present:
        return [f"files without a manifest: {', '.join(present)}"]
    files = json.loads((out_dir / MANIFEST).read_text())["files"]
    problems = [f"{n}: not in the manifest (left from another run)" for n in present
                if n not in files and n != MANIFEST]
    for name, meta in files.items():
        path = out_dir / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != meta["bytes"] or _sha256(path) != meta["sha256"]:
            problems.append(f"{name}: differs from the manifest")
    return problems
