"""gensim-style training callbacks: subclass `CallbackAny2Vec` and pass instances to `Word2Vec`."""
from __future__ import annotations


class CallbackAny2Vec:
    """Base class for callbacks of `w2v.Word2Vec`, with gensim's hook names.

    Each hook is called with the `Word2Vec` model, as gensim calls it: `on_train_begin` and
    `on_train_end` once per `train()` call, `on_epoch_begin` and `on_epoch_end` around each epoch.
    During a hook, `model.wv` holds the vectors as they are at that moment and
    `model.get_latest_training_loss()` the loss summed so far in this `train()` call (complete
    epochs only). Override the hooks you need; the others do nothing."""

    def on_epoch_begin(self, model) -> None:
        pass

    def on_epoch_end(self, model) -> None:
        pass

    def on_train_begin(self, model) -> None:
        pass

    def on_train_end(self, model) -> None:
        pass
