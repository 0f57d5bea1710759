"""Fuzz the config: seeded random keys, types, values and YAML oddities (duplicate keys, aliases and
alias bombs, tags, non-UTF-8 bytes, huge numbers, NaN/inf, mangled text). Every case must end in a
valid Config whose values are all in range, or a short ConfigError naming the file or `--set KEY`;
never another exception."""
import dataclasses
import math
import random
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT
from w2v.config import LIMITS, Config, ConfigError, build_config, config_from_bytes

FILE_CASES = 3000
SET_CASES = 3000
SECTIONS = [f.name for f in dataclasses.fields(Config)]
KEYS = {s: [f.name for f in dataclasses.fields(getattr(Config(), s))] for s in SECTIONS}
NUMBERS = [0, 1, -1, 2, 5, 1000, 1024, 2**31, 2**63, 10**30, 10**400, 0.5, -0.0, 1e-300, 1e308,
           float("nan"), float("inf"), float("-inf"), 3.7, 25, 21, 20]
SCALARS_TEXT = ["1e30", "1e999", ".nan", ".inf", "-.inf", "0x1F", "0o17", "1_000", "~", "null", "yes",
                "no", "on", "off", "true", "'5'", '"\\0"', "!!binary aGVsbG8=", "!!timestamp 2001-12-14",
                "!!python/object:os.system ls", "!foo bar", "!!set {a, b}", "[1, [2, [3]]]", "{a: 1}",
                "&x 3", "*undefined", "'" + "9" * 5000 + "'", "9" * 5000, "[unclosed", "{a: 1", "'unterminated",
                "- a\n- b", "|\n  block", ">-\n  folded", "\t5", "1.5", "-7", "cuda:1", "cuda:99999999999",
                "skipgram", "cbow", "dns", "hs", "fused", "all", "average"]


def _word(rng):
    alphabet = "abcdefghijklmnopqrstuvwxyz_.:- \t\u00e9\u4e2d\U0001F600\0"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def _value(rng, depth=0):
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(NUMBERS)
    if kind < 0.5:
        return rng.choice([True, False, None])
    if kind < 0.7:
        return rng.choice([_word(rng), "x" * rng.randint(0, 300), rng.choice(SCALARS_TEXT)])
    if kind < 0.85 and depth < 3:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3:
        return {_word(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return rng.random()


def _mapping(rng):
    data = {}
    for _ in range(rng.randint(0, 4)):
        section = rng.choice(SECTIONS) if rng.random() < 0.85 else _word(rng)
        if rng.random() < 0.1:
            data[section] = _value(rng)
            continue
        body = data.setdefault(section, {}) if isinstance(data.get(section, {}), dict) else {}
        for _ in range(rng.randint(0, 5)):
            key = rng.choice(KEYS.get(section, ["x"])) if rng.random() < 0.85 else _word(rng)
            body[key] = _value(rng)
    return data


def _dump(data):
    try:
        return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True,
                         sort_keys=False)
    except (yaml.YAMLError, ValueError):
        return "train:\n  epochs: 2\n"


ODDITIES = [
    "train:\n  epochs: 3\nmodel:\n  dim: 8\ntrain:\n  threads: 1\n",                 # duplicate section
    "model:\n  dim: 8\n  dim: 9\n",                                                    # duplicate key
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\ntrain: {epochs: *e}\n",              # alias bomb
    "train: &t {epochs: *t}\n",                                                        # recursive alias
    "model: &m\n  dim: 8\ntrain:\n  <<: *m\n",                                         # merge key
    "base: &b {dim: 8}\nmodel:\n  <<: *b\n  window: 3\n",
    "---\ntrain: {}\n---\nmodel: {}\n",                                                # two documents
    "[" * 3000 + "]" * 3000,                                                           # deep nesting
    "train:\n\tepochs: 3\n",                                                           # tab indent
    "\ufefftrain:\n  epochs: 2\n",                                                     # BOM
    "train: {epochs: 2, epochs: 3}\n",
    "? [a, b]\n: 1\n",                                                                 # complex key
    "train:\n  epochs: !!float 1e30\n",
    "corpus:\n  paths: !!binary aGVsbG8=\n",
    "model:\n  sampler: dns\n  negative: 30\n",
]


def _case(rng):
    """Bytes of a config file."""
    pick = rng.random()
    if pick < 0.15:
        text = rng.choice(ODDITIES)
    else:
        text = _dump(_mapping(rng))
    raw = text.encode("utf-8")
    mutate = rng.random()
    if mutate < 0.15 and raw:  # flip, insert or delete a few bytes (non-UTF-8, broken YAML)
        b = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b) + 1)
            op = rng.random()
            if op < 0.4 and i < len(b):
                b[i] = rng.randrange(256)
            elif op < 0.7:
                b[i:i] = bytes([rng.randrange(256)])
            elif i < len(b):
                del b[i]
        raw = bytes(b)
    elif mutate < 0.2:
        raw = raw[: rng.randrange(len(raw) + 1)]
    elif mutate < 0.25:
        raw += rng.choice(ODDITIES).encode()
    return raw


