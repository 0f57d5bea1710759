"""w2v: a PyTorch word2vec trainer.

`from w2v import Word2Vec, FastText, KeyedVectors, FastTextKeyedVectors, CallbackAny2Vec` for the gensim-style Python API; the
names are imported on first use, so `python -m w2v.train` does not load the API."""

_EXPORTS = {"Word2Vec": "word2vec", "FastText": "word2vec", "KeyedVectors": "keyedvectors",
            "FastTextKeyedVectors": "fasttext_kv", "CallbackAny2Vec": "callbacks"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'w2v' has no attribute {name!r}")
