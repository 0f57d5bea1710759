"""Turn a slice of the encoded corpus into training examples: subsample, windows, noise words."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .corpus import EncodedCorpus
from .mode import Mode
from .samplers import NegativeSampler
from .subsample import subsample_mask
from .windows import context_matrix, window_spans


@dataclass
class Examples:
    """All examples of one chunk, in text order. Per-pair skip-gram: `inputs` are context ids [N]
    and there is no mask; windowed modes (`Mode.windowed`): `inputs` are context ids [N, 2W] with
    `mask`. `targets` are the centre ids [N]."""
    inputs: torch.Tensor
    mask: torch.Tensor | None
    targets: torch.Tensor
    negatives: torch.Tensor
    kept_tokens: int
    loss_terms: int  # positive (centre, context) pairs for skip-gram, centre words for CBOW

    def __len__(self) -> int:
        return self.targets.shape[0]

    def input_ids(self) -> torch.Tensor:
        """Every id an input row may be read from (a superset, for the 'touched' sync)."""
        return self.inputs.reshape(-1)

    def batch(self, start: int, stop: int) -> tuple:
        """Examples [start, stop) as the model's `sgd_step` takes them (pairs carry no mask)."""
        if self.mask is None:
            return self.targets[start:stop], self.inputs[start:stop], self.negatives[start:stop]
        return self.inputs[start:stop], self.mask[start:stop], self.targets[start:stop], self.negatives[start:stop]


@dataclass
class SpanExamples:
    """A chunk's windowed examples (CBOW, or skip-gram with shared noise) for the C kernel: example
    i's contexts are ids[lo..hi] but its centre, spans[i] = (lo, centre, hi). The same examples as
    Examples' [N, 2W] form with its mask, in a fifth of the memory and without building that form."""
    ids: torch.Tensor        # [T] int32: the chunk's word ids after subsampling
    spans: torch.Tensor      # [N, 3] int32
    targets: torch.Tensor    # [N] centre ids
    negatives: torch.Tensor  # [N, K]
    width: int               # the most contexts an example can have (2 * window)
    kept_tokens: int
    loss_terms: int

    def __len__(self) -> int:
        return self.targets.shape[0]

    def input_ids(self) -> torch.Tensor:
        """Every id an input row may be read from (a superset, for the 'touched' sync)."""
        return self.ids


@dataclass
class TokenChunk:
    """A chunk as its encoded tokens, for a backend that makes the examples itself (the C kernel's
    `train_tokens`): the same subsampling, windows and noise distribution as `make_examples`, drawn
    from `seed`, itself one draw from the run's generator (so a resume at a chunk boundary draws the
    same). `kept_tokens` and `loss_terms` are only known once the chunk is trained: the backend
    sets them."""
    ids: torch.Tensor      # [T] int32: the chunk's word ids
    offsets: torch.Tensor  # [S + 1] int64: its sentences' starts in ids, then T
    window: int
    seed: int
    kept_tokens: int = 0
    loss_terms: int = 0

    def __len__(self) -> int:
        return self.ids.shape[0]

    def input_ids(self) -> torch.Tensor:
        """Every id an input row may be read from (a superset, for the 'touched' sync)."""
        return self.ids


def token_chunk(corpus: EncodedCorpus, s0: int, s1: int, window: int, generator: torch.Generator) -> TokenChunk:
    """Sentences [s0, s1) as a TokenChunk; takes one draw from `generator`."""
    a, b = int(corpus.offsets[s0]), int(corpus.offsets[s1])
    ids = torch.from_numpy(np.asarray(corpus.ids[a:b], dtype=np.int32))
    offsets = torch.from_numpy(np.asarray(corpus.offsets[s0:s1 + 1], dtype=np.int64) - a)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return TokenChunk(ids, offsets, window, seed)


