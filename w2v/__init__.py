"""w2v: a PyTorch word2vec trainer."""

from w2v.keyedvectors import KeyedVectors

__all__ = ["KeyedVectors"]
