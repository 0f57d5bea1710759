"""Where a run's messages go: stderr (through the progress bar, never glued to it) and
output.dir/train.log. Neither a closed stream (a pipe whose reader died, a closed ssh session) nor
a full disk ever stops training: logging never raises."""
from __future__ import annotations

import logging
import sys
from pathlib import Path


log = logging.getLogger("w2v")

# In a file or a pipe the bar is a plain line this often (in percent of the run), not \r redraws.
PIPE_STEP_PERCENT = 5
UNIT_NAMES = {"w": "words", "B": "bytes"}  # what a bar counts, spelt out in the line form


class SafeStream:
    """A text stream whose write and flush never raise: after the first failure (EPIPE, EIO, a
    closed file) it drops everything, and `broken` says so."""

    def __init__(self, stream):
        self.stream, self.broken = stream, stream is None

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except (OSError, ValueError):
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self.broken = True

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        try:
            return not self.broken and self.stream.isatty()
        except (OSError, ValueError, AttributeError):
            return False


console = SafeStream(sys.stderr)


def say(message: str) -> None:
    """Print a line to stderr (above the bar, if one is drawn)."""
    _rebind()
    from tqdm import tqdm   # here, not at import: tqdm's own imports are a fifth of `w2v.prepare`'s start-up
    tqdm.write(message, file=console)


def _rebind() -> None:
    """Follow sys.stderr when it was replaced (tests capture it; a caller may redirect it)."""
    global console
    if console.stream is not sys.stderr:
        console = SafeStream(sys.stderr)


class ConsoleHandler(logging.Handler):
    """Records to stderr through tqdm.write, so a line never lands in the middle of the bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            say(self.format(record))
        except Exception:  # a formatting problem must not stop a run either
            pass

    def handleError(self, record) -> None:
        pass


class LogFileHandler(logging.FileHandler):
    """train.log, appended. On the first failed write (disk full, a vanished folder) it says so once
    on stderr and stops writing; the run goes on."""

    def __init__(self, path: Path):
        super().__init__(path, encoding="utf-8")
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record) -> None:
        if self.failed:
            return
        self.failed = True
        error = sys.exc_info()[1]
        reason = getattr(error, "strerror", None) or error
        say(f"warning: cannot write {self.baseFilename} ({reason}); messages go to stderr only")


def setup(out_dir: Path | None, quiet: bool, tag: str = "", file_too: bool = True) -> None:
    """INFO and up to stderr (WARNING with `quiet`) and, with `file_too`, to out_dir/train.log."""
    _rebind()
    close()
    fmt = logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(message)s", "%H:%M:%S")
    log.setLevel(logging.INFO)
    handler = ConsoleHandler()
    handler.setFormatter(fmt)
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    handler.addFilter(lambda record: not getattr(record, "file_only", False))
    log.addHandler(handler)
    if not file_too or out_dir is None:
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        file_handler = LogFileHandler(out_dir / "train.log")
    except OSError:
        return  # an unwritable output dir is reported with its key by the lock or the trainer
    file_handler.setFormatter(fmt)
    log.addHandler(file_handler)


def close() -> None:
    for handler in list(log.handlers):
        log.removeHandler(handler)
        try:
            handler.close()
        except OSError:
            pass


class LineProgress:
    """The progress bar's stand-in where stderr is a file or a pipe: one line every
    PIPE_STEP_PERCENT percent of the run, with the bar's postfix, and no carriage returns."""

    def __init__(self, total: int, initial: int = 0, desc: str = "train", unit: str = "words"):
        self.total, self.n, self.desc, self.unit = max(total, 1), initial, desc, unit
        self.postfix: dict = {}
        self._next = self._step_after(initial)

    def reset(self) -> None:
        """Start over (a second pass over the same bytes)."""
        self.n, self._next = 0, self._step_after(0)

    def _step_after(self, n: int) -> float:
        if n >= self.total:
            return float("inf")
        step = max(1, self.total * PIPE_STEP_PERCENT // 100)
        return min((n // step + 1) * step, self.total)

    def update(self, n: int) -> None:
        self.n += n
        if self.n >= self._next:
            self._next = self._step_after(self.n)
            extra = ", ".join(f"{k} {v}" for k, v in self.postfix.items())
            say(f"{self.desc} {100 * self.n / self.total:3.0f}%: {self.n:,} of {self.total:,} {self.unit}"
                + (f", {extra}" if extra else ""))

    def set_postfix(self, refresh: bool = False, **values) -> None:
        self.postfix = values

    def close(self) -> None:
        pass


class NullProgress:
    """The bar of a quiet run: LineProgress's methods, doing nothing."""

    def reset(self) -> None:
        pass

    def update(self, n: int) -> None:
        pass

    def set_postfix(self, refresh: bool = False, **values) -> None:
        pass

    def close(self) -> None:
        pass


def _in_notebook() -> bool:
    """True inside a Jupyter kernel, where stderr is no terminal but a widget can be drawn."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def progress(total: int, initial: int = 0, disable: bool = False, desc: str = "train", unit: str = "w",
             leave: bool = True):
    """A tqdm bar on a terminal, a widget in a notebook (tqdm.auto), LineProgress in a file or
    pipe, or a silent bar with `disable`. `unit`: "w" (words) or "B" (bytes read)."""
    if disable:
        return NullProgress()
    if _in_notebook():
        from tqdm.auto import tqdm as auto_tqdm
        return auto_tqdm(total=total, initial=initial, unit=unit, unit_scale=True, smoothing=0.1, desc=desc,
                         leave=leave)
    if not console.isatty():
        return LineProgress(total, initial, desc, UNIT_NAMES[unit])
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit=unit, unit_scale=True, dynamic_ncols=True,
                smoothing=0.1, desc=desc, file=console, leave=leave)
