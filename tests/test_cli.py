"""Bad input: clear message naming the file or key, exit code 2, and no half-written output.

One test (or more) per row of the table in docs/errors.md."""
import bz2
import contextlib
import errno
import gzip
import os
import random
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from w2v import export, reader
from w2v.train import main


class Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def run_cli(capsys):
    """Call the CLI's main() in-process (fast); one test below runs the real subprocess."""
    def run(tmp_path, config_text, *extra):
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(config_text)
        code = main(["--config", str(cfg), "--quiet", *extra])
        return Result(code, capsys.readouterr().err)
    return run


def config(corpus, out, extra=""):
    return f"corpus:\n  paths: [{corpus}]\noutput:\n  dir: {out}\n{extra}"


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text("the quick brown fox jumps over the lazy dog\n" * 50)
    return p


def _assert_clean_failure(result, out_dir, *needles):
    assert result.returncode == 2, result.stderr
    for n in needles:
        assert n in result.stderr, result.stderr
    assert not (out_dir / "word_embedding.txt").exists()
    assert not list(out_dir.glob("*.tmp")) if out_dir.exists() else True
    if (out_dir / "train.log").exists():  # the error is in the log too, for runs nobody watched
        assert result.stderr.strip().splitlines()[-1] in (out_dir / "train.log").read_text()


def test_missing_corpus_file(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(tmp_path / "missing.txt", out))
    _assert_clean_failure(r, out, "missing.txt", "no such file")


def test_unreadable_corpus_file(run_cli, tmp_path, corpus, monkeypatch):
    # As root every file is readable, so a failing open() is simulated; the next test is the real
    # permission bit for other users.
    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(reader, "open_binary", denied)
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(corpus, out))
    _assert_clean_failure(r, out, "corpus.txt: cannot open the file (Permission denied)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a file without read permission")
def test_corpus_file_without_read_permission(run_cli, tmp_path, corpus):
    corpus.chmod(0)
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(corpus, out))
    _assert_clean_failure(r, out, "corpus.txt: file is not readable")


def test_folder_without_text_files(run_cli, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / ".hidden.txt").write_text("hidden files are skipped\n")
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(folder, out))
    _assert_clean_failure(r, out, "texts: folder contains no files to read")


def test_empty_corpus(run_cli, tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(tmp_path / "empty.txt", out))
    _assert_clean_failure(r, out, "contains no words")


def test_no_word_reaches_min_count(run_cli, tmp_path, corpus):
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(corpus, out, "vocab:\n  min_count: 1000\n"))
    _assert_clean_failure(r, out, "vocab.min_count=1000")


@pytest.mark.parametrize("extra,needle", [
    ("model:\n  windw: 3\n", "did you mean 'model.window'"),
    ("trian:\n  epochs: 3\n", "did you mean 'train'"),
    ("model:\n  dim: big\n", "'model.dim' must be an integer, got 'big'"),
    ("train:\n  alpha: [0.1]\n", "'train.alpha' must be a number"),
    ("train:\n  checkpoint_minutes: -1\n", "'train.checkpoint_minutes' must be >= 0"),
    ("model:\n  window: 0\n", "'model.window' must be >= 1"),
    ("model:\n  dim: 0\n", "'model.dim' must be >= 1"),
    ("model:\n  negative: 0\n", "'model.negative' must be >= 1"),
])
def test_config_errors(run_cli, tmp_path, corpus, extra, needle):
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(corpus, out, extra))
    _assert_clean_failure(r, out, needle, "cfg.yaml")


def test_fused_backend_without_compiler_stops_with_its_key(run_cli, tmp_path, corpus, monkeypatch):
    from w2v import ckernel
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("W2V_CACHE_DIR", str(tmp_path / "kernel-cache"))
    ckernel.reset()
    try:
        out = tmp_path / "out"
        # On the CPU: Triton, the CUDA kernel, would also fail on the bad $CC, with its own message.
        r = run_cli(tmp_path, config(corpus, out, "train:\n  backend: fused\n  device: cpu\n"))
        _assert_clean_failure(r, out, "train.backend is 'fused'", "no C compiler", "no-such-cc")
    finally:
        ckernel.reset()


def test_config_not_yaml(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli(tmp_path, "corpus: [unclosed\n  : :\n")
    _assert_clean_failure(r, out, "not valid YAML", "cfg.yaml")


def test_config_that_is_yaml_but_not_a_mapping(run_cli, tmp_path):
    r = run_cli(tmp_path, "- corpus\n- output\n")
    assert r.returncode == 2 and "cfg.yaml: expected a mapping of sections" in r.stderr, r.stderr


def _garbage(seed, n):
    return random.Random(seed).randbytes(n)


def test_binary_garbage_and_invalid_utf8_are_replaced_and_training_goes_on(run_cli, tmp_path, capsys):
    path = tmp_path / "mixed.txt"
    text = b"the quick brown fox jumps over the lazy dog\n" * 50
    path.write_bytes(text + _garbage(0, 5000) + b"\ncaf\xe9 au lait\n" + text)
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(path, out, "model:\n  dim: 8\ntrain:\n  epochs: 1\n  threads: 1\n"))
    assert r.returncode == 0, r.stderr
    assert "mixed.txt" in r.stderr and "undecodable bytes replaced by U+FFFD" in r.stderr
    words = [line.split(" ", 1)[0] for line in (out / "word_embedding.txt").read_text().splitlines()[1:]]
    assert {"the", "fox", "dog"} <= set(words)
    assert "undecodable bytes replaced" in (out / "train.log").read_text()