def chunk_bounds(corpus: EncodedCorpus, chunk_tokens: int) -> np.ndarray:
    """Sentence indices cutting the corpus into chunks of about `chunk_tokens` tokens, so that no
    window crosses a chunk edge (windows never cross sentences)."""
    n_sent = len(corpus.offsets) - 1
    marks = np.arange(0, corpus.num_tokens, chunk_tokens, dtype=np.int64)
    cuts = np.searchsorted(corpus.offsets, marks, side="left")
    cuts = np.unique(np.clip(np.concatenate([cuts, [n_sent]]), 0, n_sent))
    if cuts[0] != 0:
        cuts = np.concatenate([[0], cuts])
    return cuts


def _gather_rows(ids: torch.Tensor, pos: torch.Tensor, rows: torch.Tensor, n: int,
                 block: int = 8192) -> torch.Tensor:
    """ids[pos[rows]] (rows: a mask over pos's rows, or over its elements), `block` rows at a time
    into one preallocated result, so the selected positions never exist as a whole. On a GPU in one
    go: each block's size would be a host sync, and host memory is not at stake there."""
    if ids.device.type != "cpu":
        return ids[pos[rows]]
    out = torch.empty((n,) + (pos.shape[1:] if rows.dim() == 1 else ()), dtype=ids.dtype, device=ids.device)
    done = 0
    for start in range(0, pos.shape[0], block):
        picked = ids[pos[start:start + block][rows[start:start + block]]]
        out[done:done + picked.shape[0]] = picked
        done += picked.shape[0]
    return out


def make_examples(corpus: EncodedCorpus, s0: int, s1: int, mode: Mode, window: int,
                  keep_prob: torch.Tensor, sampler: NegativeSampler, generator: torch.Generator,
                  device: torch.device, spans: bool = False) -> Examples | SpanExamples:
    """Examples for sentences [s0, s1): fresh subsampling, shrunk windows and noise draws
    (`sampler.draw`, once for the whole chunk). `spans`: windowed modes as SpanExamples, the same
    examples from the same random draws. A chunk may have no example (sentences of one word)."""
    a, b = int(corpus.offsets[s0]), int(corpus.offsets[s1])
    # Word ids stay int32 (as encoded) in every example tensor: half the memory of int64, and the
    # kernels read int32; torch's gathers and index_add_ take them as they are.
    ids = torch.from_numpy(np.asarray(corpus.ids[a:b], dtype=np.int32)).to(device)
    sentence = torch.from_numpy(corpus.sentence_of_token(s0, s1)).to(device)
    keep = subsample_mask(ids, keep_prob, generator)
    ids, sentence = ids[keep], sentence[keep]
    kept = int(ids.shape[0])
    if spans and mode.windowed:
        lo, hi = window_spans(sentence, window, generator)
        rows = hi > lo  # word2vec.c skips a centre word with no context
        centre = torch.arange(kept, dtype=torch.int32, device=ids.device)[rows]
        lo, hi = lo[rows], hi[rows]
        targets = ids[centre]
        negatives = sampler.draw(targets, generator).to(torch.int32)
        terms = int((hi - lo).sum()) if mode is Mode.SG_WINDOW else targets.shape[0]  # its pairs, or centres
        return SpanExamples(ids, torch.stack([lo, centre, hi], dim=1), targets, negatives, 2 * window,
                            kept, terms)
    pos, valid = context_matrix(sentence, window, generator)
    del keep, sentence
    # This function's peak is what a chunk costs in memory beyond its examples, so temporaries are
    # dropped as soon as used and the context ids are gathered a block of rows at a time.
    if not mode.windowed:
        targets = ids.unsqueeze(1).expand_as(pos)[valid]
        mask, rows = None, valid
    else:  # one example per centre word: CBOW, or skip-gram sharing noise words within the window
        rows = valid.any(dim=1)  # word2vec.c skips a centre word with no context
        mask, targets = valid[rows], ids[rows]
    inputs = _gather_rows(ids, pos, rows, targets.shape[0])
    del pos, valid, rows, ids
    negatives = sampler.draw(targets, generator).to(torch.int32)
    terms = int(mask.sum()) if mode is Mode.SG_WINDOW else targets.shape[0]  # pairs, or CBOW's centres
    return Examples(inputs, mask, targets, negatives, kept, terms)

