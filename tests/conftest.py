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