def _set_item(rng):
    section = rng.choice(SECTIONS) if rng.random() < 0.9 else _word(rng)
    key = rng.choice(KEYS.get(section, ["x"])) if rng.random() < 0.9 else _word(rng)
    value = rng.choice(SCALARS_TEXT + [str(rng.choice(NUMBERS)), _word(rng), "a.txt, b.txt ,,c.txt"]
                       if rng.random() < 0.6 else [str(rng.randint(0, 20)), str(rng.random())])
    sep = "=" if rng.random() < 0.95 else rng.choice(["", ":", "=="])
    return f"{section}.{key}{sep}{value}" if rng.random() < 0.95 else _word(rng)


def _assert_valid(cfg):
    for key, (lo, hi, _) in LIMITS.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        assert lo <= value <= hi and math.isfinite(value), (key, value)
    assert cfg.train.min_alpha <= cfg.train.alpha
    assert all(isinstance(p, str) and "\0" not in p for p in cfg.corpus.paths)


def _check(call, where_prefixes):
    """Run one case; return 'ok' or 'error' (any other exception fails the test)."""
    try:
        cfg = call()
    except ConfigError as e:
        msg = str(e)
        assert len(msg) < 2000, msg[:300]
        assert msg.startswith(where_prefixes), msg[:300]
        return "error"
    _assert_valid(cfg)
    return "ok"


def test_fuzz_config_files():
    rng = random.Random(12)
    outcomes = {"ok": 0, "error": 0}
    t0 = time.perf_counter()
    for i in range(FILE_CASES):
        raw = _case(rng)
        try:
            outcomes[_check(lambda: config_from_bytes(raw, "fuzz.yaml"), ("fuzz.yaml:",))] += 1
        except AssertionError:
            raise
        except BaseException as e:
            pytest.fail(f"case {i}: {type(e).__name__}: {str(e)[:200]} for {raw[:200]!r}")
    seconds = time.perf_counter() - t0
    print(f"{FILE_CASES} config files: {outcomes}, {seconds:.2f}s")
    # Both outcomes are exercised (a generator that only made errors would test little).
    assert outcomes["ok"] > FILE_CASES // 20 and outcomes["error"] > FILE_CASES // 5, outcomes


def test_fuzz_set_overrides():
    rng = random.Random(13)
    outcomes = {"ok": 0, "error": 0}
    t0 = time.perf_counter()
    for i in range(SET_CASES):
        items = [_set_item(rng) for _ in range(rng.randint(1, 3))]
        try:
            outcomes[_check(lambda: build_config({}, "base.yaml", items), ("--set ", "base.yaml:"))] += 1
        except AssertionError:
            raise
        except BaseException as e:
            pytest.fail(f"case {i}: {type(e).__name__}: {str(e)[:200]} for {items!r}")
    print(f"{SET_CASES} --set lists: {outcomes}, {time.perf_counter() - t0:.2f}s")
    assert outcomes["ok"] > SET_CASES // 20 and outcomes["error"] > SET_CASES // 5, outcomes


@pytest.mark.parametrize("case", [0, 2, 3, 7, 13])
def test_fuzz_oddities_through_the_cli(tmp_path, case):
    """A handful of the oddities through the real command: exit 2, one `error:` line, no traceback."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(ODDITIES[case] + f"output:\n  dir: {tmp_path / 'out'}\n")
    r = subprocess.run([sys.executable, "-m", "w2v.train", "--config", str(cfg), "--quiet"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.startswith(f"error: {cfg}: ") and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(r.stderr) < 2000
