"""Run `python -m w2v.train ARGS` in this process, sending it SIGNAL when STAGE begins, as a user's
Ctrl-C, a scheduler's SIGTERM or the OOM killer's SIGKILL would (tests/test_kill.py).

    python tests/kill_driver.py STAGE SIGNAL[,SECOND_DELAY] ARGS...

Stages: count (the pass over the text), encode (writing the cache's ids), chunkN (the Nth chunk's examples, counting over all
epochs), export (after the vectors and vocabulary, before config.yaml), commit (after the first file of the
output set is renamed into place). With SECOND_DELAY a second signal follows that many seconds later."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from w2v import loop, outputset, pipeline, trainer  # noqa: E402
from w2v.train import main  # noqa: E402

stage, how, *args = sys.argv[1:]
name, _, second = how.partition(",")
sig = getattr(signal, name)


def fire():
    os.kill(os.getpid(), sig)
    if second:
        threading.Timer(float(second), os.kill, (os.getpid(), sig)).start()
        time.sleep(float(second) + 1)  # keep the run busy until the second signal lands


def before(module, attr, when=lambda *a, **k: True):
    real = getattr(module, attr)

    def wrapper(*a, **k):
        if when(*a, **k):
            fire()
        return real(*a, **k)
    setattr(module, attr, wrapper)


if stage == "count":
    before(pipeline, "_scan_pass")  # the pass that reads and counts the text
elif stage == "encode":
    before(pipeline, "remap")  # provisional ids -> the cache's final ids
elif stage.startswith("chunk"):
    calls = [0]

    def nth(*a, **k):
        calls[0] += 1
        return calls[0] == int(stage[5:])
    before(loop, "make_examples", nth)  # the torch example-making
    before(loop, "token_chunk", nth)    # or the C kernel's, from the tokens
elif stage == "export":
    before(trainer, "save_config")
elif stage == "commit":
    moved = [0]
    real_replace = os.replace

    def replace(src, dst):
        real_replace(src, dst)
        if outputset.STAGE_PREFIX in os.fspath(src) and outputset.STAGE_PREFIX not in os.fspath(dst):
            moved[0] += 1
            if moved[0] == 1:
                fire()
    outputset.os.replace = replace
else:
    sys.exit(f"unknown stage {stage}")

sys.exit(main(args))