@pytest.mark.parametrize("suffix,opener", [(".gz", gzip.open), (".bz2", bz2.open)])
def test_truncated_compressed_corpus(run_cli, tmp_path, suffix, opener, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK_CHARS", 1 << 12)  # so the error comes after some good data
    whole = tmp_path / f"whole{suffix}"
    with opener(whole, "wb", compresslevel=1) as f:  # bz2 level 1: 100k blocks, so 4 of them here
        f.write(_garbage(1, 200_000).hex().encode())
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(cut, out))
    _assert_clean_failure(r, out, f"cut{suffix}: cannot read past byte ", "truncated or corrupt")
    offset = int(r.stderr.split("past byte ")[1].split()[0])
    assert 0 < offset < 400_000  # some good data was read, and the place it stopped is named


def test_unwritable_output_dir(run_cli, tmp_path, corpus):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    r = run_cli(tmp_path, config(corpus, blocker / "out"))
    assert r.returncode == 2 and "output.dir" in r.stderr, r.stderr
    assert blocker.read_text().startswith("a file")


def test_disk_full_while_writing_vectors_keeps_the_old_file(run_cli, tmp_path, corpus, monkeypatch):
    out = tmp_path / "out"
    small = "model:\n  dim: 8\ntrain:\n  epochs: 1\n  threads: 1\n"
    assert run_cli(tmp_path, config(corpus, out, small)).returncode == 0
    before = (out / "word_embedding.txt").read_bytes()
    real_atomic_write = export.atomic_write

    class FullDisk:
        """A file on a disk that fills up after the first write."""
        def __init__(self, f):
            self.f, self.writes = f, 0

        def write(self, data):
            self.writes += 1
            if self.writes > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

    @contextlib.contextmanager
    def filling_atomic_write(path, mode):
        with real_atomic_write(path, mode) as f:
            yield FullDisk(f)

    monkeypatch.setattr(export, "atomic_write", filling_atomic_write)
    r = run_cli(tmp_path, config(corpus, out, small + "  seed: 2\n"))
    assert r.returncode == 2, r.stderr
    assert "word_embedding.txt: No space left on device (disk full" in r.stderr, r.stderr
    assert (out / "word_embedding.txt").read_bytes() == before
    assert not list(out.glob(".*.tmp"))


def test_checkpoint_from_another_run_is_refused(run_cli, tmp_path, corpus):
    out = tmp_path / "out"
    small = "model:\n  dim: 8\ntrain:\n  epochs: 1\n  threads: 1\n"
    assert run_cli(tmp_path, config(corpus, out, small)).returncode == 0
    outputs = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "train.log"}
    r = run_cli(tmp_path, config(corpus, out, small), "--resume", "--set", "model.window=3")
    assert r.returncode == 2 and "checkpoint is from a different run; window: checkpoint has 5, config has 3" in r.stderr
    corpus.write_text(corpus.read_text() + "one more line\n")
    r = run_cli(tmp_path, config(corpus, out, small), "--resume")
    assert r.returncode == 2 and "corpus: the corpus files (path, size, modification time)" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "train.log"} == outputs


def test_resume_without_a_checkpoint(run_cli, tmp_path, corpus):
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(corpus, out), "--resume")
    _assert_clean_failure(r, out, "checkpoint.pt: no checkpoint to resume from")


def test_quiet_prints_nothing_and_the_log_has_everything(tmp_path, corpus, capsys):
    out = tmp_path / "out"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(config(corpus, out, "model:\n  dim: 8\ntrain:\n  epochs: 2\n  threads: 1\n"))
    assert main(["--config", str(cfg), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    log = (out / "train.log").read_text()
    for needle in ("w2v.train --config", "vocabulary: 8 words", "memory estimate", "encoded corpus",
                   "epoch 1/2: loss", "epoch 2/2: loss", "wrote "):
        assert needle in log, needle
    assert main(["--config", str(cfg)]) == 0  # without --quiet the same lines go to stderr as well
    assert "epoch 2/2: loss" in capsys.readouterr().err


def test_bad_vocab_file(run_cli, tmp_path, corpus):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the 10\nquick brown 3\n")
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(corpus, out, f"vocab:\n  path: {vocab}\n"))
    _assert_clean_failure(r, out, "vocab.txt, line 2: expected 'word count'")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_requested_without_cuda(run_cli, tmp_path, corpus):
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(corpus, out), "--set", "train.device=cuda")
    _assert_clean_failure(r, out, "train.device is 'cuda' but CUDA is not available")


def test_bad_override(run_cli, tmp_path, corpus):
    r = run_cli(tmp_path, config(corpus, tmp_path / "out"), "--set", "train.epochs=zero")
    assert r.returncode == 2 and "'train.epochs' must be an integer" in r.stderr


def test_real_process_exit_code(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(config(tmp_path / "missing.txt", tmp_path / "out"))
    r = subprocess.run([sys.executable, "-m", "w2v.train", "--config", str(cfg), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "missing.txt" in r.stderr
