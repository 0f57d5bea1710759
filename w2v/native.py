"""Compile-on-first-use C sources: find the compiler, build into a per-user cache, load by ctypes.

No build step at install time and no new dependency: the system C compiler builds a source into a
cache directory the first time it is needed (keyed by a hash of the source, compiler, flags and
CPU, since the flags include -march=native), and ctypes loads it. When that is not possible,
`build()` raises NativeUnavailable saying why, and the caller falls back to its Python path.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

CSRC = Path(__file__).resolve().parent / "csrc"
# -fopenmp-simd honours the `omp simd` pragmas (vectorised reductions without -ffast-math) and
# needs no OpenMP runtime. The second set is for compilers that reject -march=native.
FLAG_SETS = (["-O3", "-march=native", "-fopenmp-simd"], ["-O3"])
BASE_FLAGS = ["-shared", "-fPIC", "-pthread", "-std=c99"]


class NativeUnavailable(RuntimeError):
    """C code cannot be built or loaded here (no compiler, compile error, unsupported OS)."""


def cache_dir() -> Path:
    """$W2V_CACHE_DIR, else $XDG_CACHE_HOME/w2v, else ~/.cache/w2v."""
    if os.environ.get("W2V_CACHE_DIR"):
        return Path(os.environ["W2V_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "w2v"


def find_compiler() -> list[str]:
    """The C compiler command: $CC if set (only that one), else Python's own CC, cc, gcc or clang."""
    if "CC" in os.environ:
        candidates = [os.environ["CC"]]
    else:
        candidates = [sysconfig.get_config_var("CC") or "", "cc", "gcc", "clang"]
    for cand in candidates:
        cmd = shlex.split(cand)
        if cmd and shutil.which(cmd[0]):
            return cmd
    where = f"CC={os.environ['CC']!r} is not an executable" if "CC" in os.environ else \
        "none of cc, gcc, clang is on PATH"
    raise NativeUnavailable(f"no C compiler found ({where}; set CC to one)")


def cpu_signature() -> str:
    """What -march=native depends on, so a cache shared between machines never runs foreign code."""
    sig = platform.machine() + platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            sig += next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return sig


def build(source: Path, name: str, what: str) -> Path:
    """Compile `source` into the cache as `<name>-<hash>.so` (temp file, then rename) unless it is
    there; return its path. `what` names the code in errors ("the C kernel")."""
    if os.name != "posix":
        raise NativeUnavailable(f"{what} needs POSIX threads; this is {platform.system()}")
    compiler = find_compiler()
    code, cpu, out_dir = source.read_bytes(), cpu_signature().encode(), cache_dir()
    targets = []
    for flags in FLAG_SETS:
        key = hashlib.sha256(b"\0".join([code, " ".join(compiler + flags + BASE_FLAGS).encode(), cpu]))
        targets.append(out_dir / f"{name}-{key.hexdigest()[:16]}.so")
    for target in targets:   # built before, maybe with the fallback flags
        if target.exists():
            return target
    errors = []
    for flags, target in zip(FLAG_SETS, targets):
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}-", suffix=".so")
            os.close(fd)
        except OSError as e:
            raise NativeUnavailable(f"cannot write the kernel cache {out_dir} ({e.strerror or e}; "
                                    f"set W2V_CACHE_DIR)") from None
        cmd = compiler + flags + BASE_FLAGS + [str(source), "-o", tmp, "-lm"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            proc = None
            errors.append(f"{' '.join(cmd)}: {e}")
        if proc is not None and proc.returncode == 0:
            os.replace(tmp, target)
            return target
        if proc is not None:
            errors.append(f"{' '.join(cmd)}: {proc.stderr.strip()[-500:]}")
        Path(tmp).unlink(missing_ok=True)
    raise NativeUnavailable(f"compiling {what} failed: " + " | ".join(errors))


def load_library(source: Path, name: str, what: str) -> ctypes.CDLL:
    """`build` then load by ctypes (whose calls release the GIL); NativeUnavailable if either fails."""
    path = build(source, name, what)
    try:
        return ctypes.CDLL(str(path))
    except OSError as e:
        raise NativeUnavailable(f"cannot load {what} ({path}): {e}") from None
