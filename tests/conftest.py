"""Shared fixtures: repository paths and a small config builder for end-to-end runs."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sotu.txt.gz"


@pytest.fixture
def root():
    return ROOT


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def sample_head(path: Path, tokens: int) -> Path:
    """Write the first lines of the shipped sample, about `tokens` tokens, to `path`."""
    import gzip
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        n = 0
        for line in f:
            out.write(line)
            n += len(line.split())
            if n > tokens:
                break
    return path
