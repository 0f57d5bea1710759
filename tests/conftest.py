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


def assert_step_matches_autograd(ref, batched, inputs, lr):
    """`batched.sgd_step(*inputs, lr)` changes both tables as autograd + plain SGD on `ref`'s forward
    does (the two models start equal); returns the batched step's loss."""
    import torch
    loss_ref = ref(*inputs).sum()
    ref.zero_grad()
    loss_ref.backward()
    with torch.no_grad():
        for p in ref.parameters():
            p -= lr * p.grad.to_dense()
    loss = batched.sgd_step(*inputs, lr)
    assert torch.allclose(loss, loss_ref.detach(), rtol=1e-5)
    assert torch.allclose(batched.in_embed.weight, ref.in_embed.weight, atol=1e-5)
    assert torch.allclose(batched.out_embed.weight, ref.out_embed.weight, atol=1e-5)
    return loss
