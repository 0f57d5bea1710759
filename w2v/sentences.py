"""Write an in-memory corpus (an iterable of token lists) as a text file the file pipeline reads."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import GeneratorType

BATCH_SENTENCES = 4096  # sentences joined and checked at once


class SentencesError(TypeError):
    """`sentences` is not an iterable of token lists; the message names the sentence's index."""


@dataclass
class WrittenCorpus:
    """What was written: the file, its sentences (empty ones included, as gensim counts them)
    and tokens."""
    path: Path
    sentences: int
    tokens: int


def check_iterable(sentences, passes: int = 2) -> None:
    """gensim's rule: a corpus read more than once must be restartable, not a generator."""
    if isinstance(sentences, (str, bytes)) or not isinstance(sentences, Iterable):
        raise SentencesError(f"sentences must be an iterable of lists of str tokens, got {type(sentences).__name__}")
    if isinstance(sentences, GeneratorType) and passes > 1:
        raise SentencesError("sentences is a generator, which can be read only once; pass a list or a "
                             "restartable iterable (an object whose __iter__ starts over)")


def _as_tokens(sentence, index: int):
    """The sentence as a sequence of tokens; a str (a common mistake: it would train on letters)
    or a non-iterable is refused."""
    if isinstance(sentence, (list, tuple)):
        return sentence
    if isinstance(sentence, (str, bytes)) or not isinstance(sentence, Iterable):
        raise SentencesError(f"sentence {index} is a {type(sentence).__name__}, expected a list of str tokens")
    return list(sentence)


def _bad_token(tokens, index: int) -> SentencesError:
    """The error for the first token of sentence `index` that cannot be written as one token."""
    for t in tokens:
        if not isinstance(t, str):
            return SentencesError(f"sentence {index}: token {t!r} is a {type(t).__name__}, expected str")
        if not t or len(t.split()) != 1 or t.strip() != t:
            return SentencesError(f"sentence {index}: token {t!r} is empty or contains whitespace; "
                                  f"tokens are separated by whitespace in w2v's corpus files")
    return SentencesError(f"sentence {index}: cannot be written as one line of tokens")


def write_sentences(sentences, path: str | Path) -> WrittenCorpus:
    """Write one line per sentence, tokens separated by one space.

    The checks run per batch of sentences on joined strings (C loops): a batch is valid when its
    text splits into exactly as many tokens as it holds and no token is empty; only a failing
    batch is searched sentence by sentence, for the message."""
    check_iterable(sentences, passes=1)
    path = Path(path)
    n_sentences = n_tokens = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        batch: list = []
        first = 0  # index of batch[0]

        def flush() -> None:
            nonlocal n_tokens
            try:
                lines = [" ".join(s) for s in batch]
            except TypeError:
                lines = None
            expected = sum(map(len, batch))
            text = "\n".join(lines) + "\n" if lines is not None else ""
            if lines is None or len(text.split()) != expected or any("" in s for s in batch):
                for i, s in enumerate(batch):
                    try:
                        ok = len(" ".join(s).split()) == len(s) and "" not in s
                    except TypeError:
                        ok = False
                    if not ok:
                        raise _bad_token(s, first + i)
            out.write(text)
            n_tokens += expected

        for i, sentence in enumerate(sentences):
            batch.append(_as_tokens(sentence, i))
            if len(batch) == BATCH_SENTENCES:
                flush()
                first, batch = i + 1, []
            n_sentences = i + 1
        if batch:
            flush()
    return WrittenCorpus(path, n_sentences, n_tokens)
