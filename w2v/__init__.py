"""w2v: a PyTorch word2vec trainer."""
