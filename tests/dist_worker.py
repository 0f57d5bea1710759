"""Test helper, run as a script: one rank of `python -m w2v.train`, as torchrun would start it.

It reports every file it puts in place (each atomic write ends in os.replace) as a `REPLACED path`
line on stdout, so a test can check that only rank 0 writes; W2V_TEST_STOP_AFTER=N acts as if
Ctrl-C came once the stop flag has been read N times."""
import os
import sys

from w2v import loop
from w2v.train import main

_replace = os.replace


def _reporting_replace(src, dst, *args, **kwargs):
    print(f"REPLACED {os.fspath(dst)}", flush=True)
    return _replace(src, dst, *args, **kwargs)


class _StopAfter(loop._StopFlag):
    reads = 0

    @property
    def requested(self):
        _StopAfter.reads += 1
        return _StopAfter.reads >= int(os.environ["W2V_TEST_STOP_AFTER"])

    @requested.setter
    def requested(self, value):
        pass


if __name__ == "__main__":
    os.replace = _reporting_replace
    if os.environ.get("W2V_TEST_STOP_AFTER"):
        loop._StopFlag = _StopAfter
    sys.exit(main(sys.argv[1:]))
