"""Turn a slice of the encoded corpus into training examples: subsample, windows, noise words."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .corpus import EncodedCorpus
from .samplers import NegativeSampler
from .subsample import subsample_mask
from .windows import context_matrix


@dataclass
class Examples:
    """All examples of one chunk, in text order. Skip-gram: `inputs` are context ids [N]; CBOW:
    `inputs` are context ids [N, 2W] with `mask`. `targets` are the centre ids [N]."""
    inputs: torch.Tensor
    mask: torch.Tensor | None
    targets: torch.Tensor
    negatives: torch.Tensor
    kept_tokens: int
    loss_terms: int  # positive (centre, context) pairs for skip-gram, centre words for CBOW

    def __len__(self) -> int:
        return self.targets.shape[0]

    def batch(self, start: int, stop: int) -> tuple:
        if self.mask is None:
            return self.targets[start:stop], self.inputs[start:stop], self.negatives[start:stop]
        return self.inputs[start:stop], self.mask[start:stop], self.targets[start:stop], self.negatives[start:stop]


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


def make_examples(corpus: EncodedCorpus, s0: int, s1: int, arch: str, window: int,
                  keep_prob: torch.Tensor, sampler: NegativeSampler, generator: torch.Generator,
                  device: torch.device, shared_negatives: bool = False) -> Examples:
    """Examples for sentences [s0, s1): fresh subsampling, shrunk windows and noise draws
    (`sampler.draw`, once for the whole chunk)."""
    a, b = int(corpus.offsets[s0]), int(corpus.offsets[s1])
    ids = torch.from_numpy(np.asarray(corpus.ids[a:b], dtype=np.int64)).to(device)
    sentence = torch.from_numpy(corpus.sentence_of_token(s0, s1)).to(device)
    keep = subsample_mask(ids, keep_prob, generator)
    ids, sentence = ids[keep], sentence[keep]
    pos, valid = context_matrix(sentence, window, generator)
    # Select positions before gathering ids: the positions are int32, the ids int64.
    if arch == "skipgram" and not shared_negatives:
        targets = ids.unsqueeze(1).expand_as(pos)[valid]
        inputs = ids[pos[valid]]
        mask = None
    else:  # one example per centre word: CBOW, or skip-gram sharing noise words within the window
        has_context = valid.any(dim=1)  # word2vec.c skips a centre word with no context
        inputs, mask, targets = ids[pos[has_context]], valid[has_context], ids[has_context]
    negatives = sampler.draw(targets, generator)
    terms = targets.shape[0] if (mask is None or arch == "cbow") else int(mask.sum())
    return Examples(inputs, mask, targets, negatives, int(ids.shape[0]), terms)

